"""What only PostgreSQL has: instances that start together, and the schema they share.

A real PostgreSQL started by the tests (tests/helpers/postgres.py), a fresh database
per test.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import psycopg
import pytest

from mailbeacon.server.config import PostgresUrl
from mailbeacon.server.pg_schema import MIGRATIONS, stored_version
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.schema import VERSION, render
from mailbeacon.server.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from tests.helpers.server import running_server

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
