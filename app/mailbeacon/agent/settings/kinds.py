"""Setting values: how each kind of setting is parsed from text, checked and shown.

The parsers for the hosts and mail server URLs that settings hold are in
:mod:`.mail_urls`; the error every kind raises is :class:`.errors.SettingError`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.mail_urls import (
    check_host,
    is_loopback,
    parse_host_port,
    parse_mail_url,
)
from mailbeacon.core.language import PHRASES, Phrase, mark

__all__ = [
    "BoolKind",
    "ChoiceKind",
    "EmailKind",
    "FloatKind",
    "HostKind",
    "HostPortKind",
    "HttpUrlKind",
    "IntKind",
    "Kind",
    "MailUrlKind",
    "NameKind",
    "NetworksKind",
    "TextKind",
    "TimestampKind",
    "networks",
]


# ---------------------------------------------------------------- value kinds


def _too_long(limit: int) -> str:
    return PHRASES.n(
        "must be at most {count} character", "must be at most {count} characters", limit
    )


class Kind:
    """How one setting is parsed from text, checked and shown."""

    label: ClassVar[str] = "text"

    def parse(self, text: str) -> Any:
        """The value for ``text`` as typed by the rep; raises SettingError."""
        return self.check(text.strip())

    def from_json(self, raw: object) -> Any:
        """The value stored in the file; raises SettingError."""
        if not isinstance(raw, str):
            raise SettingError(f"expected {self.describe()}, found {raw!r}")
        return self.check(raw)

    def check(self, value: Any) -> Any:
        """Validate an already typed value; returns it (maybe normalised)."""
        return value

    def render(self, value: Any) -> str:
        """The text `config get` prints."""
        return str(value)

    def describe(self) -> str:
        """The accepted values, for messages and the README."""
        return self.label


class BoolKind(Kind):
    """true/false; also yes/no, on/off, 1/0."""

    _TRUE = frozenset({"true", "yes", "on", "1"})
    _FALSE = frozenset({"false", "no", "off", "0"})

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in self._TRUE:
            return True
        if word in self._FALSE:
            return False
        raise SettingError(
            Phrase(mark("expected true or false (or yes/no, 1/0), not {value}"), value=repr(text))
        )

    def from_json(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            return self.parse(raw)
        raise SettingError(f"expected true or false, found {raw!r}")

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise SettingError(f"expected true or false, found {value!r}")
        return value

    def render(self, value: Any) -> str:
        return "true" if value else "false"

    def describe(self) -> str:
        return "true | false"


@dataclass(frozen=True)
class IntKind(Kind):
    """A whole number in [low, high]."""

    low: int
    high: int

    def parse(self, text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise SettingError(
                Phrase(mark("expected a whole number, not {value}"), value=repr(text))
            ) from None
        return self.check(value)

    def from_json(self, raw: object) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SettingError(f"expected a whole number, found {raw!r}")
        return self.check(raw)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(f"expected a whole number, found {value!r}")
        if not self.low <= value <= self.high:
            raise SettingError(
                Phrase(
                    mark("must be between {low} and {high}, not {value}"),
                    low=self.low,
                    high=self.high,
                    value=value,
                )
            )
        return value

    def describe(self) -> str:
        return f"whole number {self.low}..{self.high}"


@dataclass(frozen=True)
class FloatKind(Kind):
    """A number in [low, high]."""

    low: float
    high: float

    def parse(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise SettingError(
                Phrase(mark("expected a number, not {value}"), value=repr(text))
            ) from None
        return self.check(value)

    def from_json(self, raw: object) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise SettingError(f"expected a number, found {raw!r}")
        return self.check(float(raw))

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingError(f"expected a number, found {value!r}")
        number = float(value)
        # NaN fails both comparisons, so it is refused here too.
        if not self.low <= number <= self.high:
            raise SettingError(
                Phrase(
                    mark("must be between {low} and {high}, not {value}"),
                    low=f"{self.low:g}",
                    high=f"{self.high:g}",
                    value=value,
                )
            )
        return number

    def render(self, value: Any) -> str:
        return f"{value:g}"

    def describe(self) -> str:
        return f"number {self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class ChoiceKind(Kind):
    """One word of a fixed list."""

    options: tuple[str, ...]

    def parse(self, text: str) -> str:
        return self.check(text.strip().lower())

    def check(self, value: Any) -> str:
        if value not in self.options:
            raise SettingError(
                Phrase(
                    mark("must be one of {choices}, not {value}"),
                    choices=", ".join(self.options),
                    value=repr(value),
                )
            )
        return str(value)

    def describe(self) -> str:
        return " | ".join(self.options)


@dataclass(frozen=True)
class NameKind(Kind):
    """A short word without spaces (a login name); maybe empty."""

    allow_empty: bool = True
    max_length: int = 320

    def check(self, value: Any) -> str:
        text = str(value)
        if not text and not self.allow_empty:
            raise SettingError(Phrase(mark("must not be empty")))
        if len(text) > self.max_length:
            raise SettingError(_too_long(self.max_length))
        if any(ch.isspace() or ord(ch) < 32 for ch in text):
            raise SettingError(Phrase(mark("must not contain spaces or control characters")))
        return text

    def describe(self) -> str:
        return "text (no spaces)" + ("" if self.allow_empty else ", not empty")


@dataclass(frozen=True)
class TextKind(Kind):
    """One line of text (a display name, a list of words); maybe empty."""

    max_length: int = 1000

    def check(self, value: Any) -> str:
        text = str(value).strip()
        if len(text) > self.max_length:
            raise SettingError(_too_long(self.max_length))
        if any(ord(ch) < 32 for ch in text):
            raise SettingError(Phrase(mark("must be one line without control characters")))
        return text

    def describe(self) -> str:
        return "text"


@dataclass(frozen=True)
class NetworksKind(Kind):
    """Space- or comma-separated IP networks (``127.0.0.1/32 10.0.0.0/8``); maybe empty."""

    def check(self, value: Any) -> str:
        words = str(value).replace(",", " ").split()
        for word in words:
            try:
                ipaddress.ip_network(word, strict=False)
            except ValueError:
                raise SettingError(
                    Phrase(mark("{value} is not an IP address or network"), value=repr(word))
                ) from None
        return " ".join(words)

    def describe(self) -> str:
        return "IP networks, space-separated, or empty"


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of a :class:`NetworksKind` value."""
    return tuple(ipaddress.ip_network(word, strict=False) for word in text.split())


