"""Small server parts: options, client address, claim cookie, recent window, agent addresses,
the gist of a database error."""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.classify import Hit, PriorHit
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.ipranges import truncate_ip
from mailbeacon.server import claim
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.config import (
    ConfigError,
    PostgresUrl,
    parse_db_url,
    parse_listen,
    parse_networks,
)
from mailbeacon.server.proxies import TrustedProxies
from mailbeacon.server.recent import RecentHits
from mailbeacon.server.store import first_line
from mailbeacon.server.stores import warn_retrying
from mailbeacon.server.tracker import iso_utc, location_for

DEFAULT = Path("/data/server.db")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT),
        ("", DEFAULT),
        ("server.db", Path("server.db")),
        ("/var/lib/mb/server.db", Path("/var/lib/mb/server.db")),
        ("sqlite:///relative.db", Path("relative.db")),
        ("sqlite:////abs/server.db", Path("/abs/server.db")),
        ("sqlite:///dir%20with%20space/s.db", Path("dir with space/s.db")),
    ],
)
def test_db_urls_name_a_sqlite_file(value: str | None, expected: Path) -> None:
    assert parse_db_url(value, DEFAULT) == expected


def test_postgresql_urls_name_a_postgresql_database() -> None:
    db = parse_db_url("postgresql://mb:pw@db.example.com:5433/mailbeacon", DEFAULT)
    assert db == PostgresUrl("postgresql://mb:pw@db.example.com:5433/mailbeacon")
    assert str(db) == "postgresql://db.example.com:5433/mailbeacon"  # no password shown
    assert parse_db_url("postgres://h/db", DEFAULT) == PostgresUrl("postgres://h/db")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://u@h", "name the database"),
        ("postgresql+asyncpg://h/db", "no driver name"),
        ("mysql://h/db", "unsupported database"),
        ("sqlite:///:memory:", "name a database file"),
        ("sqlite://host/x.db", "three slashes"),
    ],
)
def test_other_databases_are_refused_clearly(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_db_url(value, DEFAULT)


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8025") == ("127.0.0.1", 8025)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":80") == ("0.0.0.0", 80)
    for bad in ["8025", "host:", "host:http", "h:70000"]:
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_trusted_proxy_networks() -> None:
    assert parse_networks(["10.0.0.0/8", "192.0.2.1", "::1"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    with pytest.raises(ConfigError, match="CIDR"):
        parse_networks(["not-a-net"])


PROXIES = TrustedProxies(parse_networks(["10.0.0.0/8", "2001:db8::/32"]))


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", [b"198.51.100.1"], "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", [b"198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", [b"6.6.6.6, 198.51.100.1, 10.1.1.1"], "198.51.100.1"),
        ("10.0.0.2", [b"6.6.6.6", b"198.51.100.1"], "198.51.100.1"),  # repeated header
        ("10.0.0.2", [b"10.3.3.3, 10.4.4.4"], "10.3.3.3"),  # all trusted: the farthest
        ("10.0.0.2", [b"garbage, 10.4.4.4"], "10.4.4.4"),
        ("10.0.0.2", [b"198.51.100.1:443"], "10.0.0.2"),  # not an address
        ("2001:db8::5", [b"::ffff:198.51.100.1"], "198.51.100.1"),
    ],
)
def test_client_address(peer: str, header: list[bytes], expected: str) -> None:
    assert PROXIES.client_ip(peer, header) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert not TrustedProxies()
    assert TrustedProxies().client_ip("127.0.0.1", [b"198.51.100.1"]) == "127.0.0.1"


SECRET = b"k" * 32


def test_a_claim_cookie_is_accepted_for_its_user_only() -> None:
    header = claim.set_cookie_header(SECRET, 7, secure=True).decode()
    pair = header.split(";", 1)[0]
    assert pair.startswith("mb_self_7=")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header
    cookie = f"other=1; {pair}; x=y".encode()
    assert claim.is_claimed(SECRET, 7, cookie)
    assert not claim.is_claimed(SECRET, 8, cookie)
    assert not claim.is_claimed(b"z" * 32, 7, cookie)
    assert not claim.is_claimed(SECRET, 7, cookie.replace(b".", b".0", 1))
    assert not claim.is_claimed(SECRET, 7, None)


@given(st.binary(max_size=200))
def test_any_cookie_header_is_judged_without_error(raw: bytes) -> None:
    assert claim.is_claimed(SECRET, 7, raw) in (True, False)


def test_locations_are_exact_for_web_links_and_never_split() -> None:
    assert location_for("https://example.com/a?b=c#d") == b"https://example.com/a?b=c#d"
    assert location_for("HTTP://EXAMPLE.COM/%7Ex") == b"HTTP://EXAMPLE.COM/%7Ex"
    assert location_for("https://bücher.example/ü x") == (
        b"https://b%C3%BCcher.example/%C3%BC%20x"
    )
    assert location_for("https://e.com/\r\nX: y") == b"https://e.com/%0D%0AX:%20y"
    for refused in ["javascript:alert(1)", "//evil.example", "mailto:a@b", "data:,x", " https://x"]:
        assert location_for(refused) is None


def test_times_are_utc_iso_8601() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def _prior(event_id: int, at: float) -> PriorHit:
    hit = Hit(EventType.OPEN, "GET", "192.0.2.1", "UA", at, 0, "ab" * 12, None)
    return PriorHit(event_id, hit, Verdict.HUMAN)


def test_the_recent_window_is_bounded_per_message_in_age_and_in_total() -> None:
    recent = RecentHits(per_message=3, max_age=60, total=5)
    now = time.time()
    for i in range(5):
        recent.add((1, "m1"), _prior(i, now))
    assert [p.id for p in recent.get((1, "m1"), now)] == [2, 3, 4]
    assert recent.get((2, "m1"), now) == ()  # another user's message of the same key
    for i in range(10, 13):
        recent.add((1, "m2"), _prior(i, now))
    assert len(recent) <= 5
    recent.add((1, "m3"), _prior(20, now))
    recent.add((1, "m3"), _prior(21, now))
    assert len(recent) <= 5
    assert recent.get((1, "m1"), now) == ()  # the message hit longest ago went first
    assert [p.id for p in recent.get((1, "m3"), now + 61)] == []  # too old
    assert len(recent) <= 3


def test_only_the_expired_front_of_a_window_is_dropped() -> None:
    recent = RecentHits(per_message=4, max_age=60, total=100)
    now = time.time()
    for event_id, age in ((1, 100), (2, 61), (3, 50), (4, 0)):
        recent.add((1, "m"), _prior(event_id, now - age))
    assert len(recent) == 4
    assert [p.id for p in recent.get((1, "m"), now)] == [3, 4]
    assert len(recent) == 2
    recent.add((1, "m"), _prior(5, now))
    assert [p.id for p in recent.get((1, "m"), now + 55)] == [4, 5]  # 3 is 105 s old now
    assert len(recent) == 2


def test_a_revised_verdict_shows_in_the_window() -> None:
    recent = RecentHits()
    now = time.time()
    recent.add((1, "m"), _prior(1, now))
    recent.revise((1, "m"), 1, Verdict.BOT)
    assert recent.get((1, "m"), now)[0].verdict is Verdict.BOT
    recent.forget([(1, "m")])
    assert len(recent) == 0


def test_agent_addresses_live_ones_and_recent_ones() -> None:
    addresses = AgentAddresses(ttl=100, per_user=2)
    addresses.load([(1, "192.0.2.1", 1000.0), (1, "192.0.2.2", 500.0), (2, "192.0.2.9", 1000.0)])
    assert addresses.of(1, 1050) == {"192.0.2.1"}  # 192.0.2.2 was seen too long ago
    addresses.connected(1, "198.51.100.7", 1060)
    assert addresses.of(1, 1060) == {"192.0.2.1", "198.51.100.7"}
    assert addresses.live_count(1) == 1
    # Long after, only the live connection still counts.
    assert addresses.of(1, 5000) == {"198.51.100.7"}
    addresses.disconnected(1, "198.51.100.7", 5000)
    assert addresses.of(1, 5050) == {"198.51.100.7"}
    assert addresses.of(1, 6000) == frozenset()
    assert addresses.of(2, 1000) == {"192.0.2.9"}
    assert addresses.of(3, 1000) == frozenset()


def test_agent_addresses_are_worked_out_again_only_when_they_can_have_changed() -> None:
    """The writer asks at every hit: the answer is kept until a stream opens or closes
    or a left address's window ends, and is right at every moment all the same."""
    addresses = AgentAddresses(ttl=3600, window=900)
    nobody = addresses.own(1, 1000)
    assert addresses.own(1, 1001) is nobody and nobody.all == frozenset()
    addresses.connected(1, "198.51.100.7", 1002)
    live = addresses.own(1, 1003)
    assert live.all == {"198.51.100.7"} and live.left == {}
    assert addresses.own(1, 5000) is live  # still connected: nothing ends
    addresses.disconnected(1, "198.51.100.7", 5000)
    left = addresses.own(1, 5001)
    assert left.live == frozenset() and left.left == {"198.51.100.7": 5000}
    assert addresses.own(1, 5899) is left
    assert addresses.own(1, 5900).all == {"198.51.100.7"}  # the window's last moment
    assert addresses.own(1, 5900.5).all == frozenset()  # past it: a person's again
    # A hit stamped before the answer kept (the clock stepped back) is answered anew.
    assert addresses.own(1, 5500).all == {"198.51.100.7"}
    # Another user's streams change nothing of this one's, yet are seen at once.
    addresses.connected(2, "192.0.2.1", 5501)
    assert addresses.own(2, 5502).all == {"192.0.2.1"}
    assert addresses.own(1, 5503).all == {"198.51.100.7"}


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        ("::ffff:192.0.2.200", "192.0.2.0"),
        ("2001:db8:1:2::5", "2001:db8:1::"),
        ("[2001:db8:abcd:ffff:1:2:3:4]", "2001:db8:abcd::"),
        ("fe80::1%eth0", "fe80::"),
        ("unknown", ""),
        ("", ""),
    ],
)
def test_truncated_addresses_keep_the_24_or_48_only(address: str, truncated: str) -> None:
    assert truncate_ip(address) == truncated


