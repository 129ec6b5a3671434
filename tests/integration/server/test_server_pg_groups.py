"""A recorder's group on PostgreSQL while another instance holds the id counter.

Such a group does not wait for the counter: it is decided with provisional ids and
locks the counter inside its COMMIT's pipeline (pg_store.py). Everything the recorder
keeps or hands out must carry the stored ids once the group has committed: the
fanned-out events and the revisions they caused, the answers, the recent window that
later hits are classified against. A real PostgreSQL (tests/helpers/postgres.py), a
fresh database per test; "another instance" is another connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from mailbeacon.core.classify import Context, Decision, Hit, Revision
from mailbeacon.core.events import EventType, ServerEvent, Verdict
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.recent import RecentHits
from mailbeacon.server.recorder import HitRequest, Recorded, Recorder
from mailbeacon.server.store import UNSTORED, NewEvent
from mailbeacon.server.tracker import iso_utc

MESSAGE = "ab" * 12
AT = time.time()


def _request(n: int, message: str = MESSAGE) -> HitRequest:
    at = AT + n / 1000
    hit = Hit(EventType.OPEN, "GET", f"192.0.2.{n}", "Mozilla/5.0", at, int(AT) - 3600,
              message, None)  # fmt: skip
    return HitRequest(1, hit, iso_utc(at), "Mozilla/5.0")


def _every_earlier_hit_was_a_bot(hit: Hit, context: Context) -> Decision:
    """Each hit revises every earlier hit on its message that still counts as a person."""
    revisions = tuple(
        Revision(prior.id, Verdict.BOT, "burst") for prior in context.recent
        if prior.verdict is Verdict.HUMAN
    )  # fmt: skip
    return Decision(Verdict.HUMAN, "test rule", revisions)


@pytest.fixture
def store(postgres_url: str) -> Iterator[PgStore]:
    opened = PgStore(postgres_url)
    yield opened
    opened.close()


@pytest.fixture
async def recorder(store: PgStore) -> AsyncIterator[tuple[Recorder, list[Recorded], RecentHits]]:
    published: list[Recorded] = []
    recent = RecentHits()
    running = Recorder(store, AgentAddresses(ttl=60), recent, published.extend,
                       _every_earlier_hit_was_a_bot)  # fmt: skip
    running.start()
    yield running, published, recent
    await running.stop()


async def _waiting_for_the_counter(url: str) -> None:
    """Until a connection of the server waits for a lock (the counter's row)."""
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND application_name = 'mailbeacon-server'"
    )
    async with asyncio.timeout(10):
        while _rows(url, waiting) != [(1,)]:  # noqa: ASYNC110 - another process's state
            await asyncio.sleep(0.01)


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return list(db.execute(sql).fetchall())


async def test_a_group_s_records_carry_the_ids_it_was_stored_with(
    postgres_url: str, recorder: tuple[Recorder, list[Recorded], RecentHits]
) -> None:
    running, published, recent = recorder
    holder = PgStore(postgres_url)
    holder.begin()  # another instance's group, holding the counter
    assert holder.resolver() is None
    # Submitted together: one group, decided before any of its ids exists.
    first = [running.submit(_request(n)) for n in (1, 2, 3)]
    await _waiting_for_the_counter(postgres_url)  # decided; its COMMIT waits
    assert not any(future.done() for future in first)
    holder.commit()
    holder.close()
    answers = [await future for future in first]

    stored = _rows(postgres_url, "SELECT id, ip FROM events ORDER BY id")
    ids = [int(str(row[0])) for row in stored]
    assert [row[1] for row in stored] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert [answer.id for answer in answers] == ids
    assert [item.id for item in published] == ids
    assert [item.event.id for item in published] == ids
    # Each hit revised the one before it (the only one still counting as a person).
    assert [[r.id for r in item.revisions] for item in published] == [[], ids[:1], ids[1:2]]
    revisions = _rows(postgres_url, "SELECT cause_id, event_id FROM revisions ORDER BY id")
    assert revisions == [(ids[1], ids[0]), (ids[2], ids[1])]
    assert [prior.id for prior in recent.get((1, MESSAGE), AT)] == ids

    # A later group is classified against the stored ids.
    later = await running.record(_request(4))
    assert [r.id for r in later.revisions] == [ids[2]]
    assert _rows(postgres_url, f"SELECT event_id FROM revisions WHERE cause_id = {later.id}") == [
        (ids[2],)
    ]


async def test_a_hit_s_event_is_found_by_what_it_holds_when_its_id_was_provisional(
    store: PgStore, recorder: tuple[Recorder, list[Recorded], RecentHits]
) -> None:
    """The outage spool's check for a group whose COMMIT was cut off (spool.py)."""
    running, _published, _recent = recorder
    request = _request(7)
    await running.record(request)
    hit = request.hit
    args = (1, hit.message, request.at)
    assert store.has_event(-1, *args, "192.0.2.7", "open")
    assert not store.has_event(-1, *args, "192.0.2.8", "open")
    assert not store.has_event(-1, *args, "192.0.2.7", "click")
    assert not store.has_event(-1, 1, hit.message, iso_utc(hit.at + 1), "192.0.2.7", "open")


def _event(message: str) -> NewEvent:
    event = ServerEvent(UNSTORED, EventType.OPEN, message, None, "2026-01-01T00:00:00.000Z",
                        "192.0.2.1", "UA", Verdict.HUMAN, "person")  # fmt: skip
    return NewEvent(1, event)


def test_a_group_without_new_events_leaves_the_counter_alone(
    postgres_url: str, store: PgStore
) -> None:
    """A group that only counts repeats takes no ids, whatever an earlier locked
    transaction on the same connection handed out."""
    with store.transaction():
        first = store.insert_event(_event("a" * 24))
    other = PgStore(postgres_url)  # another instance, holding the counter
    try:
        other.begin()
        store.begin()  # provisional: the counter is taken
        second = other.insert_event(_event("b" * 24))
        other.commit()
    finally:
        other.close()
    assert store.add_repeat(1, first)
    store.commit()
    assert store.resolver() is None
    assert _rows(postgres_url, "SELECT next_id FROM event_counter") == [(second + 1,)]
