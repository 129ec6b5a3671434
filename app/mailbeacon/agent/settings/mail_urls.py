"""Mail server addresses: hosts, ``host:port``, and the SMTP and IMAP server URLs.

One table of schemes (``smtps``/``smtp+starttls``/``smtp``, ``imaps``/``imap+starttls``/
``imap``) with their security and default port, and one plain-text rule: an
unencrypted connection goes only to this machine (loopback) unless the rep allowed it,
because the password and every message would cross the network in the clear.
Passwords never go in URLs (they belong in the keyring).

Two readers of the same URLs: :func:`parse_mail_url` for the settings (raises
:class:`SettingError`) and :func:`parse_upstream` for the outbox's upstream (raises
:class:`UpstreamConfigError` with words for the ``--upstream`` option). Their messages
differ on purpose and are kept as they were.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.core.language import Phrase, mark


class UpstreamConfigError(ValueError):
    """The upstream URL or settings are unusable; the message says how to fix them."""


# ---------------------------------------------------------------- hosts


def is_loopback(host: str) -> bool:
    """True for addresses of this machine only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_refused(plain: bool, host: str, allow_plain: bool) -> bool:
    """The plain-text rule: True when an unencrypted connection to ``host`` is not allowed."""
    return plain and not allow_plain and not is_loopback(host)


def check_host(host: str) -> None:
    """Raise SettingError unless ``host`` is an IP address or a valid host name."""
    if not host:
        raise SettingError(Phrase(mark("the host must not be empty")))
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return
    except ValueError:
        pass
    labels = bare.rstrip(".").split(".")
    if len(bare) > 253 or not all(
        label and len(label) <= 63 and all(ch.isalnum() or ch == "-" for ch in label)
        for label in labels
    ):
        raise SettingError(
            Phrase(mark("{value} is not a valid host name or address"), value=repr(host))
        )


def parse_host_port(text: str, allow_zero: bool = False) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into (host, port); raises SettingError."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise SettingError(
            Phrase(mark("expected host:port (e.g. 127.0.0.1:2525), not {value}"), value=repr(text))
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise SettingError(
            Phrase(
                mark("write an IPv6 address in brackets, like [::1]:2525, not {value}"),
                value=repr(text),
            )
        )
    check_host(host)
    try:
        port = int(port_text)
    except ValueError:
        raise SettingError(
            Phrase(mark("the port in {value} is not a number"), value=repr(text))
        ) from None
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise SettingError(
            Phrase(mark("the port must be between {low} and 65535, not {port}"), low=low, port=port)
        )
    return host, port


# ---------------------------------------------------------------- mail server URLs

# protocol -> scheme -> (security, default port); "none": nothing is encrypted.
_MAIL_SCHEMES: dict[str, dict[str, tuple[str, int]]] = {
    "smtp": {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)},
    "imap": {"imap": ("none", 143), "imap+starttls": ("starttls", 143), "imaps": ("tls", 993)},
}


@dataclass(frozen=True, slots=True)
class MailServerUrl:
    """A parsed upstream SMTP or IMAP URL."""

    scheme: str
    host: str
    port: int
    user: str
    security: str  # "tls" (implicit), "starttls" or "none"

    @property
    def plain(self) -> bool:
        """True if nothing on the connection is encrypted."""
        return self.security == "none"

    def plain_refused(self, allow_plain: bool) -> bool:
        """True if the plain-text rule forbids this server (see :func:`plain_refused`)."""
        return plain_refused(self.plain, self.host, allow_plain)


def protocol_key(protocol: str) -> str:
    """The settings section of a mail protocol."""
    return "upstream" if protocol == "smtp" else "imap"


