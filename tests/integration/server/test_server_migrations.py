"""Server databases from earlier releases are upgraded in place; newer ones are refused."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from mailbeacon.cli import main
from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.tokens import derive_signing_key
from mailbeacon.server.sqlite_schema import MIGRATIONS, VERSION
from mailbeacon.server.users import hash_token
from tests.helpers.server import new_mail, next_event, recipient, running_server, subscribed

# The schema of the first release, as it shipped: the "previous release" here.
PREVIOUS_RELEASE_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,
    recipient TEXT,
    at TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    inferred INTEGER NOT NULL DEFAULT 0,
    link INTEGER,
    url TEXT
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, id);
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    cause_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS revisions_by_cause ON revisions (user_id, cause_id);
CREATE TABLE IF NOT EXISTS agent_addresses (
    user_id INTEGER NOT NULL,
    ip TEXT NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (user_id, ip)
);
"""
SECRET = "ab" * 32
API_TOKEN = "previous-release-api-token"
MESSAGE = "m" * 22


def _previous_release_db(path: Path) -> Enrollment:
    """A database as the first release left it: a user and three events, one revised."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(PREVIOUS_RELEASE_DDL)
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("schema", "1"), ("secret", SECRET), ("public_url", "http://127.0.0.1:8025")],
    )
    db.execute(
        "INSERT INTO users (name, token_hash, created_at) VALUES ('alice', ?, '2025-01-01')",
        (hash_token(API_TOKEN),),
    )
    rows = [
        ("open", "human", "no sign of automation", None, None),
        ("click", "human", "no sign of automation", 0, "https://example.com/a"),
        ("click", "bot", "followed the hidden honeypot link", tokens.HONEYPOT_LINK,
         "https://example.com/trap"),
    ]
    for type_, verdict, reason, link, url in rows:
        db.execute(
            "INSERT INTO events (user_id, type, message, recipient, at, ip, user_agent, "
            "verdict, reason, link, url) VALUES (1, ?, ?, NULL, '2025-01-01T00:00:00.000Z', "
            "'192.0.2.7', 'Mozilla/5.0 (X11)', ?, ?, ?, ?)",
            (type_, MESSAGE, verdict, reason, link, url),
        )
    db.execute("UPDATE events SET verdict = 'bot', reason = 'honeypot' WHERE id = 2")
    db.execute(
        "INSERT INTO revisions (user_id, cause_id, event_id, verdict, reason) "
        "VALUES (1, 3, 2, 'bot', 'honeypot')"
    )
    db.commit()
    db.close()
    key = derive_signing_key(SECRET.encode("ascii"), 1)
    return Enrollment("http://127.0.0.1:8025", 1, API_TOKEN, key)


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {str(row[0]) for row in rows}


def _served_at(enrollment: Enrollment, port: int) -> Enrollment:
    return Enrollment(
        f"http://127.0.0.1:{port}", enrollment.user_id, enrollment.api_token, enrollment.signing_key
    )


async def test_a_previous_release_database_is_upgraded_with_its_events_intact(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.db"
    enrollment = _previous_release_db(db)
    assert "counts" not in _columns(db, "events")
    async with running_server(db) as server:
        alice = _served_at(enrollment, server.port)  # the old user, key and token still work
        mail = new_mail(alice)
        async with subscribed(server, alice.api_token) as stream, recipient() as client:
            old = [await next_event(stream) for _ in range(3)]
            await client.get(mail.pixel())
            new = await next_event(stream)
    assert [(e["id"], e["type"], e["verdict"]) for e in old] == [
        (1, "open", "human"), (2, "click", "bot"), (3, "click", "bot")
    ]
    assert {e["message"] for e in old} == {MESSAGE}
    assert [e["counts"] for e in old] == [None, None, None]  # unknown: as the verdict says
    assert old[1]["url"] == "https://example.com/a"
    assert new["id"] == 4 and new["message"] == mail.message  # ids continue
    assert new["counts"] is True
    assert {"counts", "via"} <= _columns(db, "events")
    assert "counts" in _columns(db, "revisions")
    assert "events_by_message" in _indexes(db)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == VERSION
        assert check.execute("SELECT count(*) FROM revisions").fetchone()[0] == 1
        # v3: the old events were each stored once, repeated by no flood.
        assert check.execute("SELECT repeats FROM events ORDER BY id").fetchall() == [
            (0,), (0,), (0,), (0,)
        ]


async def test_a_schema_2_database_gains_the_repeat_count_and_counts_a_flood(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.db"
    enrollment = _previous_release_db(db)
    with sqlite3.connect(db) as schema_2:  # the release before the flood count
        for statement in MIGRATIONS[1]:
            schema_2.execute(statement)
        schema_2.execute("PRAGMA user_version = 2")
    assert "repeats" not in _columns(db, "events")
    async with running_server(db) as server:
        mail = new_mail(_served_at(enrollment, server.port))
        async with recipient() as client:
            for _ in range(3):
                assert (await client.get(mail.pixel())).status_code == 200
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == VERSION == 4
        rows = check.execute("SELECT id, repeats FROM events ORDER BY id").fetchall()
    assert rows == [(1, 0), (2, 0), (3, 0), (4, 2)]


async def test_an_upgraded_database_opens_again_without_change(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    _previous_release_db(db)
    async with running_server(db):
        pass
    schema = _schema(db)
    async with running_server(db):
        pass
    assert _schema(db) == schema


def _schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return [(str(n), str(s)) for n, s in db.execute("SELECT name, sql FROM sqlite_master")]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", ["serve --listen 127.0.0.1:0", "add-user bob"])
def test_a_database_from_a_newer_release_is_refused_and_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    db = tmp_path / "server.db"
    _previous_release_db(db)
    with sqlite3.connect(db) as newer:
        newer.execute("PRAGMA journal_mode = DELETE")  # one file: its bytes are all of it
        newer.execute(f"PRAGMA user_version = {VERSION + 1}")
    before = _digest(db)
    code = main(["--profile", str(tmp_path / "p"), "server", *command.split(), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 1
    assert "newer MailBeacon" in err and f"schema version {VERSION + 1}" in err
    assert str(db) in err
    assert "Traceback" not in err
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("server.db")) == [
        "server.db"
    ]
