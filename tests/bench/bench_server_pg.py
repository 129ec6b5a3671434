"""The tracking server on PostgreSQL (docs/operators.md, "PostgreSQL and several
instances"): pixel throughput with one and two instances next to SQLite and nginx's
static GIF, and the latency of a hit on instance A to a subscriber on instance B.

Run: ``.venv/bin/python -m tests.bench server_pg`` (starts its own PostgreSQL with
tests/helpers/postgres.py, fsync on). In the same run, with ``wrk -t2 -c64 -d5s`` over
20,000 emails rotating (every hit committed before it is answered):

* SQLite, one instance (the default back end);
* PostgreSQL, one instance;
* PostgreSQL, two instances behind nginx (round robin, configured as the shipped
  packaging/server/nginx.conf is: connections to the instances kept open);
* nginx serving the 43-byte GIF itself (the baseline).

Latency: a paced sender (1,000 hits/s) to instance A, the subscriber (another
process) on instance B, both on one PostgreSQL; p50 and p99 of send to arrival on
one monotonic clock.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from tests.bench.bench_server import (
    ROTATING_EMAILS,
    TARGET_ROTATING,
    Row,
    _enroll,
    _nginx_rate,
    _pixel_path,
    _rotation_script,
    _server,
    _stored,
    _wrk,
    hit_to_subscriber,
)
from tests.helpers.postgres import running_cluster
from tests.integration.server.balancer import running_balancer

WRK_NOTE = "req/s (wrk -t2 -c64 -d5s, 20k emails rotating)"


def _pg_stored(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) + coalesce(sum(repeats), 0) FROM events").fetchone()
    return 0 if row is None else int(row[0])


def throughput(root: Path, cluster_url: str, second_url: str) -> list[Row]:
    """Pixel req/s: SQLite, PostgreSQL one and two instances, nginx's GIF."""
    if shutil.which("wrk") is None:
        return [("pixel throughput", float("nan"), "wrk not installed")]
    rows: list[Row] = []
    sqlite_db = root / "throughput.db"
    enrollment = _enroll(root, sqlite_db)
    paths = [_pixel_path(enrollment) for _ in range(ROTATING_EMAILS)]
    script = _rotation_script(root / "sqlite.lua", paths)
    with _server(root, sqlite_db) as port:
        rate, done = _wrk(f"http://127.0.0.1:{port}{paths[0]}", script)
    rows.append(("SQLite, one instance", rate, WRK_NOTE))
    stored = _stored(sqlite_db)
    rows.append(("SQLite stored / answered", stored / done, f"{stored} / {done}"))

    for label, url, instances in (
        ("PostgreSQL, one instance", cluster_url, 1),
        ("PostgreSQL, two instances behind nginx", second_url, 2),
    ):
        enrollment = _enroll(root, url)  # type: ignore[arg-type]
        paths = [_pixel_path(enrollment) for _ in range(ROTATING_EMAILS)]
        script = _rotation_script(root / f"pg{instances}.lua", paths)
        with _server(root, url) as first:  # type: ignore[arg-type]
            if instances == 1:
                rate, done = _wrk(f"http://127.0.0.1:{first}{paths[0]}", script)
            else:
                with (
                    _server(root, url) as second,  # type: ignore[arg-type]
                    running_balancer(
                        root / "nginx-lb", [first, second], as_shipped=True
                    ) as balancer,
                ):
                    rate, done = _wrk(f"{balancer.url}{paths[0]}", script)
        rows.append((label, rate, WRK_NOTE))
        stored = _pg_stored(url)
        rows.append((f"{label}: stored / answered", stored / done, f"{stored} / {done}"))
    nginx = _nginx_rate(root, paths[0])
    if nginx is not None:
        rows.append(("nginx static GIF", nginx, "req/s, same run (baseline)"))
        for label, rate, note in list(rows):
            if note == WRK_NOTE:
                rows.append((f"{label} / nginx", rate / nginx,
                             f"ratio (target >= {TARGET_ROTATING})"))
    return rows


def latency(root: Path, url: str) -> list[Row]:
    """A hit on instance A to the subscriber on instance B, p50/p99, at RATE hits/s."""
    enrollment = _enroll(root, url)  # type: ignore[arg-type]
    with _server(root, url) as port_a, _server(root, url) as port_b:  # type: ignore[arg-type]
        p50, p99, note = hit_to_subscriber(port_a, port_b, enrollment)
    return [
        ("hit on A -> subscriber on B p50", p50, f"ms (target < 10; {note})"),
        ("hit on A -> subscriber on B p99", p99, f"ms (target < 50; {note})"),
    ]


def run() -> list[Row]:
    """Every row."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mb-bench-pg-") as tmp, running_cluster() as pg:
        root = Path(tmp)
        rows = throughput(root, pg.new_database("one"), pg.new_database("two"))
        rows += latency(root, pg.new_database("latency"))
    rows.append(("run time", time.monotonic() - started, "s"))
    return rows


def main() -> None:
    """Print the rows."""
    rows = run()
    width = max(len(name) for name, _, _ in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12.2f}  {note}")


if __name__ == "__main__":
    main()
