"""The team's policy on a real server, on SQLite and PostgreSQL (the ``database``
fixture): stored by the command, served at ``/v1/policy``, streamed as a ``policy``
message at connection and on each change, and obeyed by the server itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from mailbeacon.cli import main
from mailbeacon.server.config import Database
from mailbeacon.server.stores import open_store
from mailbeacon.server.team import load_policy, record_activity, set_policy_item, team_report
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    WAIT,
    db_option,
    new_mail,
    next_event,
    next_message,
    query,
    recipient,
    served_at,
    subscribed,
)

STREAM_3 = {"MailBeacon-Stream": "3", "MailBeacon-Agent": "0.3.0-test"}


def _cli(tmp_path: Path, database: Database, *args: str) -> int:
    return main(["--profile", str(tmp_path / "p"), "server", *args, "--db", db_option(database)])


def _set(database: Database, key: str, value: str, enforce: bool = False) -> None:
    store = open_store(database)
    try:
        set_policy_item(store, key, value, enforce, iso_utc(time.time()))
    finally:
        store.close()


async def test_the_command_stores_the_policy_and_get_prints_it(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(tmp_path, database, "policy", "set", "tracking.clicks", "off", "--enforce") == 0
    assert _cli(tmp_path, database, "policy", "set", "defaults.log", "on") == 0
    capsys.readouterr()
    assert _cli(tmp_path, database, "policy", "get", "--json") == 0
    assert capsys.readouterr().out.strip() == (
        '{"version": 2, "items": {"tracking.clicks": {"value": "false", "enforced": true}, '
        '"defaults.log": {"value": "true", "enforced": false}}}'
    )
    assert _cli(tmp_path, database, "policy", "set", "defaults.log", "perhaps") == 2
    assert "true or false" in capsys.readouterr().err
    assert _cli(tmp_path, database, "policy", "clear", "defaults.log") == 0
    store = open_store(database)
    try:
        policy = load_policy(store)
    finally:
        store.close()
    assert policy.version == 3
    assert [i.key for i in policy.items] == ["tracking.clicks"]


async def test_agents_get_the_policy_first_and_every_change_within_a_poll(
    server: TrackingServer, database: Database
) -> None:
    alice = served_at(await server.add_user("alice"), server.url)
    _set(database, "privacy.enabled", "true", enforce=True)
    await asyncio.sleep(0)  # the server sees the first version by its poll, or at connect
    async with httpx.AsyncClient(timeout=WAIT) as client:
        answer = await client.get(
            f"{server.url}/v1/policy", headers={"Authorization": f"Bearer {alice.api_token}"}
        )
        refused = await client.get(
            f"{server.url}/v1/policy", headers={"Authorization": "Bearer nope"}
        )
    assert answer.status_code == 200 and answer.json()["version"] == 1
    assert refused.status_code == 401
    await until_policy(server, 1)
    async with connect(
        f"ws://127.0.0.1:{server.port}/v1/stream?after=0",
        additional_headers={"Authorization": f"Bearer {alice.api_token}", **STREAM_3},
        open_timeout=WAIT,
    ) as ws:
        assert (await next_message(ws))["type"] == "hello"
        first = await next_message(ws)
        assert first["type"] == "policy" and first["version"] == 1
        assert first["items"]["privacy.enabled"] == {"value": "true", "enforced": True}
        assert (await next_message(ws))["type"] == "caught_up"
        started = time.monotonic()
        _set(database, "tracking.enabled", "false")
        changed = await next_message(ws, wait=2.0)
        assert changed["type"] == "policy" and changed["version"] == 2
        assert time.monotonic() - started < 2.0
    rows = query(database, "SELECT user_id, version FROM agent_seen")
    assert rows == [(alice.user_id, "0.3.0-test")]


async def until_policy(server: TrackingServer, version: int) -> None:
    """Until the server obeys policy ``version`` (its poll picked it up)."""
    async with asyncio.timeout(WAIT):
        while server._team.policy().version < version:  # noqa: ASYNC110 - the server's poll
            await asyncio.sleep(0.05)


async def test_with_tracking_off_hits_are_answered_but_nothing_is_recorded_or_streamed(
    server: TrackingServer, database: Database
) -> None:
    alice = served_at(await server.add_user("alice"), server.url)
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as ws:
        _set(database, "tracking.enabled", "false")
        await until_policy(server, 1)
        async with recipient() as client:
            pixel = await client.get(mail.pixel())
            click = await client.get(mail.click("https://example.com/offer"))
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
        assert click.status_code == 302
        assert click.headers["location"] == "https://example.com/offer"
        _set(database, "tracking.enabled", "true")
        await until_policy(server, 2)
        async with recipient() as client:
            assert (await client.get(mail.pixel())).status_code == 200
        # The first event the rep hears of is the hit after tracking came back on.
        event = await next_event(ws)
        assert event["type"] == "open"
    assert len(query(database, "SELECT id FROM events")) == 1


async def test_the_report_counts_per_rep_and_week(
    server: TrackingServer,
    database: Database,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = served_at(await server.add_user("alice"), server.url)
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as ws:
        async with recipient() as client:
            await client.get(mail.pixel())
            await client.get(mail.click("https://example.com/"))
            await client.get(mail.pixel(minted_ago=0))  # too soon after sending: a machine
        for _ in range(3):
            await next_event(ws)
    store = open_store(database)
    try:
        record_activity(store, alice.user_id, "sent", mail.message, iso_utc(time.time()))
        record_activity(store, alice.user_id, "reply", mail.message, iso_utc(time.time()))
        rows = team_report(store, "2000-01-01T00:00:00Z")
    finally:
        store.close()
    assert len(rows) == 1
    row = rows[0].to_json()
    assert (row["rep"], row["emails_tracked"], row["replies"]) == ("alice", 1, 1)
    assert row["clicks"] == 1 and row["human_opens"] >= 1
    capsys.readouterr()
    assert _cli(tmp_path, database, "report", "--json") == 0
    assert '"rep": "alice"' in capsys.readouterr().out
