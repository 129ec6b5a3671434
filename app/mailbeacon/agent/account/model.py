"""What an account is made of: the servers, how to sign in, and where that was found."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Security(StrEnum):
    """How a connection to a mail server is protected."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class AuthMethod(StrEnum):
    """How the rep signs in to the mail servers."""

    OAUTH2 = "oauth2"
    PASSWORD = "password"  # noqa: S105 - a method's name


class Source(StrEnum):
    """Where discovery found the servers (said to the rep: "found in ...")."""

    PRESET = "preset"
    MX = "mx"
    SRV = "srv"
    AUTOCONFIG = "autoconfig"
    PROBE = "probe"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class ServerSetting:
    """One server: host, port and its protection."""

    host: str
    port: int
    security: Security

    def to_json(self) -> dict[str, Any]:
        """The ``{"host", "port", "security"}`` object of ``account discover --json``."""
        return {"host": self.host, "port": self.port, "security": str(self.security)}


@dataclass(frozen=True, slots=True)
class Discovered:
    """What discovery found for one email address."""

    email: str
    provider: str | None  # a preset's id ("google", "microsoft", ...) or None
    source: Source
    smtp: ServerSetting
    imap: ServerSetting | None
    auth: tuple[AuthMethod, ...]
    issuer: str | None = None
    scopes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The object ``mailbeacon account discover --json`` prints."""
        return {
            "email": self.email,
            "provider": self.provider,
            "source": str(self.source),
            "smtp": self.smtp.to_json(),
            "imap": self.imap.to_json() if self.imap else None,
            "auth": [str(method) for method in self.auth],
            "issuer": self.issuer,
        }
