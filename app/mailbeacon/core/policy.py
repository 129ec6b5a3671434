"""The team's policy: what an administrator decides for every rep of the account.

A policy is a versioned set of items, each a key with a value that is either
*enforced* (the rep cannot change it: it overlays the rep's own setting, which is
kept, so lifting the enforcement gives the rep their own value back) or a *default*
(applied once to the rep's settings when it arrives or changes; the rep may then
change it). The keys are the rep's own setting keys where one exists, plus
``tracking.enabled``, the account-wide switch, which has no rep setting and is
always obeyed whatever its ``enforced`` flag says.

How a message is tracked (:func:`constrain`): with tracking off for the account no
pixel and no rewritten link, whatever the rep's defaults or the per-message control
(header or BCC) asked for; with clicks off (enforced) no link is rewritten, and a
clicks-only message then goes untracked. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

ValueKind = Literal["bool", "url", "text"]

TRACKING_ENABLED = "tracking.enabled"
CLICKS = "tracking.clicks"

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
MAX_TEXT = 300  # the longest text value an item takes (the console's field says it too)


class PolicyError(ValueError):
    """A policy key or value that cannot be part of a policy (message for the admin)."""


@dataclass(frozen=True, slots=True)
class PolicyKey:
    """One key an administrator may set: its kind, built-in value and meaning."""

    key: str
    kind: ValueKind
    default: str
    doc: str


POLICY_KEYS: dict[str, PolicyKey] = {
    spec.key: spec
    for spec in (
        PolicyKey(
            TRACKING_ENABLED,
            "bool",
            "true",
            "tracking allowed for the whole account (off: no pixel, no tracked link, no "
            "recorded open or click, for every rep)",
        ),
        PolicyKey(CLICKS, "bool", "true", "click tracking (links rewritten)"),
        PolicyKey("defaults.track", "bool", "true", "Track new emails by default"),
        PolicyKey("defaults.log", "bool", "false", "Log new emails by default"),
        PolicyKey(
            "privacy.enabled",
            "bool",
            "false",
            "privacy mode: contacts without a lawful basis are tracked anonymously",
        ),
        PolicyKey("privacy.truncate_ip", "bool", "false", "store IP addresses truncated"),
        PolicyKey("server.public_url", "url", "", "the tracking domain every rep's mail carries"),
        PolicyKey("notify.replies", "bool", "true", "notify reps of replies"),
        PolicyKey("oauth.issuer", "url", "", "the team's mail provider's OpenID issuer"),
        PolicyKey("oauth.client_id", "text", "", "the OAuth client ID for the team"),
    )
}


def policy_key(key: str) -> PolicyKey:
    """The key's description; raises PolicyError listing the valid keys."""
    try:
        return POLICY_KEYS[key]
    except KeyError:
        raise PolicyError(
            f"{key!r} is not a policy key; valid keys: {', '.join(POLICY_KEYS)}"
        ) from None


def parse_value(key: str, text: str) -> str:
    """The value normalised (``true``/``false`` for switches); raises PolicyError."""
    spec = policy_key(key)
    value = text.strip()
    if spec.kind == "bool":
        lowered = value.lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
        raise PolicyError(f"{key} takes true or false, not {text!r}")
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise PolicyError(f"{key}: at most {MAX_TEXT} printable characters")
    if spec.kind == "url" and value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolicyError(f"{key} takes an http:// or https:// address, not {text!r}")
        return value.rstrip("/")
    return value


