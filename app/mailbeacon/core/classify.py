"""Verdicts: who made a hit (docs/rules.md rule 5). Pure; the server supplies the context.

Rules, first match wins (the tunables and lists, with their sources, are in
:mod:`mailbeacon.core.botlists`; address ranges in :mod:`mailbeacon.core.ipranges`):

1. ``bot`` — the hidden honeypot link was followed; every other hit from that
   address on that message within ``honeypot_window_s`` is revised to bot.
2. ``bot`` — a ``HEAD`` request.
3. ``self`` — a browser claimed with ``/claim``; or an address an agent of the
   rep is connected from, or was until a short while ago (the server's window,
   15 minutes by default: a guest Wi-Fi is a person's again once the rep left).
   The rep's own mail client opening the message it just sent (from the Sent
   folder) comes from that same address on the desktop, so it is covered by this
   rule; the rep's phone is not (claim its browser instead). The reason says which
   fired.
4. ``bot`` — the same address followed the honeypot link on this message.
5. The user agent: over-long, empty or binary agents are bots; then the curated
   lists and CrawlerDetect (:mod:`mailbeacon.core.useragents`). Image proxies give
   ``proxy`` (Gmail and Yahoo count as human opens, Apple Mail Privacy
   Protection and Gmail's prefetch do not); on a click a proxy agent is a bot.
6. The address: Microsoft's mail networks (Safe Links detonation) and Google's
   (Gmail prefetch, link scanning) are never a person.
7. ``bot`` — faster after sending than a person can act (``min_open_s``,
   ``min_click_s``); a hit apparently before its send time by more than
   ``clock_skew_tolerance_s`` is put down to clock skew, and timing is not judged.
8. ``bot`` — ``burst_links`` different links of one message clicked within
   ``burst_window_s`` from one address (an IPv6 /64 counts as one address); the
   earlier hits of the burst are revised to bot.
9. Otherwise ``human``.

A decision never raises: missing, empty, huge or binary user agents and
malformed addresses all get a verdict and a reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache

from mailbeacon.core import reasons
from mailbeacon.core.botlists import AgentKind, Thresholds
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.ipranges import (
    IPAddress,
    KnownRanges,
    bundled_ranges,
    normalize_ip,
)
from mailbeacon.core.useragents import AgentMatcher, default_matcher

# Control characters and U+FFFD (what undecodable bytes become) never appear in
# a real agent string.
_UNREADABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ufffd]")
_NOT_JUDGED = (Verdict.BOT, Verdict.SELF)
_V6_HOSTS = 1 << 32  # IPv6 host keys start past every IPv4 address


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Hit:
    """One request for a pixel or a tracked link, as the server saw it."""

    type: EventType
    method: str
    ip: str
    user_agent: str
    at: float
    minted_at: int
    message: str
    recipient: str | None
    link: int | None = None
    honeypot: bool = False
    claimed_browser: bool = False


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class PriorHit:
    """A recent, already stored hit on the same message (for bursts), with its current verdict.

    ``host`` is derived from the hit's address once, here: every later hit on the
    message compares against it (see :func:`host_key`).
    """

    id: int
    hit: Hit
    verdict: Verdict
    host: int | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.host = host_key(self.hit.ip)


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Context:
    """What the server knows beyond the hit itself.

    ``thresholds``, ``ranges`` and ``agents`` default to the shipped ones; the
    server can inject configured thresholds, refreshed ranges or its own matcher.
    """

    agent_addresses: frozenset[str] = frozenset()
    # Of those, the ones no agent is connected from any more: when the last one left.
    agent_left: Mapping[str, float] = field(default_factory=dict)
    recent: Sequence[PriorHit] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    ranges: KnownRanges = field(default_factory=bundled_ranges)
    agents: AgentMatcher = field(default_factory=default_matcher)


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Revision:
    """A new verdict for an earlier event."""

    id: int
    verdict: Verdict
    reason: str


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Decision:
    """The verdict for a hit, and any earlier verdicts it changes.

    ``via`` names the proxy or relay the hit came through ("Gmail", "Yahoo Mail",
    "Apple Mail Privacy Protection", "iCloud Private Relay", "Microsoft 365");
    ``proxied_human`` marks a proxy fetch that a person's open caused (Gmail,
    Yahoo); ``family`` the recognised agent family, if any; ``rule`` a short
    stable code of the rule that decided: ``honeypot``, ``honeypot-address``,
    ``head``, ``self-claimed``, ``self-agent``, ``ua-length``, ``ua-empty``,
    ``ua-binary``, ``ua-bot``, ``ua-proxy``, ``ua-proxy-click``, ``net-microsoft``,
    ``net-google``, ``timing``, ``burst`` or ``human``.
    """

    verdict: Verdict
    reason: str
    revisions: tuple[Revision, ...] = field(default=())
    via: str | None = None
    proxied_human: bool = False
    rule: str = ""
    family: str | None = None

    @property
    def counts_as_human(self) -> bool:
        """Whether this hit is a person's open or click (notifies and counts)."""
        return self.verdict is Verdict.HUMAN or (
            self.verdict is Verdict.PROXY and self.proxied_human
        )