@given(st.ip_addresses())
def test_truncating_twice_changes_nothing_more(address: ipaddress._BaseAddress) -> None:
    once = truncate_ip(str(address))
    assert truncate_ip(once) == once
    assert ipaddress.ip_address(once) in ipaddress.ip_network(
        f"{once}/{24 if ipaddress.ip_address(once).version == 4 else 48}"
    )


@pytest.mark.parametrize(
    ("message", "gist"),
    [
        (
            "consuming input failed: server closed the connection unexpectedly\n"
            "\tThis probably means the server terminated abnormally\n"
            "\tbefore or while processing the request.",
            "consuming input failed: server closed the connection unexpectedly",
        ),
        (
            'connection failed: connection to server at "127.0.0.1", port 1 failed: '
            "Connection refused\n\tIs the server running on that host and accepting "
            "TCP/IP connections?",
            'connection failed: connection to server at "127.0.0.1", port 1 failed: '
            "Connection refused",
        ),
        ("terminating connection due to administrator command", None),
        ("  \n ", "OSError"),
    ],
)
def test_a_database_error_is_said_by_its_first_line(message: str, gist: str | None) -> None:
    # libpq puts what failed first and its hints after: a log line keeps the former.
    assert first_line(OSError(message)) == (message if gist is None else gist)


@pytest.mark.parametrize(
    ("error", "traceback"),
    [(sqlite3.OperationalError("database is locked\nhint"), False), (KeyError("bug"), True)],
)
def test_a_failed_periodic_read_warns_with_a_traceback_only_for_a_bug(
    caplog: pytest.LogCaptureFixture, error: Exception, traceback: bool
) -> None:
    logger = logging.getLogger("tests.warn_retrying")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        try:
            raise error
        except Exception as exc:
            warn_retrying(logger, "could not read the team policy", exc)
    [record] = caplog.records
    gist = "database is locked" if not traceback else "'bug'"
    assert record.getMessage() == f"could not read the team policy ({gist}); trying again"
    assert bool(record.exc_info) is traceback
