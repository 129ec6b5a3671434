"""Tracking server settings, and parsing of the operator's options into them."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mailbeacon.core.botlists import Thresholds

SECRET_ENV = "MAILBEACON_SERVER_SECRET"  # noqa: S105 - a variable name, not a secret
MIN_SECRET_BYTES = 16
DEFAULT_LISTEN = ("127.0.0.1", 8025)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8025"
DEFAULT_CLICK_TOKEN_MAX_DAYS = 730  # two years: a link kept in a thread or a CRM note
DEFAULT_FLOOD_WINDOW_SECONDS = 60.0
DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR = 500

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DEFAULT_THRESHOLDS = Thresholds()


class ConfigError(ValueError):
    """An option the operator has to fix; the message says how."""


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    """A PostgreSQL database named by ``--db postgresql://...``."""

    url: str

    def __str__(self) -> str:
        """The URL without its password (for messages and logs)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


# Where the server's data lives: a SQLite file, or a PostgreSQL database.
Database = Path | PostgresUrl
DEFAULT_POOL_SIZE = 4


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a TrackingServer needs. Limits have sensible defaults."""

    db_path: Database
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    secret: bytes | None = None  # None: generated once and kept in the database
    # Stream: per-subscriber queue bound (events); on overflow the subscriber is dropped
    # (close 1013) and resumes with ``after=``.
    stream_queue_limit: int = 1024
    stream_page_size: int = 500
    # Recent hits per message kept for burst detection, and the bound on all of them.
    recent_per_message: int = 64
    recent_seconds: float = 600.0
    recent_total: int = 100_000
    # How long an address an agent streamed from still counts as the rep's own.
    agent_address_ttl: float = 30 * 86400.0
    # How long an address stays the rep's after their last agent left it (rule 5, self).
    self_address_minutes: float = 15.0
    agent_addresses_per_user: int = 64
    user_agent_limit: int = 1024
    max_url_bytes: int = 16 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # A request head (the first: from the connection) must arrive whole within this
    # many seconds, or 408 and close (slow-head clients; see http_limits.py).
    head_timeout: float = 10.0
    # How often a running server checks for users removed or rotated by another
    # process (one meta read; server/users.py). The longest such a change waits.
    users_check_seconds: float = 0.25
    ws_ping_interval: float = 20.0
    graceful_timeout: float = 10.0
    # Verdict timing: a hit sooner than this after sending is a machine's (rule 5).
    min_open_seconds: float = _DEFAULT_THRESHOLDS.min_open_s
    min_click_seconds: float = _DEFAULT_THRESHOLDS.min_click_s
    # docs/rules.md rule 8: store only the /24 (IPv4) or /48 (IPv6) of each hit's address
    # (the verdict still sees the full address; it is never written).
    truncate_ips: bool = False
    # A click token minted longer ago than this gets the same 404 as a forged one
    # (docs/rules.md rule 4): quoted and forwarded links do not redirect forever.
    click_token_max_days: int = DEFAULT_CLICK_TOKEN_MAX_DAYS
    # The admin console's language: "auto" (each browser's Accept-Language), "en", "pl".
    console_language: str = "auto"
    # Pixel floods (docs/promises.md, "No event lost or doubled"): identical hits (same
    # token, address and user agent) within this many seconds of the stored one are
    # counted on it (``repeats``), not stored or streamed again; and past this many
    # events stored for one token in an hour, further hits of it are only counted.
    flood_window_seconds: float = DEFAULT_FLOOD_WINDOW_SECONDS
    max_events_per_token_hour: int = DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR
    # Apple's relay ranges as refreshed by `server refresh-proxy-ranges` (None or a
    # missing file: the snapshot shipped with the package).
    apple_ranges: Path | None = None
    # Read connections (stream backlogs, token lookups) besides the writer's; SQLite
    # readers never wait on each other's connection, PostgreSQL ones run in parallel.
    pool_size: int = DEFAULT_POOL_SIZE
    # PostgreSQL: how often a subscriber's instance looks for events stored by other
    # instances when no NOTIFY came (a lost NOTIFY costs this much latency, no event).
    poll_seconds: float = 1.0
    # PostgreSQL: the folder of the outage spool (spool.py): while the database does
    # not answer, hits are stored there (fsync'd) before they are answered, and
    # replayed by themselves when it answers again. None: no spool (hits are answered
    # but lost while the database is down; `server serve` always sets one).
    spool_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.click_token_max_days < 1:
            raise ConfigError(
                f"--click-token-max-days {self.click_token_max_days}: give a number of days, "
                f"at least 1 (default {DEFAULT_CLICK_TOKEN_MAX_DAYS})"
            )
        if not self.flood_window_seconds >= 0:
            raise ConfigError(
                f"flood window {self.flood_window_seconds}: give a number of seconds, 0 or "
                f"more (0 stores every hit; default {DEFAULT_FLOOD_WINDOW_SECONDS:g})"
            )
        if self.pool_size < 1:
            raise ConfigError(f"--pool-size {self.pool_size}: give at least 1")
        if self.max_events_per_token_hour < 1:
            raise ConfigError(
                f"max events per token and hour {self.max_events_per_token_hour}: give at "
                f"least 1 (default {DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR})"
            )

    @property
    def click_token_max_age(self) -> float:
        """``click_token_max_days`` in seconds (what the tracker compares)."""
        return self.click_token_max_days * 86400.0

    @property
    def thresholds(self) -> Thresholds:
        """The verdict tunables with the operator's timing limits."""
        return replace(
            _DEFAULT_THRESHOLDS,
            min_open_s=self.min_open_seconds,
            min_click_s=self.min_click_seconds,
        )