def classify(hit: Hit, context: Context) -> Decision:
    """The verdict for ``hit``."""
    thresholds = context.thresholds
    ip = normalize_ip(hit.ip if isinstance(hit.ip, str) else None)
    neighbours = _same_host_hits(hit, ip, context.recent)
    if hit.honeypot:
        window = _within(neighbours, hit, thresholds.honeypot_window_s)
        revisions = _revise(window, reasons.HONEYPOT_REVISED.text())
        return Decision(Verdict.BOT, reasons.HONEYPOT.text(), revisions, rule="honeypot")
    if str(hit.method or "").upper() == "HEAD":
        return Decision(Verdict.BOT, reasons.HEAD.text(), rule="head")
    if hit.claimed_browser:
        return Decision(Verdict.SELF, reasons.SELF_CLAIMED.text(), rule="self-claimed")
    if ip is not None and _is_agent_address(hit, context.agent_addresses):
        return Decision(Verdict.SELF, _agent_reason(hit, context), rule="self-agent")
    return _with_burst(_judge(hit, ip, neighbours, context), hit, neighbours, thresholds)


def warm_up() -> None:
    """Load the shipped lists and ranges now (~30 ms), not on the first hit."""
    Context()


def _judge(
    hit: Hit, ip: IPAddress | None, neighbours: Sequence[PriorHit], context: Context
) -> Decision:
    proxy = _after_honeypot(hit, neighbours, context.thresholds) or _by_user_agent(hit, ip, context)
    if proxy is not None and not proxy.counts_as_human:
        return proxy
    if proxy is None:
        by_network = _by_network(hit, ip, context.ranges)
        if by_network is not None:
            return by_network
    too_fast, note = _timing(hit, context.thresholds)
    if proxy is not None:  # a proxy fetch that counts as a person's open
        if too_fast is not None:
            reason = reasons.PROXY_TOO_FAST.text(reason=too_fast, via=proxy.via)
            return replace(proxy, reason=reason, proxied_human=False)
        noted = reasons.WITH_NOTE.text(reason=proxy.reason, note=note) if note else None
        return replace(proxy, reason=noted) if noted else proxy
    if too_fast is not None:
        return Decision(Verdict.BOT, too_fast, rule="timing")
    via = "iCloud Private Relay" if ip is not None and ip in context.ranges.apple_relay else None
    notes = [reasons.NOTE_VIA.text(via=via)] if via else []
    notes += [note] if note else []
    reason = (
        reasons.HUMAN_NOTES.text(notes=reasons.NOTE_SEPARATOR.join(notes))
        if notes
        else reasons.HUMAN.text()
    )
    return Decision(Verdict.HUMAN, reason, via=via, rule="human")


