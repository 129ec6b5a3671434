"""What only PostgreSQL has: instances that start together, and the schema they share.

A real PostgreSQL started by the tests (tests/helpers/postgres.py), a fresh database
per test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.asyncio.client import connect

from mailbeacon.cli import main
from mailbeacon.core.classify import Hit
from mailbeacon.core.events import EventType, ServerEvent, Verdict
from mailbeacon.server.config import PostgresUrl
from mailbeacon.server.pg_schema import MIGRATIONS, stored_version
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.recorder import HitRequest
from mailbeacon.server.schema import VERSION, render
from mailbeacon.server.spool import Spool, Spooled
from mailbeacon.server.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from mailbeacon.server.store import UNSTORED, NewEvent
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.postgres import Cluster
from tests.helpers.server import (
    CHROME,
    new_mail,
    next_event,
    query,
    recipient,
    running_server,
    served_at,
    subscribed,
)

INSTANCES = 4


def test_both_back_ends_run_the_same_steps() -> None:
    assert len(MIGRATIONS) == len(SQLITE_MIGRATIONS) == VERSION
    assert render("sqlite") == SQLITE_MIGRATIONS
    # Each step changes the same tables on both (PostgreSQL adds only its id counter).
    for pg, sqlite in zip(MIGRATIONS, SQLITE_MIGRATIONS, strict=True):
        extra = [s for s in pg if "event_counter" in s]
        assert len(pg) - len(extra) == len(sqlite)


def test_instances_starting_together_migrate_once(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailbeacon.server.pg_schema")
    start = threading.Barrier(INSTANCES)
    found: list[int] = []
    failures: list[BaseException] = []

    def instance() -> None:
        start.wait()
        try:
            store = PgStore(postgres_url)
        except BaseException as exc:  # reported below
            failures.append(exc)
            return
        found.append(store.migrated_from)
        store.close()

    threads = [threading.Thread(target=instance) for _ in range(INSTANCES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert sorted(found) == [0] + [VERSION] * (INSTANCES - 1)  # one created it, once
    created = [r for r in caplog.records if "created the database schema" in r.getMessage()]
    assert len(created) == 1
    with psycopg.connect(postgres_url) as db:
        assert stored_version(db) == VERSION


async def test_servers_starting_concurrently_on_an_empty_database(postgres_url: str) -> None:
    db = PostgresUrl(postgres_url)
    servers = [running_server(db) for _ in range(3)]
    started = await asyncio.gather(*(s.__aenter__() for s in servers))
    try:
        assert len({s.port for s in started}) == 3
    finally:
        for s in servers:
            await s.__aexit__(None, None, None)


WRITERS = 4
GROUPS_PER_WRITER = 40


def _event(message: str) -> NewEvent:
    event = ServerEvent(
        UNSTORED,
        EventType.OPEN,
        message,
        None,
        "2026-01-01T00:00:00.000Z",
        "192.0.2.1",
        "UA",
        Verdict.HUMAN,
        "person",
    )
    return NewEvent(1, event)


def _insert(store: PgStore, writer: int, group: int) -> list[int]:
    return [store.insert_event(_event(f"w{writer}g{group}e{i}")) for i in range(1 + group % 5)]


@pytest.mark.parametrize("kind", ["transaction", "recorder's group"])
def test_concurrent_writers_never_open_a_gap_a_reader_skips(postgres_url: str, kind: str) -> None:
    """docs/architecture.md, "Event ids on PostgreSQL": writers on several connections
    (as several instances have them) pause at random inside their transactions, after
    taking ids (a transaction's stored ids, or a recorder's group's provisional ones:
    its counter is locked only at COMMIT); a reader advancing by id, as a resuming
    subscriber does, must still see every committed event, exactly once."""
    PgStore(postgres_url).close()  # the schema, before the race
    committed: list[int] = []
    kinds: list[bool] = []  # recorder's groups: True for one decided with provisional ids
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()
    randomness = random.Random(15)
    pauses = [
        [randomness.uniform(0, 0.004) for _ in range(GROUPS_PER_WRITER)] for _ in range(WRITERS)
    ]

    def writer(number: int) -> None:
        store = PgStore(postgres_url)
        try:
            for group, pause in enumerate(pauses[number]):
                if kind == "transaction":
                    with store.transaction():
                        ids = _insert(store, number, group)
                        time.sleep(pause)  # ids taken, not committed yet
                else:
                    store.begin()
                    given = _insert(store, number, group)
                    time.sleep(pause)  # the group being decided
                    store.commit()
                    resolve = store.resolver()
                    # Provisional ids when another writer held the counter at BEGIN.
                    kinds.append(resolve is not None)
                    ids = given if resolve is None else [resolve(i) for i in given]
                    assert (resolve is None) == all(i > 0 for i in given)
                with lock:
                    committed.extend(ids)
        finally:
            store.close()

    seen: list[int] = []

    def reader() -> None:
        store = PgStore(postgres_url)
        cursor = 0
        try:
            for _ in range(100_000):  # bounded; ends well before
                # Read "writers done" before the page: an empty page read after every
                # commit is the end; one read before the last commit is not.
                done = not writing.is_set()
                page = store.events_after(cursor, 50)
                events = [item.seq for _user, item in page if item.event is not None]
                seen.extend(events)
                if events:
                    cursor = events[-1]
                elif done:
                    return
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    reading = threading.Thread(target=reader)
    reading.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    writing.clear()
    reading.join(timeout=60)
    assert not reading.is_alive()
    assert len(committed) == sum(1 + g % 5 for g in range(GROUPS_PER_WRITER)) * WRITERS
    assert seen == sorted(committed), "the reader skipped or repeated an event"
    if kind != "transaction":
        assert True in kinds and False in kinds  # both ways of taking ids were raced


# psycopg prepares a statement on its sixth run; PostgreSQL plans its first five
# executions as they come and may keep one generic plan from then on.
EARLY_GROUPS = 16


def _scans_of_events(url: str) -> tuple[int, int]:
    """(sequential scans, index scans) of the events table so far."""
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'events'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_vanished_database_host_is_noticed_not_waited_on(postgres_url: str) -> None:
    # A network cut mid-statement would otherwise hold the commit thread (and a
    # stop) for the kernel's ~15 minutes of retransmissions: the store's socket
    # carries keepalives and a user timeout, unless the operator's URL says otherwise.
    store = PgStore(postgres_url + "?keepalives_idle=45")
    try:
        with socket.socket(fileno=os.dup(store.connection.pgconn.socket)) as sock:
            assert sock.family in (socket.AF_INET, socket.AF_INET6)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 45
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 30_000
    finally:
        store.close()


@pytest.mark.expect_log("pipeline mode")
def test_a_connection_left_in_pipeline_mode_is_made_again(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage that cuts a COMMIT's pipeline off with a result pending leaves
    psycopg's connection in pipeline mode ("cannot exit pipeline mode while busy")
    while the connection itself may be up again: every later statement failed with
    "PQsendQuery not allowed in pipeline mode" for as long as the server ran, and the
    recorder, seeing a database that answered, failed its groups instead of spooling
    them (the outage test's rare "answered hits never streamed"; pg_store.py,
    PgStore._lost)."""
    store = PgStore(postgres_url)
    try:
        stuck = store.connection.pgconn
        stuck.enter_pipeline_mode()
        stuck.send_query_params(b"SELECT 1", None)  # pending, as when the cut came
        assert store.unreachable()  # so the recorder spools, and replays later
        with caplog.at_level(logging.WARNING, logger="mailbeacon.server.pg_store"):
            with store.transaction():
                stored = store.insert_event(_event("after the outage"))
            assert store.rows("SELECT count(*) FROM events WHERE id = ?", (stored,)) == [(1,)]
    finally:
        store.close()
    assert "still in pipeline mode" in caplog.text


