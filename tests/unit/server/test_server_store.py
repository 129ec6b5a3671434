"""The SQLite store and the server metadata kept in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.core.events import EventType, Revision, ServerEvent, Verdict
from mailbeacon.server import meta
from mailbeacon.server.config import ConfigError
from mailbeacon.server.sqlite_store import SqliteStore
from mailbeacon.server.store import UNSTORED, NewEvent
from mailbeacon.server.users import create_user, hash_token


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "server.db")
    yield opened
    opened.close()


def _event(user_id: int, message: str = "ab" * 12) -> NewEvent:
    event = ServerEvent(UNSTORED, EventType.OPEN, message, None, "2026-01-01T00:00:00.000Z",
                        "192.0.2.1", "UA", Verdict.HUMAN, "person")
    return NewEvent(user_id, event)


def test_it_is_in_wal_mode_and_commits_are_synced(store: SqliteStore) -> None:
    db = store._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_event_ids_increase_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    first = SqliteStore(path)
    with first.transaction():
        ids = [first.insert_event(_event(1)) for _ in range(3)]
    first.close()
    second = SqliteStore(path)
    with second.transaction():
        later = second.insert_event(_event(1))
    second.close()
    assert ids == [1, 2, 3] and later == 4


def test_a_rolled_back_transaction_leaves_nothing(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_event(_event(1))
        raise RuntimeError("boom")
    assert store.stream_page(1, 0, 10) == []


def test_stream_pages_hold_one_users_events_with_the_revisions_they_caused(
    store: SqliteStore,
) -> None:
    with store.transaction():
        a = store.insert_event(_event(1))
        other = store.insert_event(_event(2))
        b = store.insert_event(_event(1))
        assert store.revise(1, b, Revision(a, "bot", "burst"))
        assert not store.revise(1, b, Revision(other, "bot", "not mine"))
        c = store.insert_event(_event(1))
    page = store.stream_page(1, 0, 2)
    assert [(i.seq, i.event.id if i.event else None) for i in page] == [(a, a), (b, b), (b, None)]
    assert page[2].revision == Revision(a, "bot", "burst", counts=False)
    assert page[0].event is not None and page[0].event.verdict == "bot"  # stored revised
    rest = store.stream_page(1, b, 2)
    assert [i.seq for i in rest] == [c]
    assert [i.seq for i in store.stream_page(2, 0, 10)] == [other]
    assert store.stream_page(1, c, 10) == []


def test_users_are_found_by_id_and_by_token_hash_only(store: SqliteStore) -> None:
    user = create_user(store, "alice", "now")
    assert store.get_user(user.id) is not None
    assert store.get_user(user.id + 1) is None
    found = store.user_by_token_hash(hash_token(user.api_token))
    assert found is not None and found.name == "alice"
    assert store.user_by_token_hash(user.api_token) is None  # the token itself is not stored
    raw = store._db.execute("SELECT token_hash FROM users").fetchone()[0]
    assert user.api_token not in raw


def test_the_generated_secret_is_kept_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    one, two = SqliteStore(path), SqliteStore(path)
    try:
        assert meta.serving_secret(one, None) == meta.serving_secret(two, None)
        assert meta.enrollment_secret(two, None) == meta.serving_secret(one, None)
    finally:
        one.close()
        two.close()


def test_add_user_must_use_the_secret_the_server_runs_with(store: SqliteStore) -> None:
    external = b"e" * 32
    assert meta.serving_secret(store, external) == external
    with pytest.raises(ConfigError, match="different server secret"):
        meta.enrollment_secret(store, None)
    assert meta.enrollment_secret(store, external) == external


def test_the_public_url_falls_back_to_the_served_one(store: SqliteStore) -> None:
    assert meta.public_url(store, None) == (None, "none")
    store.set_meta(meta.PUBLIC_URL_KEY, "https://t.example")
    assert meta.public_url(store, None)[0] == "https://t.example"
    assert meta.public_url(store, "http://given/")[0] == "http://given"


def test_agent_addresses_remember_the_latest_sighting(store: SqliteStore) -> None:
    store.touch_agent_address(1, "192.0.2.1", 100.0)
    store.touch_agent_address(1, "192.0.2.1", 50.0)
    store.touch_agent_address(1, "192.0.2.2", 10.0)
    assert sorted(store.agent_addresses(since=20.0)) == [(1, "192.0.2.1", 100.0)]


def _repeats(store: SqliteStore, event_id: int) -> int:
    return int(str(store.rows("SELECT repeats FROM events WHERE id = ?", (event_id,))[0][0]))


def test_a_floods_repeats_in_one_transaction_are_all_counted(store: SqliteStore) -> None:
    with store.transaction():
        event_id = store.insert_event(_event(1))
    with store.transaction():
        assert all(store.add_repeat(1, event_id) for _ in range(5))
        assert _repeats(store, event_id) == 5  # a read inside the transaction sees them
        assert all(store.add_repeat(1, event_id) for _ in range(2))
    with store.transaction():
        assert store.add_repeat(1, event_id)
    assert _repeats(store, event_id) == 8


def test_a_repeat_outside_a_group_of_a_missing_or_foreign_event_is_refused(
    store: SqliteStore,
) -> None:
    with store.transaction():
        event_id = store.insert_event(_event(1))
    assert not store.add_repeat(2, event_id)  # another user's event
    assert not store.add_repeat(1, event_id + 1)  # no such event
    assert store.add_repeat(1, event_id)
    assert _repeats(store, event_id) == 1


@pytest.mark.expect_log("repeated events not counted")
def test_repeats_in_a_group_land_on_their_own_event_only(store: SqliteStore) -> None:
    with store.transaction():
        event_id = store.insert_event(_event(1))
        other = store.insert_event(_event(2))
    with store.transaction():
        store.add_repeat(1, event_id)
        store.add_repeat(1, event_id)
        store.add_repeat(2, event_id)  # not user 2's: counted nowhere (and said)
        store.add_repeat(2, other)
    assert (_repeats(store, event_id), _repeats(store, other)) == (2, 1)


def test_repeats_of_a_rolled_back_transaction_are_not_counted(store: SqliteStore) -> None:
    with store.transaction():
        event_id = store.insert_event(_event(1))
    store.begin()
    for _ in range(3):
        store.add_repeat(1, event_id)
    store.rollback()
    with store.transaction():
        store.add_repeat(1, event_id)
        store.add_repeat(1, event_id)
    assert _repeats(store, event_id) == 2
