"""Records store: schema created from nothing, versioned, and refused when unknown."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailbeacon.agent.records.database import RecordsError
from mailbeacon.agent.records.schema import VERSION, migrate
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.records import event


def test_an_empty_file_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    sqlite3.connect(path).close()
    with RecordsStore(path) as store:
        assert store.count_events() == 0
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"contacts", "emails", "email_recipients", "logged_copies", "attachments",
            "email_attachments", "events", "stream_state"} <= tables
    conn.close()


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    with RecordsStore(path) as store:
        store.add_event(event(server_id=1))
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn) == VERSION
    conn.close()
    with RecordsStore(path) as store:
        assert store.count_events() == 1


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "records.db") as store:
        fk = store._conn.execute("PRAGMA foreign_keys").fetchone()[0]
        assert fk == 1


def test_a_file_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    conn.close()
    with pytest.raises(RecordsError, match="newer MailBeacon") as caught:
        RecordsStore(path)
    assert str(path) in str(caught.value)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == VERSION + 1
    conn.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RecordsError, match="damaged") as caught:
        RecordsStore(path)
    assert str(path) in str(caught.value)
