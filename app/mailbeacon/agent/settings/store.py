"""The agent's settings: every option of the settings dialog under a dotted key.

Settings live in ``profile.config_file`` as JSON, one object per section
(``{"version": 1, "relay": {"port": 2525}, ...}``), written atomically. Secrets
(relay, upstream and IMAP passwords, API token, signing key) are never settings:
they live in the keyring (see ``mailbeacon.agent.settings.secrets``); ``SECRET_KEYS`` maps
the dotted names ``mailbeacon config`` accepts for them to their keyring names.

``KEYS`` describes every key (type, default, what it does); ``keys_table()``
renders it as the Markdown table the README lists.

Reading a damaged file: ``Settings.load`` raises ``ConfigError`` naming the file,
so a command fails with a message instead of silently forgetting the rep's
settings; ``Settings.load_or_default`` (for the desktop app, which must start)
moves the damaged file aside as ``config.json.corrupt-<UTC time>``, logs where it
went and starts from the defaults.

Decision on ``server.listen``: the embedded server listens on a fixed port by
default (127.0.0.1:8725) because its URL goes into every tracked email; a port
picked afresh on each start would break the pixels and links of earlier emails.
Port 0 is accepted (pick a free port for this run) for tests and experiments.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailbeacon.agent.settings.errors import SettingError, refused
from mailbeacon.agent.settings.kinds import (
    BoolKind,
    ChoiceKind,
    EmailKind,
    FloatKind,
    HostKind,
    HostPortKind,
    HttpUrlKind,
    IntKind,
    Kind,
    MailUrlKind,
    NameKind,
    NetworksKind,
    TextKind,
    TimestampKind,
)
from mailbeacon.agent.settings.mail_urls import is_loopback, parse_mail_url, protocol_key
from mailbeacon.core.durable import atomic_write
from mailbeacon.core.language import SETTING_CHOICES, Phrase, mark

__all__ = [
    "KEYS",
    "SECRET_KEYS",
    "ConfigError",
    "SettingSpec",
    "Settings",
    "keys_table",
    "spec",
    "unknown_key_message",
]

log = logging.getLogger(__name__)

FILE_VERSION = 1
MiB = 1024 * 1024

# Dotted names that `mailbeacon config` accepts for secrets, and their keyring names.
SECRET_KEYS: dict[str, str] = {
    "relay.password": "relay_password",
    "upstream.password": "upstream_password",
    "imap.password": "imap_password",
    "server.enrollment": "enrollment",
    "oauth.client_secret": "oauth_client_secret",
}


class ConfigError(Exception):
    """The settings file cannot be read; the message names the file and the way out."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the settings file {path} {problem}. Fix it, or move it aside "
            "(MailBeacon then starts from the default settings)."
        )
        self.path = path


# ---------------------------------------------------------------- the settings tree


def setting(default: Any, kind: Kind, doc: str) -> Any:
    """A dataclass field that is a setting: its default, how it parses and what it does."""
    return field(default=default, metadata={"kind": kind, "doc": doc})


_BOOL = BoolKind()
_PORT = IntKind(1, 65535)


@dataclass
class ServerSettings:
    """Which tracking server the agent uses."""

    mode: str = setting(
        "embedded",
        ChoiceKind(("embedded", "remote")),
        mark("embedded: run the tracking server inside the app; remote: use the server "
        "of the enrollment key (server.enrollment)"),
    )
    url: str = setting("", HttpUrlKind(), mark("URL of the remote tracking server (remote mode)"))
    listen: str = setting(
        "127.0.0.1:8725",
        HostPortKind(),
        mark("where the embedded server listens; a fixed port keeps the links of sent "
        "emails working across restarts (port 0: a free port for this run only)"),
    )
    public_url: str = setting(
        "",
        HttpUrlKind(),
        mark("base URL the embedded server puts into emails (a custom tracking domain); "
        "empty: http://<server.listen>"),
    )
    allow_plain: bool = setting(
        False,
        _BOOL,
        mark("allow an http:// tracking server on another machine (its API token would "
        "cross the network unencrypted)"),
    )
    trusted_proxies: str = setting(
        "",
        NetworksKind(),
        mark("addresses of a local TLS proxy or tunnel in front of the embedded server, whose "
        "X-Forwarded-For the server believes (space-separated, e.g. 127.0.0.1/32)"),
    )


