"""PostgreSQL driver choice, measured: psycopg 3 (sync) against asyncpg for what the
store does on every group commit.

Run: ``.venv/bin/python -m tests.bench.bench_pgdriver`` (starts its own PostgreSQL,
tests/helpers/postgres.py). Both drivers, the same database, the same work:

* a round trip (``SELECT 1``) as the store's lookups make it;
* a group commit of 100 events: BEGIN + lock the counter row, COPY 100 rows, update
  the counter, COMMIT (a group commit's work), repeated.

psycopg is called as the server calls it (from a thread, synchronously); asyncpg from
its own event loop, as it only offers asyncio.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import psycopg

from tests.helpers.postgres import running_cluster

Row = tuple[str, float, str]
ROUND_TRIPS = 5000
GROUPS = 300
GROUP = 100
SCHEMA = (
    "CREATE TABLE ev (id BIGINT PRIMARY KEY, user_id BIGINT, message TEXT, ip TEXT, ua TEXT)",
    "CREATE TABLE counter (single BOOLEAN PRIMARY KEY, next_id BIGINT)",
    "INSERT INTO counter VALUES (TRUE, 1)",
)
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"


def _psycopg(url: str) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as db:
        started = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            db.execute("SELECT 1").fetchone()
        trip = (time.perf_counter() - started) / ROUND_TRIPS
        started = time.perf_counter()
        for _ in range(GROUPS):
            cursor = db.execute(b"BEGIN; SELECT next_id FROM counter FOR UPDATE")
            cursor.nextset()
            row = cursor.fetchone()
            assert row is not None
            first = int(row[0])
            with db.cursor() as cur, cur.copy("COPY ev FROM STDIN") as copy:
                for i in range(first, first + GROUP):
                    copy.write_row((i, 1, "m" * 22, "192.0.2.1", UA))
            db.execute("UPDATE counter SET next_id = %s", (first + GROUP,))
            db.execute("COMMIT")
        group = (time.perf_counter() - started) / GROUPS
    return trip, group


async def _asyncpg(url: str) -> tuple[float, float]:
    db = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            await db.fetchval("SELECT 1")
        trip = (time.perf_counter() - started) / ROUND_TRIPS
        started = time.perf_counter()
        for _ in range(GROUPS):
            async with db.transaction():
                first = int(await db.fetchval("SELECT next_id FROM counter FOR UPDATE"))
                rows = [(i, 1, "m" * 22, "192.0.2.1", UA) for i in range(first, first + GROUP)]
                await db.copy_records_to_table("ev", records=rows)
                await db.execute("UPDATE counter SET next_id = $1", first + GROUP)
        group = (time.perf_counter() - started) / GROUPS
    finally:
        await db.close()
    return trip, group


def run() -> list[Row]:
    """Round trip and group commit, per driver."""
    with running_cluster() as cluster:
        rows: list[Row] = []
        for name in ("psycopg", "asyncpg"):
            url = cluster.new_database(name)
            with psycopg.connect(url, autocommit=True) as db:
                for statement in SCHEMA:
                    db.execute(statement.encode())
            trip, group = _psycopg(url) if name == "psycopg" else asyncio.run(_asyncpg(url))
            rows.append((f"{name} round trip", trip * 1e6, "µs (SELECT 1), lower is better"))
            rows.append(
                (
                    f"{name} group commit of {GROUP}",
                    group * 1e3,
                    "ms (lock, COPY, counter, COMMIT), lower is better",
                )
            )
    return rows


if __name__ == "__main__":
    for metric, value, note in run():
        print(f"{metric:36} {value:10.1f} {note}")
