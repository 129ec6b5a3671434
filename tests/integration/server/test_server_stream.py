"""The event stream: authentication, backlog then live, resume, slow subscribers
(docs/interfaces.md)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import Database
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    WAIT,
    new_mail,
    next_event,
    next_message,
    recipient,
    running_server,
    stream_url,
    subscribed,
)


@pytest.fixture
async def server(database: Database) -> AsyncIterator[TrackingServer]:
    async with running_server(database, stream_page_size=4) as running:
        yield running


async def _opens(server: TrackingServer, rep: Enrollment, count: int) -> list[str]:
    """Have a recipient open ``count`` emails; returns their message keys in order."""
    keys = []
    async with recipient() as client:
        for _ in range(count):
            mail = new_mail(rep)
            response = await client.get(mail.pixel())
            assert response.status_code == 200
            keys.append(mail.message)
    return keys


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
    ids=["missing", "wrong", "not bearer", "empty", "huge"],
)
async def test_a_wrong_or_missing_token_is_refused(
    server: TrackingServer, alice: Enrollment, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(stream_url(server), additional_headers=headers, open_timeout=WAIT):
            pass
    assert refused.value.response.status_code == 403
    assert server.subscribers(alice.user_id) == 0


async def test_a_malformed_after_is_refused(server: TrackingServer, alice: Enrollment) -> None:
    url = stream_url(server).replace("after=0", "after=yesterday")
    auth = {"Authorization": f"Bearer {alice.api_token}"}
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers=auth, open_timeout=WAIT):
            pass


async def test_backlog_comes_oldest_first_then_live_events(
    server: TrackingServer, alice: Enrollment
) -> None:
    before = await _opens(server, alice, 10)  # more than two backlog pages
    async with subscribed(server, alice.api_token, after=0) as stream:
        backlog = [await next_event(stream) for _ in range(10)]
        live = await _opens(server, alice, 2)
        after = [await next_event(stream) for _ in range(2)]
    assert [e["message"] for e in backlog] == before
    assert [e["message"] for e in after] == live
    ids = [e["id"] for e in backlog + after]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_after_skips_what_the_subscriber_already_has(
    server: TrackingServer, alice: Enrollment
) -> None:
    keys = await _opens(server, alice, 6)
    async with subscribed(server, alice.api_token, after=0) as stream:
        events = [await next_event(stream) for _ in range(6)]
    async with subscribed(server, alice.api_token, after=events[3]["id"]) as stream:
        rest = [await next_event(stream) for _ in range(2)]
        sentinel = await _opens(server, alice, 1)
        assert (await next_event(stream))["message"] == sentinel[0]
    assert [e["message"] for e in rest] == keys[4:]


async def test_resume_after_a_dropped_connection_delivers_exactly_the_missed_events(
    server: TrackingServer, alice: Enrollment
) -> None:
    async with subscribed(server, alice.api_token) as stream:
        await _opens(server, alice, 3)
        seen = [await next_event(stream) for _ in range(3)]
    missed = await _opens(server, alice, 5)  # while the agent is offline
    async with subscribed(server, alice.api_token, after=seen[-1]["id"]) as stream:
        resumed = [await next_event(stream) for _ in range(5)]
        live = await _opens(server, alice, 1)
        assert (await next_event(stream))["message"] == live[0]
    assert [e["message"] for e in resumed] == missed
    assert resumed[0]["id"] > seen[-1]["id"]


async def test_no_gap_and_no_duplicate_while_subscribing_during_traffic(
    server: TrackingServer, alice: Enrollment
) -> None:
    total = 120
    answered: list[str] = []
    started = asyncio.Event()

    async def traffic() -> None:
        async with recipient() as client:
            for i in range(total):
                mail = new_mail(alice)
                await client.get(mail.pixel())
                answered.append(mail.message)
                if i == total // 3:
                    started.set()

    sender = asyncio.create_task(traffic())
    async with asyncio.timeout(WAIT):
        await started.wait()
    async with subscribed(server, alice.api_token, after=0) as stream:
        received = [await next_event(stream) for _ in range(total)]
    await sender
    ids = [e["id"] for e in received]
    assert ids == sorted(ids) and len(set(ids)) == total
    assert [e["message"] for e in received] == answered


async def test_a_revision_is_delivered_again_on_resume(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with recipient() as scanner:
        await scanner.get(mail.click("https://example.com/a", link=0))
        await scanner.get(mail.click("https://example.com/trap", link=tokens.HONEYPOT_LINK))
    async with subscribed(server, alice.api_token, after=0) as stream:
        opened, click, trap, *revisions = [await next_message(stream) for _ in range(5)]
    # The click implied an open (rule 6); the honeypot revised both, and the stored
    # verdicts are already revised. Revise messages follow their cause.
    assert (opened["type"], opened["inferred"], click["type"]) == ("open", True, "click")
    assert opened["verdict"] == click["verdict"] == "bot"
    assert trap["link"] == tokens.HONEYPOT_LINK
    assert [(r["type"], r["id"], r["counts"]) for r in revisions] == [
        ("revise", opened["id"], False),
        ("revise", click["id"], False),
    ]
    async with subscribed(server, alice.api_token, after=click["id"]) as stream:
        again = [await next_message(stream) for _ in range(3)]
    assert [m["type"] for m in again] == ["click", "revise", "revise"]
    assert [m["id"] for m in again[1:]] == [opened["id"], click["id"]]


async def test_ids_keep_increasing_across_restarts(database: Database) -> None:
    db = database
    async with running_server(db) as first:
        alice = await first.add_user("alice")
        await _opens(first, alice, 2)
        async with subscribed(first, alice.api_token) as stream:
            before = [await next_event(stream) for _ in range(2)]
    async with running_server(db) as second:
        # Same database: same secret, so Alice's old enrollment still works.
        alice = Enrollment(second.public_url, alice.user_id, alice.api_token, alice.signing_key)
        await _opens(second, alice, 1)
        async with subscribed(second, alice.api_token, after=before[-1]["id"]) as stream:
            later = await next_event(stream)
    assert later["id"] > before[-1]["id"]


async def test_a_subscriber_that_never_reads_is_dropped_and_memory_stays_bounded(
    database: Database,
) -> None:
    limit = 16
    # Every click an event of its own: no flood collapsing, no per-token bound.
    async with running_server(
        database, stream_queue_limit=limit, flood_window_seconds=0,
        max_events_per_token_hour=10_000,
    ) as server:
        alice = await server.add_user("alice")
        # A tiny receive buffer and no reading: the server's writes back up quickly.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        async with connect(
            stream_url(server),
            sock=sock,
            additional_headers={"Authorization": f"Bearer {alice.api_token}"},
            max_queue=1,
            open_timeout=WAIT,
        ) as stalled, subscribed(server, alice.api_token) as healthy:
            received = 0
            progress = asyncio.Condition()

            async def read_along() -> None:
                nonlocal received
                async for _ in healthy:
                    async with progress:
                        received += 1
                        progress.notify_all()

            reader = asyncio.create_task(read_along())
            target = "https://example.com/" + "long-path/" * 800  # ~8 KB per event
            mail = new_mail(alice)
            sent = 1  # the open the first click implies (rule 6)
            async with recipient() as client:
                # Groups of half the bound: a reader that keeps up never overflows; this
                # one fills the socket buffers first, and only then its queue.
                while server.stream_stats().dropped == 0 and sent < 4000:
                    group = [client.get(mail.click(target)) for _ in range(limit // 2)]
                    await asyncio.gather(*group)
                    sent += len(group)
            stats = server.stream_stats()
            assert stats.dropped == 1, f"still subscribed after {sent} events"
            assert sent > 4 * limit  # the stalled reader overflowed it, not one burst
            assert stats.largest_queue == limit  # filled to its bound, never beyond
            assert server.subscribers(alice.user_id) == 1  # the reader is still served
            async with asyncio.timeout(WAIT), progress:
                await progress.wait_for(lambda: received >= sent)
            reader.cancel()
            # Once it reads again it finds the buffered events, then "try again later".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # read them fast
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(3 * WAIT):
                    for _ in range(sent + 1):
                        await stalled.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013


async def test_stop_sends_subscribers_away_cleanly(database: Database) -> None:
    async with running_server(database) as server:
        alice = await server.add_user("alice")
        async with subscribed(server, alice.api_token) as stream:
            await server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(WAIT):
                    await stream.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
