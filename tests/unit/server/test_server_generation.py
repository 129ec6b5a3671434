"""Database identity and generation, and the self-address window (unit level)."""

from __future__ import annotations

import time
from pathlib import Path

from mailbeacon.core.events import EventType, ServerEvent
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.maintenance import backup
from mailbeacon.server.sqlite_store import SqliteStore
from mailbeacon.server.store import UNSTORED, NewEvent


def _new() -> NewEvent:
    return NewEvent(1, ServerEvent(UNSTORED, str(EventType.OPEN), "m", None,
                                   "2030-01-01T00:00:00.000Z", "192.0.2.1", "UA", "human", ""))


def test_a_restored_backup_is_a_new_generation_above_every_earlier_id(tmp_path: Path) -> None:
    db, copy = tmp_path / "server.db", tmp_path / "copy.db"
    store = SqliteStore(db)
    with store.transaction():
        store.insert_event(_new())
    name, generation, floor = store.identity()
    backup(db, copy)
    with store.transaction():
        later = [store.insert_event(_new()) for _ in range(3)]
    store.close()
    restored = SqliteStore(copy)
    again = SqliteStore(copy)  # a second connection (the reader) starts nothing new
    assert (generation, floor) == (1, 0)
    new_name, new_generation, new_floor = restored.identity()
    assert (new_name, new_generation) == (name, 2)
    assert again.identity() == restored.identity()
    assert new_floor >= int(time.time() * 1_000_000) - 60_000_000 > max(later)
    with restored.transaction():
        assert restored.insert_event(_new()) == new_floor + 1
    restored.close()
    again.close()
    assert SqliteStore(copy).identity()[1] == 2  # opened again: the same generation


def test_an_address_counts_while_connected_and_for_the_window_after() -> None:
    addresses = AgentAddresses(ttl=30 * 86400.0, window=900.0)
    addresses.load([(1, "192.0.2.1", 1000.0)])
    assert addresses.of(1, 1000.0 + 900) == {"192.0.2.1"}
    assert addresses.of(1, 1000.0 + 901) == frozenset()  # a month's memory no more
    addresses.connected(1, "198.51.100.7", 5000.0)
    assert addresses.own(1, 99_000.0).live == {"198.51.100.7"}
    addresses.disconnected(1, "198.51.100.7", 99_000.0)
    assert addresses.own(1, 99_500.0).left == {"198.51.100.7": 99_000.0}
    assert addresses.of(1, 99_901.0) == frozenset()