@dataclass
class RelaySettings:
    """The local SMTP relay that mail clients send through."""

    host: str = setting("127.0.0.1", HostKind(loopback_only=True), mark("relay address (loopback)"))
    port: int = setting(2525, _PORT, mark("relay port mail clients connect to"))
    user: str = setting(
        "mailbeacon", NameKind(allow_empty=False, max_length=64), mark("relay login name")
    )
    max_message_bytes: int = setting(
        35 * MiB, IntKind(64 * 1024, 1024 * MiB), mark("largest message the relay accepts")
    )


@dataclass
class UpstreamSettings:
    """The rep's real outgoing mail server."""

    url: str = setting(
        "",
        MailUrlKind("smtp"),
        mark("outgoing mail server; plain smtp:// only to this machine unless "
        "upstream.allow_plain is true"),
    )
    user: str = setting(
        "", NameKind(), mark("login at the outgoing server (MAILBEACON_UPSTREAM_USER overrides)")
    )
    allow_plain: bool = setting(
        False, _BOOL, mark("allow unencrypted smtp:// to a server on another machine")
    )


@dataclass
class DefaultsSettings:
    """What happens to an email unless the message says otherwise."""

    track: bool = setting(True, _BOOL, mark("track opens and clicks of outgoing emails"))
    log: bool = setting(
        False, _BOOL, mark("store a copy of outgoing emails on the contacts' records")
    )
    remind_days: int = setting(
        0,
        IntKind(0, 60),
        mark("remind me when a recipient has not replied in this many days (0: no reminder "
        "unless the email asks, e.g. X-MailBeacon-Remind: 3d)"),
    )


@dataclass
class TrackingSettings:
    """How tracking works."""

    clicks: bool = setting(True, _BOOL, mark("rewrite links so that clicks are tracked"))
    opens: bool = setting(
        True, _BOOL, mark("put an open-tracking pixel in tracked emails (off: clicks only)")
    )
    per_recipient: bool = setting(
        False,
        _BOOL,
        mark("send each recipient of a multi-recipient email their own copy, so opens name "
        "them (some providers then keep several copies in Sent)"),
    )
    settle_seconds: float = setting(
        1.5,
        FloatKind(0.0, 30.0),
        mark("hold a notification this long so a scanner's burst never notifies (0: off)"),
    )
    repeat_window_seconds: int = setting(
        60,
        IntKind(0, 86400),
        mark("opens of one email by one recipient within this window notify once"),
    )
    self_window_minutes: int = setting(
        15,
        IntKind(0, 1440),
        mark("an address counts as yours (your own opens) while MailBeacon is connected from "
        "it and this long after (embedded server)"),
    )
    click_token_max_days: int = setting(
        730,
        IntKind(1, 3650),
        mark("tracked links older than this stop redirecting (embedded server)"),
    )


@dataclass
class PrivacySettings:
    """Data privacy (rule 8)."""

    enabled: bool = setting(
        False, _BOOL, mark("track contacts without a lawful basis anonymously ('Someone')")
    )
    truncate_ip: bool = setting(False, _BOOL, mark("store IP addresses truncated"))


@dataclass
class NotifySettings:
    """Which notifications the rep sees."""

    opens: bool = setting(True, _BOOL, mark("notify human opens"))
    clicks: bool = setting(True, _BOOL, mark("notify human clicks"))
    replies: bool = setting(True, _BOOL, mark("notify replies (needs imap.url)"))
    delivery_failures: bool = setting(
        True, _BOOL, mark("notify emails that could not be delivered")
    )
    paused_until: str = setting(
        "", TimestampKind(), mark("no notifications until this UTC time (empty: not paused)")
    )


@dataclass
class ImapSettings:
    """The rep's inbox, watched for replies."""

    url: str = setting(
        "",
        MailUrlKind("imap"),
        mark("inbox to watch for replies, user in the URL (empty: replies not watched)"),
    )
    allow_plain: bool = setting(
        False, _BOOL, mark("allow unencrypted imap:// to a server on another machine")
    )


@dataclass
class SentCleanupSettings:
    """Tidying the Sent folder after one-copy-per-recipient sends."""

    enabled: bool = setting(
        True,
        _BOOL,
        mark("remove the extra per-recipient copies the provider kept in Sent (needs imap.url)"),
    )


@dataclass
class AccountSettings:
    """Who the rep is and how MailBeacon signs in to their mail (docs/rep-guide.md)."""

    email: str = setting("", EmailKind(), mark("the rep's email address (also the mail login)"))
    name: str = setting("", TextKind(200), mark("the rep's name as recipients see it"))
    auth: str = setting(
        "password",
        ChoiceKind(("password", "oauth2")),
        mark("how MailBeacon signs in to the mail servers: password (or app password), or "
        "oauth2 (Sign in with Google / Microsoft; the refresh token lives in the keyring)"),
    )


