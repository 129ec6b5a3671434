"""Pixel floods: identical hits are stored once and counted; a token's events are bounded.

The real server on a real socket; recipients on other loopback addresses. The clock
is injected (TrackingServer's ``clock``), so the flood window passes without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import (
    DEFAULT_FLOOD_WINDOW_SECONDS,
    DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR,
    ConfigError,
    Database,
    ServerConfig,
)
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import CHROME, new_mail, next_event, query, recipient, subscribed

OTHER_RECIPIENT = "127.0.0.10"
QUIET = 0.3  # long enough for a wrongly streamed repeat to arrive first


class Clock:
    """Wall time that the test moves forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(database: Database, clock: Clock) -> AsyncIterator[TrackingServer]:
    running = TrackingServer(ServerConfig(db_path=database), clock=clock)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def _events(server: TrackingServer) -> list[tuple[int, str, str, str, int]]:
    rows = query(
        server.config.db_path, "SELECT id, type, ip, user_agent, repeats FROM events ORDER BY id"
    )
    return [(int(i), str(t), str(ip), str(ua), int(r)) for i, t, ip, ua, r in rows]


async def _hits(client: httpx.AsyncClient, url: str, count: int, **options: object) -> None:
    async def one(_: int) -> None:
        response = await client.get(url, **options)  # type: ignore[arg-type]
        assert response.status_code == 200

    for start in range(0, count, 100):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + 100))))


async def test_a_thousand_identical_hits_are_one_event_counted_and_streamed_once(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail, marker = new_mail(alice), new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await _hits(client, mail.pixel(), 1000)
        # Every hit was answered, so every count is committed.
        [(event_id, _, ip, ua, repeats)] = _events(server)
        assert (ip, ua, repeats) == ("127.0.0.9", CHROME, 999)
        first = await next_event(stream)
        assert (first["id"], first["message"]) == (event_id, mail.message)
        await asyncio.sleep(QUIET)
        await _hits(client, marker.pixel(), 1)
        after = await next_event(stream)
        assert after["message"] == marker.message  # nothing was streamed in between


async def test_another_user_agent_or_address_is_a_new_event(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with recipient() as client, recipient(OTHER_RECIPIENT) as other:
        await _hits(client, mail.pixel(), 3)
        await _hits(client, mail.pixel(), 3, headers={"User-Agent": CHROME + " Edg/131"})
        await _hits(other, mail.pixel(), 3)
    assert [(ip, ua[-8:], r) for _, _, ip, ua, r in _events(server)] == [
        ("127.0.0.9", CHROME[-8:], 2),
        ("127.0.0.9", " Edg/131", 2),
        (OTHER_RECIPIENT, CHROME[-8:], 2),
    ]


async def test_after_the_window_the_same_hit_is_a_new_event_and_streamed(
    server: TrackingServer, alice: Enrollment, clock: Clock
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await _hits(client, mail.pixel(), 5)
        clock.now += DEFAULT_FLOOD_WINDOW_SECONDS - 1
        await _hits(client, mail.pixel(), 5)  # still within the window
        clock.now += 1
        await _hits(client, mail.pixel(), 5)
        first, second = await next_event(stream), await next_event(stream)
    assert second["id"] > first["id"]
    assert [r for *_, r in _events(server)] == [9, 4]


async def test_clicks_redirect_every_time_and_are_stored_once(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    target = "https://example.com/pricing"
    async with recipient() as client:
        for _ in range(20):
            response = await client.get(mail.click(target))
            assert response.status_code == 302
            assert response.headers["location"] == target
    # The open a person's click implies, then the click counted 19 more times.
    assert [(t, r) for _, t, _, _, r in _events(server)] == [("open", 0), ("click", 19)]


async def test_past_the_hourly_bound_a_token_s_distinct_hits_are_only_counted(
    server: TrackingServer, alice: Enrollment, clock: Clock
) -> None:
    bound = DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR
    mail, other = new_mail(alice), new_mail(alice)
    async with recipient() as client:

        async def as_agent(url: str, n: int) -> None:
            response = await client.get(url, headers={"User-Agent": f"{CHROME} n/{n}"})
            assert response.status_code == 200

        for start in range(0, bound + 20, 100):
            end = min(bound + 20, start + 100)
            await asyncio.gather(*(as_agent(mail.pixel(), n) for n in range(start, end)))
        events = _events(server)
        assert len(events) == bound
        assert sum(r for *_, r in events) == 20  # counted, none lost
        await as_agent(other.pixel(), 0)  # another token is not bounded by this one
        clock.now += 3600
        await as_agent(mail.pixel(), 0)  # a new hour
    assert len(_events(server)) == bound + 2


async def test_the_operator_s_window_and_bound_are_used(tmp_path: Path, clock: Clock) -> None:
    config = ServerConfig(
        db_path=tmp_path / "server.db", flood_window_seconds=5, max_events_per_token_hour=3
    )
    async with TrackingServer(config, clock=clock) as server:
        alice = await server.add_user("alice")
        mail = new_mail(alice)
        async with recipient() as client:
            await _hits(client, mail.pixel(), 2)
            clock.now += 5
            await _hits(client, mail.pixel(), 2)
            clock.now += 5
            await _hits(client, mail.pixel(), 2)  # the third event: the bound
            clock.now += 5
            await _hits(client, mail.pixel(), 2)  # past the bound: counted
        assert [r for *_, r in _events(server)] == [1, 1, 3]


def test_a_negative_window_or_a_zero_bound_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="flood window"):
        ServerConfig(db_path=tmp_path / "s.db", flood_window_seconds=-1)
    with pytest.raises(ConfigError, match="max events per token"):
        ServerConfig(db_path=tmp_path / "s.db", max_events_per_token_hour=0)