def test_repeats_find_their_events_by_index_after_the_table_has_grown(
    postgres_url: str,
) -> None:
    """A fresh server's first groups count repeats while the table is nearly empty; a
    plan cached then would scan the
    whole table for every later group until autovacuum next analyzed it: 2 ms a group
    at 12,000 events in the benchmark, growing with the table (pg_store.py)."""
    store = PgStore(postgres_url)
    try:
        for group in range(EARLY_GROUPS):
            with store.transaction():
                first = store.insert_event(_event(f"early{group}"))
            with store.transaction():
                assert store.add_repeat(1, first)
        with store.transaction():
            grown = [store.insert_event(_event(f"later{i}")) for i in range(5_000)]
        store.rows("SELECT pg_stat_force_next_flush()")
        seq_before, index_before = _scans_of_events(postgres_url)
        with store.transaction():
            for event_id in grown[:16]:
                assert store.add_repeat(1, event_id)
        store.rows("SELECT pg_stat_force_next_flush()")
        seq_after, index_after = _scans_of_events(postgres_url)
        counted = store.rows("SELECT sum(repeats) FROM events")
    finally:
        store.close()
    assert counted == [(EARLY_GROUPS + 16,)]
    assert seq_after == seq_before, "the repeats scanned the whole events table"
    assert index_after > index_before


async def test_two_servers_started_at_once_share_one_database(postgres_url: str) -> None:
    db = PostgresUrl(postgres_url)
    async with running_server(db) as one, running_server(db) as two:
        alice = await one.add_user("alice")
        mail = new_mail(alice)
        async with subscribed(one, alice.api_token) as stream, recipient() as client:
            pixel = mail.pixel().replace(f":{one.port}/", f":{two.port}/")
            assert (await client.get(pixel)).status_code == 200
            event = await next_event(stream)
    assert event["message"] == mail.message


@pytest.mark.expect_log("lost the connection that listens")
async def test_a_lost_notify_costs_latency_never_an_event(postgres_url: str) -> None:
    """The connection that LISTENs is cut (as a network drop or a database restart
    would): hits on the other instance still reach the subscriber, by polling, and the
    listener comes back by itself."""
    db = PostgresUrl(postgres_url)
    async with running_server(db) as one, running_server(db, poll_seconds=0.2) as two:
        alice = await one.add_user("alice")
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'mailbeacon-listen'"
            ).fetchall()
        assert len(cut) == 2  # one listener per instance
        async with subscribed(two, alice.api_token) as stream, recipient() as client:
            for _ in range(3):
                mail = new_mail(alice)
                assert (await client.get(mail.pixel())).status_code == 200
                assert (await next_event(stream))["message"] == mail.message
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            async with asyncio.timeout(5):
                while admin.execute(  # noqa: ASYNC110 - another process's state: polled
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'mailbeacon-listen'"
                ).fetchone() != (2,):
                    await asyncio.sleep(0.05)