@dataclass(frozen=True, slots=True)
class PolicyItem:
    """One decided key: its value (normalised text) and whether the rep may change it."""

    key: str
    value: str
    enforced: bool


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    """The account's policy at one ``version`` (0: nothing was ever decided)."""

    version: int = 0
    items: tuple[PolicyItem, ...] = ()

    def item(self, key: str) -> PolicyItem | None:
        """The decided item for ``key``, or None (the rep's own setting rules)."""
        for item in self.items:
            if item.key == key:
                return item
        return None

    def value(self, key: str) -> str:
        """The decided value, else the built-in one."""
        item = self.item(key)
        return item.value if item is not None else policy_key(key).default

    @property
    def tracking_allowed(self) -> bool:
        """False when the administrator turned tracking off for the account."""
        return self.value(TRACKING_ENABLED) == "true"

    @property
    def clicks_allowed(self) -> bool:
        """False when click tracking is enforced off."""
        item = self.item(CLICKS)
        return item is None or not item.enforced or item.value == "true"

    def enforced(self) -> dict[str, str]:
        """The rep settings the rep cannot change, with their values."""
        return {
            item.key: item.value
            for item in self.items
            if item.enforced and item.key != TRACKING_ENABLED
        }

    def defaults(self) -> dict[str, str]:
        """The rep settings the team suggests (the rep may change them)."""
        return {
            item.key: item.value
            for item in self.items
            if not item.enforced and item.key != TRACKING_ENABLED
        }

    def with_item(self, key: str, text: str, enforce: bool) -> TeamPolicy:
        """The next version with ``key`` set; raises PolicyError."""
        value = parse_value(key, text)
        # The account switch is always obeyed: it is stored as enforced.
        item = PolicyItem(key, value, enforce or key == TRACKING_ENABLED)
        kept = tuple(i for i in self.items if i.key != key)
        return TeamPolicy(self.version + 1, _ordered((*kept, item)))

    def without(self, key: str) -> TeamPolicy:
        """The next version with ``key`` left to the rep (no team value at all)."""
        policy_key(key)
        return TeamPolicy(self.version + 1, tuple(i for i in self.items if i.key != key))

    def to_json(self) -> dict[str, Any]:
        """The wire and file form: ``{"version": n, "items": {key: {value, enforced}}}``."""
        return {
            "version": self.version,
            "items": {i.key: {"value": i.value, "enforced": i.enforced} for i in self.items},
        }

    @classmethod
    def from_json(cls, data: object) -> TeamPolicy:
        """Parse the wire/file form; unknown keys are skipped (a newer server's)."""
        if not isinstance(data, dict):
            raise PolicyError("a policy must be a JSON object")
        version = data.get("version")
        items = data.get("items", {})
        if not isinstance(version, int) or version < 0 or not isinstance(items, dict):
            raise PolicyError("a policy needs a version and items")
        parsed: list[PolicyItem] = []
        for key, raw in items.items():
            if key not in POLICY_KEYS or not isinstance(raw, dict):
                continue
            value, enforced = raw.get("value"), raw.get("enforced")
            if not isinstance(value, str) or not isinstance(enforced, bool):
                raise PolicyError(f"policy item {key} is malformed")
            parsed.append(PolicyItem(key, parse_value(key, value), enforced))
        return cls(version, _ordered(parsed))


def _ordered(items: Iterable[PolicyItem]) -> tuple[PolicyItem, ...]:
    order = list(POLICY_KEYS)
    return tuple(sorted(items, key=lambda item: order.index(item.key)))


@dataclass(frozen=True, slots=True)
class MessageTracking:
    """What one message gets: tracked at all, a pixel, rewritten links."""

    track: bool
    opens: bool
    clicks: bool


def constrain(policy: TeamPolicy, wanted: MessageTracking) -> MessageTracking:
    """The rep's (or the message's) wish limited by the account's policy."""
    if not policy.tracking_allowed or not wanted.track:
        return MessageTracking(False, False, False)
    if policy.clicks_allowed:
        return wanted
    if not wanted.opens:
        # Clicks only, and clicks are not allowed: nothing left to track.
        return MessageTracking(False, False, False)
    return replace(wanted, clicks=False)


def defaults_to_apply(policy: TeamPolicy, applied: Mapping[str, str]) -> dict[str, str]:
    """The team defaults not yet applied to the rep's settings at this value
    (``applied``: what was applied before, by key): each is applied once, so the rep's
    later change stands until the team changes that default again."""
    return {key: value for key, value in policy.defaults().items() if applied.get(key) != value}