@dataclass(frozen=True)
class EmailKind(Kind):
    """An email address (local part @ domain); maybe empty."""

    def check(self, value: Any) -> str:
        text = str(value).strip()
        if not text:
            return ""
        local, at, domain = text.rpartition("@")
        if not at or not local or "." not in domain or any(ch.isspace() for ch in text):
            raise SettingError(
                Phrase(
                    mark("expected an email address such as ewa@example.com, not {value}"),
                    value=repr(text),
                )
            )
        return text

    def describe(self) -> str:
        return "email address or empty"


@dataclass(frozen=True)
class HostKind(Kind):
    """A host name or address; with ``loopback_only`` only this machine."""

    loopback_only: bool = False

    def check(self, value: Any) -> str:
        host = str(value)
        check_host(host)
        if self.loopback_only and not is_loopback(host):
            raise SettingError(
                Phrase(
                    mark(
                        "must be a loopback address (127.0.0.1, ::1 or localhost), not {value}: "
                        "the relay accepts mail only from this machine"
                    ),
                    value=repr(host),
                )
            )
        return host

    def describe(self) -> str:
        return "loopback host" if self.loopback_only else "host"


@dataclass(frozen=True)
class HostPortKind(Kind):
    """``host:port`` (``[::1]:port`` for IPv6); port 0 picks a free port."""

    def check(self, value: Any) -> str:
        parse_host_port(str(value), allow_zero=True)
        return str(value)

    def describe(self) -> str:
        return "host:port"


@dataclass(frozen=True)
class HttpUrlKind(Kind):
    """An ``http(s)://`` URL without query or fragment; maybe empty."""

    def check(self, value: Any) -> str:
        text = str(value).rstrip("/")
        if not text:
            return ""
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingError(
                Phrase(mark("expected an http:// or https:// URL, not {value}"), value=repr(value))
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise SettingError(Phrase(mark("the URL must have no user, query or fragment")))
        return text

    def describe(self) -> str:
        return "http(s) URL or empty"


@dataclass(frozen=True)
class MailUrlKind(Kind):
    """An SMTP or IMAP server URL; maybe empty."""

    protocol: str  # "smtp" or "imap"

    def check(self, value: Any) -> str:
        text = str(value).strip()
        if text:
            parse_mail_url(text, self.protocol)
        return text

    def describe(self) -> str:
        if self.protocol == "smtp":
            return "smtp+starttls://host:587 | smtps://host:465 | smtp://host:25 or empty"
        return "imaps://user@host | imap+starttls://user@host | imap://user@host or empty"


class TimestampKind(Kind):
    """A UTC moment in ISO 8601 with a zone (``2030-01-01T17:00:00Z``), or empty."""

    def check(self, value: Any) -> str:
        text = str(value).strip()
        if not text:
            return ""
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise SettingError(
                Phrase(
                    mark("expected a time like 2030-01-31T17:00:00Z, or empty, not {value}"),
                    value=repr(text),
                )
            ) from None
        if moment.tzinfo is None:
            raise SettingError(
                Phrase(mark("the time needs a zone: end it with Z or an offset like +01:00"))
            )
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def describe(self) -> str:
        return "ISO 8601 time with zone, or empty"
