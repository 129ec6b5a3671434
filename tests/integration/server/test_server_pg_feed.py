"""The feed of every instance's events (pg_feed.py) on a real PostgreSQL.

What this instance commits right after what the feed has read is published as
committed, without reading it back; anything else is read by id, in id order. The
listener wakes the feed for other instances' NOTIFYs only.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import pytest

from mailbeacon.core.events import EventType, ServerEvent, Verdict
from mailbeacon.server.fanout import Fanout, Subscription
from mailbeacon.server.pg_feed import Feed, Listener
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.recorder import Recorded
from mailbeacon.server.store import UNSTORED, NewEvent

USER = 1


def _event(message: str) -> NewEvent:
    event = ServerEvent(
        UNSTORED, EventType.OPEN, message, None, "2026-01-01T00:00:00.000Z", "192.0.2.1",
        "UA", Verdict.HUMAN, "person",
    )  # fmt: skip
    return NewEvent(USER, event)


def _commit(store: PgStore, *messages: str) -> list[Recorded]:
    """Store events in one transaction, as the recorder does; their records."""
    with store.transaction():
        return [Recorded(store.insert_event(new), new) for new in map(_event, messages)]


def _received(subscription: Subscription) -> list[tuple[int, str]]:
    """(id, message) of what the subscription was handed so far."""
    got: list[tuple[int, str]] = []
    while not subscription.queue.empty():
        message = subscription.queue.get_nowait()
        got.append((message.seq, json.loads(message.text)["message"]))
    return got


@pytest.fixture
async def writer(postgres_url: str) -> AsyncIterator[PgStore]:
    store = PgStore(postgres_url)
    yield store
    store.close()


@pytest.fixture
async def other(postgres_url: str, writer: PgStore) -> AsyncIterator[PgStore]:
    """Another instance's writer."""
    store = PgStore(postgres_url)
    yield store
    store.close()


@pytest.fixture
async def feed(postgres_url: str, writer: PgStore) -> AsyncIterator[tuple[Feed, Fanout]]:
    reads = PgStore(postgres_url)
    fanout = Fanout()
    running = Feed(reads, fanout, poll_seconds=60)  # no polling within a test
    await running.start()
    yield running, fanout
    await running.stop()
    reads.close()


async def test_own_events_right_after_the_cursor_are_published_without_a_read(
    writer: PgStore, feed: tuple[Feed, Fanout]
) -> None:
    running, fanout = feed
    subscription = fanout.subscribe(USER, 100)
    first = _commit(writer, "a", "b")
    running.wake_after(first)
    second = _commit(writer, "c")
    running.wake_after(second)

    assert _received(subscription) == [(first[0].id, "a"), (first[1].id, "b"),
                                       (second[0].id, "c")]  # fmt: skip
    assert running.published_directly == 2
    assert running.reads == 0


async def test_another_instance_s_events_in_between_are_read_in_id_order(
    writer: PgStore, other: PgStore, feed: tuple[Feed, Fanout]
) -> None:
    running, fanout = feed
    subscription = fanout.subscribe(USER, 100)
    theirs = _commit(other, "theirs")  # its NOTIFY has not reached this feed yet
    ours = _commit(writer, "ours")
    running.wake_after(ours)
    assert _received(subscription) == []  # not published ahead of the smaller id

    async with asyncio.timeout(5):
        first = await subscription.queue.get()  # once the feed has read
    assert (first.seq, json.loads(first.text)["message"]) == (theirs[0].id, "theirs")
    assert _received(subscription) == [(ours[0].id, "ours")]
    assert running.reads == 1
    assert running.published_directly == 0
    # Caught up: this instance's next group follows the cursor again.
    nxt = _commit(writer, "next")
    running.wake_after(nxt)
    assert _received(subscription) == [(nxt[0].id, "next")]


async def test_the_listener_wakes_for_other_instances_only(
    postgres_url: str, writer: PgStore, other: PgStore
) -> None:
    # Each wake notes how many NOTIFYs the listener had looked at by then: the
    # catch-up wake at connect comes after none; a wake for this instance's own
    # NOTIFY would come after one.
    looked = 0
    wakes: list[int] = []
    woken = [threading.Event(), threading.Event()]

    def own_pid() -> int | None:
        nonlocal looked
        looked += 1
        return writer.backend_pid

    def wake() -> None:
        wakes.append(looked)
        woken[min(len(wakes), 2) - 1].set()

    listener = Listener(postgres_url, wake, own_pid)
    listener.start()
    try:
        assert await asyncio.to_thread(woken[0].wait, 10)  # listening (the catch-up wake)
        _commit(writer, "ours")
        _commit(other, "theirs")
        assert await asyncio.to_thread(woken[1].wait, 10)
    finally:
        await asyncio.to_thread(listener.stop)
    assert wakes == [0, 2]
    assert writer.backend_pid is not None and writer.backend_pid != other.backend_pid