def parse_mail_url(text: str, protocol: str) -> MailServerUrl:
    """Parse an ``smtp``/``imap`` server URL; raises SettingError saying what is wrong.

    A password in the URL is refused: passwords belong in the keyring.
    """
    schemes = _MAIL_SCHEMES[protocol]
    parts = urlsplit(text.strip())
    if parts.scheme not in schemes:
        raise SettingError(
            Phrase(
                mark("the URL must start with {schemes}, not {value}"),
                schemes=", ".join(s + "://" for s in schemes),
                value=repr(text),
            )
        )
    if parts.password is not None:
        raise SettingError(
            Phrase(
                mark(
                    "do not put a password in the URL; set {section}.password instead (it goes "
                    "to the keyring)"
                ),
                section=protocol_key(protocol),
            )
        )
    if _has_extra_parts(parts):
        raise SettingError(
            Phrase(mark("the URL must be just scheme://host:port, not {value}"), value=repr(text))
        )
    host = parts.hostname or ""
    check_host(host)
    try:
        port = parts.port
    except ValueError:
        raise SettingError(
            Phrase(mark("the port in {value} must be between 1 and 65535"), value=repr(text))
        ) from None
    security, default_port = schemes[parts.scheme]
    if port == 0:
        raise SettingError(Phrase(mark("the port must be between 1 and 65535, not 0")))
    return MailServerUrl(parts.scheme, host, port or default_port, _user(parts), security)


# ---------------------------------------------------------------- the --upstream URL

Security = Literal["tls", "starttls", "plain"]
# The upstream calls the unencrypted case "plain" (its option is upstream.allow_plain).
_UPSTREAM_SECURITY: dict[str, Security] = {"tls": "tls", "starttls": "starttls", "none": "plain"}
_UPSTREAM_SCHEME = {
    _UPSTREAM_SECURITY[security]: scheme
    for scheme, (security, _port) in _MAIL_SCHEMES["smtp"].items()
}


@dataclass(frozen=True, slots=True)
class UpstreamURL:
    """A parsed ``--upstream`` URL."""

    security: Security
    host: str
    port: int
    user: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{_UPSTREAM_SCHEME[self.security]}://{host}:{self.port}"


def parse_upstream(url: str, *, allow_plain: bool = False) -> UpstreamURL:
    """Parse and check an ``--upstream`` URL; UpstreamConfigError with a clear message."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UpstreamConfigError(
            Phrase(
                mark("The upstream URL {url} is not valid: {error}."), url=repr(url), error=error
            )
        ) from error
    schemes = _MAIL_SCHEMES["smtp"]
    if parts.scheme not in schemes:
        raise UpstreamConfigError(
            Phrase(
                mark("The upstream URL {url} must start with smtps://, smtp+starttls:// or smtp://."),
                url=repr(url),
            )
        )
    host = parts.hostname
    if not host:
        raise UpstreamConfigError(
            Phrase(mark("The upstream URL {url} names no server."), url=repr(url))
        )
    if parts.password is not None:
        raise UpstreamConfigError(
            Phrase(
                mark(
                    "Do not put the upstream password in the URL: it would end up in settings "
                    "and logs. Store it in the keyring (settings dialog) or "
                    "MAILBEACON_UPSTREAM_PASSWORD."
                )
            )
        )
    if _has_extra_parts(parts):
        raise UpstreamConfigError(
            Phrase(mark("The upstream URL {url} has extra parts after host:port."), url=repr(url))
        )
    security, default_port = schemes[parts.scheme]
    if plain_refused(security == "none", host, allow_plain):
        raise UpstreamConfigError(
            Phrase(
                mark(
                    "smtp://{host} would send your password and mail unencrypted over the "
                    "network. Use smtps://{host} or smtp+starttls://{host}, or, if this server "
                    "really is on a trusted local network, allow it with `mailbeacon config set "
                    "upstream.allow_plain true`."
                ),
                host=host,
            )
        )
    user = _user(parts) or None
    return UpstreamURL(_UPSTREAM_SECURITY[security], host, port or default_port, user)


def _has_extra_parts(parts: SplitResult) -> bool:
    return parts.path not in ("", "/") or bool(parts.query) or bool(parts.fragment)


def _user(parts: SplitResult) -> str:
    return unquote(parts.username or "")