def _after_honeypot(
    hit: Hit, neighbours: Sequence[PriorHit], thresholds: Thresholds
) -> Decision | None:
    window = thresholds.honeypot_window_s
    for prior in neighbours:
        # The cheap test first: almost no earlier hit is a honeypot one.
        if prior.hit.honeypot and abs(prior.hit.at - hit.at) <= window:
            gap = _seconds(abs(hit.at - prior.hit.at))
            return Decision(
                Verdict.BOT,
                reasons.HONEYPOT_ADDRESS.text(gap=gap),
                rule="honeypot-address",
            )
    return None


def _malformed_agent(agent: str, limit: int) -> Decision | None:
    if len(agent) > limit:
        return Decision(
            Verdict.BOT,
            reasons.UA_LENGTH.text(length=f"{len(agent):,}"),
            rule="ua-length",
        )
    if not agent.strip():
        return Decision(
            Verdict.BOT,
            reasons.UA_EMPTY.text(),
            rule="ua-empty",
        )
    # Printable ASCII holds none of them: the usual agent is cleared without the
    # regular expression's scan (the pixel path classifies every hit).
    if not (agent.isascii() and agent.isprintable()) and _UNREADABLE.search(agent):
        return Decision(Verdict.BOT, reasons.UA_BINARY.text(), rule="ua-binary")
    return None


def _by_user_agent(hit: Hit, ip: IPAddress | None, context: Context) -> Decision | None:
    agent = hit.user_agent if isinstance(hit.user_agent, str) else ""
    malformed = _malformed_agent(agent, context.thresholds.max_user_agent_chars)
    if malformed is not None:
        return malformed
    found = context.agents.match(agent)
    if found.kind is None or found.kind is AgentKind.CLIENT:
        return None
    if found.kind is AgentKind.BOT:
        return Decision(Verdict.BOT, found.reason, rule="ua-bot", family=found.family)
    if hit.type == EventType.CLICK:
        return Decision(
            Verdict.BOT,
            reasons.UA_PROXY_CLICK.text(family=found.family),
            rule="ua-proxy-click",
            family=found.family,
        )
    reason = found.reason
    if ip is not None and found.via == "Apple Mail Privacy Protection":
        if ip in context.ranges.apple_relay:
            reason = reasons.WITH_NOTE.text(reason=reason, note=reasons.NOTE_APPLE_RELAY.text())
    elif ip is not None and found.via == "Gmail" and ip in context.ranges.google_mail:
        reason = reasons.WITH_NOTE.text(reason=reason, note=reasons.NOTE_GOOGLE_NETWORK.text())
    return Decision(
        Verdict.PROXY,
        reason,
        via=found.via,
        proxied_human=found.kind is AgentKind.HUMAN_PROXY,
        rule="ua-proxy",
        family=found.family,
    )


def _by_network(hit: Hit, ip: IPAddress | None, ranges: KnownRanges) -> Decision | None:
    if ip is None:
        return None
    if ip in ranges.microsoft_mail:
        if hit.type == EventType.CLICK:
            return Decision(
                Verdict.BOT,
                reasons.NET_MICROSOFT_CLICK.text(),
                rule="net-microsoft",
                family="Microsoft Defender Safe Links",
            )
        return Decision(
            Verdict.PROXY,
            reasons.NET_MICROSOFT_OPEN.text(),
            via="Microsoft 365",
            rule="net-microsoft",
        )
    if ip in ranges.google_mail:
        if hit.type == EventType.CLICK:
            return Decision(
                Verdict.BOT,
                reasons.NET_GOOGLE_CLICK.text(),
                rule="net-google",
            )
        return Decision(
            Verdict.PROXY,
            reasons.NET_GOOGLE_OPEN.text(),
            via="Gmail",
            rule="net-google",
        )
    return None