def _spooled_hit(user_id: int, message: str) -> HitRequest:
    at = time.time() - 5
    hit = Hit(EventType.OPEN, "GET", "192.0.2.7", CHROME, at, int(at) - 3600, message, None)
    return HitRequest(user_id, hit, iso_utc(at), CHROME)


@pytest.mark.expect_log("left by a stopped server", "storing hits in")
async def test_a_spool_left_by_a_killed_server_is_replayed_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """A server was killed after replaying the first two entries of its spool (their
    progress committed with them) but before removing the file: the next start
    replays the third only, and a line cut short by the crash (never answered) not
    at all."""
    db = PostgresUrl(postgres_url)
    async with running_server(db) as first:
        alice = await first.add_user("alice")
    folder = tmp_path / "spool"
    left = Spool(folder)
    left.append([(_spooled_hit(alice.user_id, f"m{n}" * 11), None) for n in range(3)])
    (path,) = folder.glob("*.jsonl")
    with path.open("ab") as torn:
        torn.write(b'{"seq":4,"user"')
    left.close()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("INSERT INTO meta (key, value) VALUES (%s, '2')", (f"spool:{path.name}",))
    async with (
        running_server(db, spool_dir=folder) as second,
        subscribed(second, alice.api_token) as stream,
    ):
        event = await next_event(stream)
    assert event["message"] == "m2" * 11
    assert query(db, "SELECT message FROM events") == [("m2" * 11,)]
    assert list(folder.glob("*.jsonl")) == []


@pytest.mark.expect_log("storing hits in")
def test_a_spool_entry_survives_the_round_trip_and_a_torn_line_is_ignored(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    request = _spooled_hit(7, "x" * 22)
    spool.append([(request, 41)])
    (path,) = tmp_path.glob("*.jsonl")
    with path.open("ab") as torn:
        torn.write(b'{"seq":2')
    key, entries, offset = spool.head(10)
    assert key == f"spool:{path.name}"
    assert entries == [Spooled(1, request, 41)]
    spool.replayed(offset)
    assert spool.head(10)[1] == []
    spool.drop_head()
    assert not spool.pending() and not path.exists()
    spool.close()


async def test_a_pg_dump_restore_then_restored_is_a_new_generation_above_every_id(
    postgres_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's backup on PostgreSQL (the pg_dump command `server backup` names),
    events stored after it, a restore with pg_restore and `server restored`: the agent,
    which saw ids beyond the dump, receives every event of the new generation."""
    source = postgres_cluster.new_database()
    dump = tmp_path / "team.dump"
    async with running_server(PostgresUrl(source)) as server:
        alice = await server.add_user("alice")
        async with recipient() as client:
            assert (await client.get(new_mail(alice).pixel())).status_code == 200
            code = main(["server", "backup", "--db", source, str(dump)])
            command = capsys.readouterr().err.split(": ", 2)[-1].split("; ")[0]
            assert code == 2 and command.startswith("pg_dump ")
            # The command as printed, with the cluster's own pg_dump.
            await _run(str(postgres_cluster.bin / "pg_dump"), *shlex.split(command)[1:])
            after = new_mail(alice)  # stored after the dump: lost by the restore
            assert (await client.get(after.pixel())).status_code == 200
        async with subscribed(server, alice.api_token) as stream:
            seen = [await next_event(stream) for _ in range(2)]
        before = await _hello(server, alice.api_token)
    restored = postgres_cluster.new_database()
    await _run(
        str(postgres_cluster.bin / "pg_restore"), "--no-owner", f"--dbname={restored}", str(dump)
    )
    assert main(["server", "restored", "--db", restored]) == 0
    async with running_server(PostgresUrl(restored)) as server:
        hello = await _hello(server, alice.api_token)
        assert hello["db"] == before["db"] and hello["generation"] == before["generation"] + 1
        assert hello["floor"] >= seen[-1]["id"]
        async with subscribed(server, alice.api_token, after=seen[-1]["id"]) as stream:
            mail = new_mail(served_at(alice, server.url))
            async with recipient() as client:
                assert (await client.get(mail.pixel())).status_code == 200
            event = await next_event(stream)
    assert event["message"] == mail.message and event["id"] > hello["floor"]


async def _run(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


async def _hello(server: TrackingServer, token: str) -> dict[str, Any]:
    async with connect(
        f"ws://127.0.0.1:{server.port}/v1/stream?after=0",
        additional_headers={"Authorization": f"Bearer {token}", "MailBeacon-Stream": "2"},
        open_timeout=5,
    ) as websocket:
        hello: dict[str, Any] = json.loads(await websocket.recv())
    return hello