@dataclass
class OAuthSettings:
    """Sign-in with the mail provider (OAuth 2.0); presets fill these for Google/Microsoft."""

    issuer: str = setting(
        "",
        HttpUrlKind(),
        mark("OpenID issuer to sign in at (empty: the provider preset's; http:// only for an "
        "issuer on this machine)"),
    )
    client_id: str = setting(
        "", NameKind(max_length=300), mark("OAuth client ID your administrator registered")
    )
    scopes: str = setting(
        "",
        TextKind(),
        mark("space-separated scopes (empty: the preset's, else 'openid email offline_access')"),
    )


@dataclass
class AppSettings:
    """The desktop app."""

    autostart: bool = setting(False, _BOOL, mark("start MailBeacon when the rep logs in"))
    language: str = setting(
        "system",
        ChoiceKind(SETTING_CHOICES),
        mark("the language of windows and notifications: 'system' (the desktop's locale), "
        "'en' or 'pl'; applies without a restart"),
    )


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One documented key."""

    key: str
    kind: Kind
    default: Any
    doc: str

    def default_text(self) -> str:
        """The default as `config get` would print it."""
        return self.kind.render(self.default)


@dataclass
class Settings:
    """All settings; sections are attributes (``settings.relay.port``)."""

    server: ServerSettings = field(default_factory=ServerSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    defaults: DefaultsSettings = field(default_factory=DefaultsSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    sent_cleanup: SentCleanupSettings = field(default_factory=SentCleanupSettings)
    account: AccountSettings = field(default_factory=AccountSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    app: AppSettings = field(default_factory=AppSettings)

    # ------------------------------------------------------------ by key

    def copy(self) -> Settings:
        """An independent copy (e.g. to apply one run's command-line overrides)."""
        return copy.deepcopy(self)

    def value(self, key: str) -> Any:
        """The typed value of ``key`` (bool, int, float or str)."""
        section, name = _split(key)
        return getattr(getattr(self, section), name)

    def get(self, key: str) -> str:
        """The value of ``key`` as text; raises SettingError for an unknown key."""
        return spec(key).kind.render(self.value(key))

    def set(self, key: str, text: str) -> None:
        """Parse, check and apply ``text``; nothing changes if it is refused."""
        try:
            parsed = spec(key).kind.parse(text)
        except SettingError as exc:
            raise refused(key, exc) from None
        trial = dataclasses.replace(self, **{_split(key)[0]: _copy_section(self, key)})
        section, name = _split(key)
        setattr(getattr(trial, section), name, parsed)
        try:
            trial.validate()
        except SettingError as exc:
            raise refused(key, exc) from None
        setattr(getattr(self, section), name, parsed)

    def items(self) -> Iterator[tuple[str, str]]:
        """Every key with its value as text, in table order."""
        for key in KEYS:
            yield key, self.get(key)

    def validate(self) -> None:
        """Check every value and the rules between them; raises SettingError."""
        for key, entry in KEYS.items():
            try:
                entry.kind.check(self.value(key))
            except SettingError as exc:
                raise refused(key, exc) from None
        self._check_plain("smtp", self.upstream.url, self.upstream.allow_plain)
        self._check_plain("imap", self.imap.url, self.imap.allow_plain)
        self._check_issuer(self.oauth.issuer)

    @staticmethod
    def _check_issuer(issuer: str) -> None:
        # A sign-in over plain http would hand the provider's tokens to the network.
        host = urlsplit(issuer).hostname or ""
        if issuer.startswith("http://") and not is_loopback(host):
            raise SettingError(
                Phrase(
                    mark("{issuer} is not encrypted; use the provider's https:// issuer"),
                    issuer=issuer,
                )
            )

    @staticmethod
    def _check_plain(protocol: str, url: str, allowed: bool) -> None:
        if not url or allowed:
            return
        parsed = parse_mail_url(url, protocol)
        if parsed.plain and not is_loopback(parsed.host):
            section = protocol_key(protocol)
            secure = Phrase(
                mark("{first} or {second}"),
                first=f"{protocol}+starttls://",
                second=f"{protocol}s://",
            )
            raise SettingError(
                Phrase(
                    mark(
                        "{url} is unencrypted and not on this machine, so your password would "
                        "cross the network in clear. Use {secure}, or set {section}.allow_plain "
                        "true if you trust that network"
                    ),
                    url=url,
                    secure=secure,
                    section=section,
                )
            )

    # ------------------------------------------------------------ files

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        data: dict[str, Any] = {"version": FILE_VERSION}
        data.update(dataclasses.asdict(self))
        return data

    @classmethod
    def from_json(cls, data: object) -> Settings:
        """Settings from a file's content; unknown keys are logged and ignored."""
        if not isinstance(data, dict):
            raise SettingError("the file must hold a JSON object")
        settings = cls()
        for section_name, section in data.items():
            if section_name == "version":
                continue
            if not isinstance(section, dict):
                log.warning("settings: ignoring unknown entry %r", section_name)
                continue
            for name, raw in section.items():
                key = f"{section_name}.{name}"
                if key not in KEYS:
                    log.warning("settings: ignoring unknown key %r", key)
                    continue
                try:
                    value = KEYS[key].kind.from_json(raw)
                except SettingError as exc:
                    raise SettingError(f"{key}: {exc}") from None
                setattr(getattr(settings, section_name), name, value)
        settings.validate()
        return settings

    @classmethod
    def load(cls, path: Path) -> Settings:
        """The settings in ``path`` (defaults if it does not exist); raises ConfigError."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise ConfigError(path, f"cannot be read ({exc.strerror})") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(path, "is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        try:
            return cls.from_json(data)
        except SettingError as exc:
            raise ConfigError(path, f"holds a value MailBeacon refuses ({exc})") from None

    @classmethod
    def load_or_default(
        cls, path: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> Settings:
        """Like ``load``, but a damaged file is moved aside (and logged) and defaults used."""
        try:
            return cls.load(path)
        except ConfigError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{now().strftime('%Y%m%dT%H%M%SZ')}")
            try:
                path.replace(aside)
            except OSError as move_error:
                log.error("%s; moving it aside failed too: %s", exc, move_error)
                raise exc from move_error
            log.warning("%s Moved it to %s and started from the defaults.", exc, aside)
            return cls()

    def save(self, path: Path) -> None:
        """Write the settings atomically: a crash leaves the old file or the new one."""
        self.validate()
        text = json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"
        atomic_write(path, text.encode("utf-8"))

    def notifications_paused(self, now: datetime) -> bool:
        """True while ``notify.paused_until`` is in the future."""
        until = self.notify.paused_until
        return bool(until) and datetime.fromisoformat(until) > now


def _copy_section(settings: Settings, key: str) -> Any:
    return dataclasses.replace(getattr(settings, _split(key)[0]))


def _split(key: str) -> tuple[str, str]:
    if key not in KEYS:
        raise SettingError(unknown_key_message(key))
    section, _, name = key.partition(".")
    return section, name


def unknown_key_message(key: str) -> str:
    """The message for a key that is not a setting, listing the valid ones."""
    hint = ""
    if key in SECRET_KEYS:
        hint = " (it is a secret: it lives in the keyring, not in the settings)"
    return f"unknown setting {key!r}{hint}; valid keys: {', '.join(KEYS)}"


def spec(key: str) -> SettingSpec:
    """The documented key; raises SettingError listing the valid keys."""
    try:
        return KEYS[key]
    except KeyError:
        raise SettingError(unknown_key_message(key)) from None


def _build_keys() -> dict[str, SettingSpec]:
    keys: dict[str, SettingSpec] = {}
    defaults = Settings()
    for section_field in fields(Settings):
        section = getattr(defaults, section_field.name)
        for item in fields(section):
            key = f"{section_field.name}.{item.name}"
            keys[key] = SettingSpec(
                key, item.metadata["kind"], getattr(section, item.name), item.metadata["doc"]
            )
    return keys


KEYS: dict[str, SettingSpec] = _build_keys()


def keys_table() -> str:
    """Every key as a Markdown table (key, values, default, meaning), secrets last."""
    lines = ["| key | values | default | meaning |", "|---|---|---|---|"]
    for entry in KEYS.values():
        default = entry.default_text() or "(empty)"
        values = entry.kind.describe().replace("|", "\\|")  # a bar would split the cell
        lines.append(f"| `{entry.key}` | {values} | `{default}` | {entry.doc} |")
    for key, name in SECRET_KEYS.items():
        lines.append(f"| `{key}` | secret | (unset) | stored in the OS keyring as `{name}` |")
    return "\n".join(lines)