def _timing(hit: Hit, thresholds: Thresholds) -> tuple[str | None, str]:
    """(the too-fast reason or None, a note to add to the reason)."""
    try:
        age = float(hit.at) - float(hit.minted_at)
    except (TypeError, ValueError, OverflowError):
        return None, reasons.NOTE_NO_TIME.text()
    if not math.isfinite(age):
        return None, reasons.NOTE_NO_TIME.text()
    if age < -thresholds.clock_skew_tolerance_s:
        return None, reasons.NOTE_CLOCK_SKEW.text(seconds=_seconds(-age))
    age = max(age, 0.0)
    is_open = hit.type == EventType.OPEN
    limit = thresholds.min_open_s if is_open else thresholds.min_click_s
    if age < limit:
        too_fast = reasons.OPENED_TOO_FAST if is_open else reasons.CLICKED_TOO_FAST
        return too_fast.text(seconds=_seconds(age)), ""
    return None, ""


def _with_burst(
    decision: Decision, hit: Hit, neighbours: Sequence[PriorHit], thresholds: Thresholds
) -> Decision:
    if hit.type != EventType.CLICK or hit.link is None:
        return decision
    window = _within(neighbours, hit, thresholds.burst_window_s)
    clicks = [p.hit for p in window if p.hit.type == EventType.CLICK and p.hit.link is not None]
    links = {c.link for c in clicks if not c.honeypot} | {hit.link}
    if len(links) < thresholds.burst_links:
        return decision
    times = [c.at for c in clicks] + [hit.at]
    reason = reasons.BURST.text(count=len(links), seconds=_seconds(max(times) - min(times)))
    revisions = decision.revisions + _revise(window, reason)
    if decision.verdict is Verdict.BOT:
        return replace(decision, revisions=revisions)
    return Decision(
        Verdict.BOT, reason, revisions, via=decision.via, rule="burst", family=decision.family
    )


def host_key(text: object) -> int | None:
    """One integer per client (see :func:`same_host`): the IPv4 address, or the IPv6
    /64 offset past every IPv4 value; None when ``text`` is no address."""
    return _host_key(text) if isinstance(text, str) else None


@lru_cache(maxsize=4096)
def _host_key(text: str) -> int | None:
    ip = normalize_ip(text)
    if ip is None:
        return None
    if ip.version == 4:
        return int(ip)
    return _V6_HOSTS + (int(ip) >> 64)


def _same_host_hits(hit: Hit, ip: IPAddress | None, recent: Iterable[PriorHit]) -> list[PriorHit]:
    """Earlier hits on this message from the same client address."""
    # Every hit of a message is compared with all the recent ones: keep this loop
    # to two attribute reads and two comparisons per earlier hit.
    key = host_key(hit.ip)
    if ip is None or key is None:
        return []
    message = hit.message
    return [p for p in recent if p.host == key and p.hit.message == message]


def _within(priors: Iterable[PriorHit], hit: Hit, seconds: float) -> list[PriorHit]:
    out: list[PriorHit] = []
    for prior in priors:
        gap = abs(prior.hit.at - hit.at)
        if gap <= seconds:  # NaN times compare False and are left out
            out.append(prior)
    return out


def _revise(priors: Iterable[PriorHit], reason: str) -> tuple[Revision, ...]:
    return tuple(
        Revision(p.id, Verdict.BOT, reason) for p in priors if p.verdict not in _NOT_JUDGED
    )


def _is_agent_address(hit: Hit, addresses: Iterable[str]) -> bool:
    if not addresses:
        return False
    key = host_key(hit.ip)
    return key is not None and key in _host_keys(frozenset(addresses))


def _agent_reason(hit: Hit, context: Context) -> str:
    """Whether an agent of the rep is connected from the hit's address, or until when."""
    key = host_key(hit.ip)
    left = context.agent_left
    live = [a for a in context.agent_addresses if a not in left and host_key(a) == key]
    gone = [at for address, at in left.items() if host_key(address) == key]
    if live or not gone:
        return reasons.SELF_AGENT.text()
    until = datetime.fromtimestamp(max(gone), UTC).strftime("%H:%M")
    return reasons.SELF_AGENT_UNTIL.text(until=until)


@lru_cache(maxsize=256)
def _host_keys(addresses: frozenset[str]) -> frozenset[int]:
    return frozenset(k for k in map(host_key, addresses) if k is not None)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
