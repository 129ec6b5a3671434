"""``server migrate``: a team moves from SQLite to PostgreSQL without losing a link.

A real SQLite server with reps, sent mail and events; a real PostgreSQL started by the
tests; the command as the operator runs it; then a server on PostgreSQL answering the
very URLs minted before, and the rep's agent resuming its stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from mailbeacon.cli import main
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.server.admin.accounts import add_admin, has_admin
from mailbeacon.server.config import PostgresUrl
from mailbeacon.server.migrate import MigrationRefused, migrate
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.sqlite_store import SqliteStore
from mailbeacon.server.team import load_policy, set_policy_item
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    WAIT,
    new_mail,
    next_event,
    next_message,
    query,
    recipient,
    running_server,
    served_at,
    subscribed,
)

TARGET = "https://example.com/pricing"


async def _hello(server: TrackingServer, token: str) -> dict[str, Any]:
    async with connect(
        f"ws://127.0.0.1:{server.port}/v1/stream?after=0",
        additional_headers={"Authorization": f"Bearer {token}", "MailBeacon-Stream": "2"},
        open_timeout=WAIT,
    ) as websocket:
        hello: dict[str, Any] = json.loads(await websocket.recv())
    return hello


async def _history(tmp_path: Path) -> tuple[Path, Enrollment, list[str], list[int], dict[str, Any]]:
    """A SQLite server's life: two reps, mail sent and opened and clicked. Returns the
    database, alice, the URLs in her sent mail, the ids her agent has, its hello."""
    db = tmp_path / "server.db"
    async with running_server(db) as server:
        alice = await server.add_user("alice")
        bob = await server.add_user("bob")
        mails = [new_mail(alice) for _ in range(3)]
        urls = [m.pixel() for m in mails] + [m.click(TARGET) for m in mails]
        async with recipient() as client:
            for url in urls[:4]:  # three opens and one click
                assert (await client.get(url)).status_code in (200, 302)
            assert (await client.get(new_mail(bob).pixel())).status_code == 200
        ids: list[int] = []
        async with subscribed(server, alice.api_token) as stream:
            for _ in range(4):
                ids.append((await next_event(stream))["id"])
        hello = await _hello(server, alice.api_token)
        base = alice.server_url
    return db, alice, [u.replace(base, "BASE") for u in urls], ids, hello


async def test_a_team_moves_to_postgresql_and_every_old_link_keeps_working(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db, alice, urls, ids, hello = await _history(tmp_path)

    code = main(
        [
            "--profile",
            str(tmp_path / "profile"),
            "server",
            "migrate",
            "--from",
            f"sqlite:///{db}",
            "--to",
            postgres_url,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "copied 2 users, 5 events" in out

    async with running_server(PostgresUrl(postgres_url)) as server:
        moved = served_at(alice, server.url)
        assert await _hello(server, alice.api_token) == hello  # the same stream
        async with subscribed(server, moved.api_token, after=ids[-1]) as stream:
            async with recipient() as client:
                opened = await client.get(urls[4].replace("BASE", server.url))
                clicked = await client.get(urls[5].replace("BASE", server.url))
                pixel = await client.get(urls[0].replace("BASE", server.url))
            assert opened.status_code == 302 and opened.headers["location"] == TARGET
            assert clicked.status_code == 302 and pixel.status_code == 200
            fresh = [await next_event(stream) for _ in range(3)]
            with pytest.raises(TimeoutError):
                await next_message(stream, wait=0.3)  # nothing old, nothing twice
    assert [e["type"] for e in fresh] == ["click", "click", "open"]
    assert all(e["id"] > ids[-1] for e in fresh)
    assert [e["id"] for e in fresh] == sorted(e["id"] for e in fresh)
    counted = query(PostgresUrl(postgres_url), "SELECT count(*) FROM events")
    assert counted == [(8,)]


async def test_an_interrupted_migration_resumes_and_copies_each_event_once(
    tmp_path: Path, postgres_url: str
) -> None:
    db, *_ = await _history(tmp_path)

    def interrupt(last_id: int) -> None:
        raise KeyboardInterrupt  # the operator's Ctrl-C, after the first chunk

    with pytest.raises(KeyboardInterrupt):
        migrate(db, postgres_url, chunk=2, after_chunk=interrupt)
    target = PostgresUrl(postgres_url)
    assert query(target, "SELECT count(*) FROM events") == [(2,)]
    result = migrate(db, postgres_url, chunk=2)
    assert result.resumed_after == 2 and result.events == 3
    source_rows = query(db, "SELECT id, message, type, verdict FROM events ORDER BY id")
    assert query(target, "SELECT id, message, type, verdict FROM events ORDER BY id") == (
        source_rows
    )
    again = migrate(db, postgres_url)  # once more: nothing new, nothing twice
    assert again.events == 0
    assert query(target, "SELECT count(*) FROM events") == [(len(source_rows),)]


async def test_a_non_empty_target_is_refused_unless_told(tmp_path: Path, postgres_url: str) -> None:
    async with running_server(PostgresUrl(postgres_url)) as server:
        await server.add_user("someone already here")
    (tmp_path / "a").mkdir()
    db, *_ = await _history(tmp_path / "a")
    with pytest.raises(MigrationRefused, match="already holds 1 users"):
        migrate(db, postgres_url)
    with pytest.raises(MigrationRefused, match="user id 1 exists in both"):
        migrate(db, postgres_url, into_non_empty=True)


async def test_the_teams_policy_and_administrators_move_too(
    tmp_path: Path, postgres_url: str
) -> None:
    db, *_ = await _history(tmp_path)
    source = SqliteStore(db)
    try:
        decided = set_policy_item(source, "tracking.enabled", "false", True, "2026-12-07T09:00Z")
        set_policy_item(source, "defaults.log", "true", False, "2026-12-07T09:01Z")
        add_admin(source, "Ola Sales-Ops", 1_800_000_000.0, "2026-12-07T09:02Z")
    finally:
        source.close()

    migrate(db, postgres_url)

    target = PgStore(postgres_url)
    try:
        moved = load_policy(target)
        assert moved == load_policy_of(db)
        assert moved.version == decided.version + 1
        assert not moved.tracking_allowed  # no rep's agent starts tracking again
        assert has_admin(target)
    finally:
        target.close()
    # Ids go on after the copied administrators: a new one does not collide.
    assert query(PostgresUrl(postgres_url), "SELECT name FROM admins ORDER BY id") == [
        ("Ola Sales-Ops",)
    ]
    again = PgStore(postgres_url)
    try:
        add_admin(again, "Second Admin", 1_800_000_000.0, "2026-12-07T10:00Z")
    finally:
        again.close()


def load_policy_of(db: Path) -> TeamPolicy:
    store = SqliteStore(db)
    try:
        return load_policy(store)
    finally:
        store.close()