def parse_db_url(value: str | None, default: Path) -> Database:
    """The database a ``--db`` value names: a SQLite path or ``sqlite:///...``, or a
    ``postgresql://USER@HOST:PORT/NAME`` URL."""
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered.startswith(("postgresql+", "postgres+")):
        raise ConfigError(
            f"--db {value.split('://', 1)[0]}://...: write postgresql://USER@HOST/NAME "
            "(no driver name)"
        )
    if lowered.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(value)
        if not parts.path.strip("/"):
            raise ConfigError(
                "--db postgresql://...: name the database, e.g. "
                "postgresql://mailbeacon@db.example.com/mailbeacon"
            )
        return PostgresUrl(value)
    if lowered.startswith("sqlite:"):
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"--db {value!r}: write sqlite:///PATH (three slashes)")
        # sqlite:///relative.db and sqlite:////absolute.db, as in SQLAlchemy.
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path or path == ":memory:":
            raise ConfigError(f"--db {value!r}: name a database file")
        return Path(path).expanduser()
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise ConfigError(
            f"--db: unsupported database {scheme!r}; give a SQLite file path or a "
            "postgresql:// URL"
        )
    return Path(value).expanduser()


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) into its parts."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8025")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)


def parse_networks(values: list[str] | None) -> tuple[Network, ...]:
    """``--trusted-proxy`` values (addresses or CIDR blocks)."""
    networks: list[Network] = []
    for value in values or []:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"--trusted-proxy {value!r}: expected an address or CIDR block, "
                "e.g. 10.0.0.0/8"
            ) from exc
    return tuple(networks)


def load_secret(secret_file: Path | None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The server secret from ``--secret-file``, else the environment, else None."""
    if secret_file is not None:
        try:
            text = secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"cannot read the secret file {secret_file}: {reason}") from exc
        return _checked_secret(text, f"the secret file {secret_file}")
    env = os.environ if environ is None else environ
    text = env.get(SECRET_ENV, "").strip()
    if text:
        return _checked_secret(text, SECRET_ENV)
    return None


def _checked_secret(text: str, source: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{source} holds a secret shorter than {MIN_SECRET_BYTES} bytes; use a long random "
            "value, e.g. `openssl rand -hex 32`"
        )
    return raw


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, with brackets around an IPv6 host."""
    # A wildcard address is no URL anyone can use; the operator should pass --public-url.
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"
