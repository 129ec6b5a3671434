"""Where a pixel hit's time goes: py-spy over the server while wrk loads it.

Run: ``.venv/bin/python -m tests.bench.profile_server [one|rotating] [--all-threads] [--pg]``

Starts ``mailbeacon server serve`` on a temp SQLite database exactly as
``bench_server`` does, samples it with py-spy (500 Hz, only the thread holding the
interpreter lock unless ``--all-threads``) while ``wrk -t2 -c64 -d5s`` sends pixel
hits (one email, or 20,000 rotating), and prints the server's CPU per request (from
/proc) with the hottest lines and the share of each part of the path. ``--pg``: the
server on a PostgreSQL the run starts (tests/helpers/postgres.py), fsync on. The summary
in docs/performance.md ("The pixel path") was made with it.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from tests.bench.bench_server import (
    ROTATING_EMAILS,
    _cpu_seconds,
    _enroll,
    _pid,
    _pixel_path,
    _rotation_script,
    _server,
    _wrk,
)
from tests.helpers.postgres import running_cluster

# Parts of the path, by where a sample's innermost frame of ours is.
PARTS = (
    ("HTTP: parsing, writing, keep-alive (uvicorn, fastpath.py, coalesce.py)",
     ("uvicorn/", "fastpath.py", "coalesce.py", "http_limits.py", "answers.py")),
    ("token check and hit building (tracker.py, tokens.py, app.py)",
     ("tracker.py", "tokens.py", "server/app.py", "claim.py", "policy.py")),
    ("classification (classify.py, useragents.py, ipranges.py, addresses.py, recent.py)",
     ("classify.py", "useragents.py", "ipranges.py", "addresses.py", "recent.py",
      "reasons.py")),
    ("the writer: records, flood guard, inserts (recorder.py, sqlite_store.py)",
     ("recorder.py", "sqlite_store.py", "store.py", "events.py")),
    ("PostgreSQL's client (pg_store.py, pg_feed.py, psycopg)",
     ("pg_store.py", "pg_feed.py", "psycopg/")),
    ("commit hand-off (handoff.py, threads)", ("handoff.py", "threading.py", "thread.py")),
    ("fan-out (fanout.py)", ("fanout.py", "stream.py")),
)




def _part(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in PARTS:
            if any(marker in frame for marker in markers):
                return name
    return "event loop and system calls (uvloop, sockets)"


def summarise(raw: Path, top: int = 25) -> str:
    """The hottest lines and the share of each part, from py-spy's raw output."""
    total = 0
    lines: collections.Counter[str] = collections.Counter()
    parts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        frames = stack.split(";")
        total += samples
        lines[re.sub(r" \(/.*?(site-packages|python3\.\d+|app)/", " (", frames[-1])] += samples
        parts[_part(frames)] += samples
    out = [f"{total} samples", "", "share by part of the path:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in parts.most_common()]
    out += ["", f"hottest lines (self time, top {top}):"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in lines.most_common(top)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """Profile one wrk run and print the summary."""
    rotating = "one" not in argv
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if shutil.which("wrk") is None or not Path(spy).exists():
        print("needs wrk and py-spy (the test bootstrap installs both)", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mb-profile-")))
        db = root / "profile.db"
        if "--pg" in argv:
            # A URL where the helpers take a path: they pass it to --db as text.
            db = cast(Path, stack.enter_context(running_cluster()).new_database("profile"))
        enrollment = _enroll(root, db)
        one = _pixel_path(enrollment)
        script = None
        if rotating:
            paths = [_pixel_path(enrollment) for _ in range(ROTATING_EMAILS)]
            script = _rotation_script(root / "rotate.lua", paths)
        raw = root / "samples.txt"
        with _server(root, db) as port:
            pid = _pid(port)
            args = [spy, "record", "-p", str(pid), "-d", "6", "-r", "500", "-f", "raw",
                    "-o", str(raw), "--nonblocking"]
            if "--all-threads" not in argv:
                args.append("--gil")
            sampler = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # py-spy attaches
            before = _cpu_seconds(pid)
            rate, done = _wrk(f"http://127.0.0.1:{port}{one}", script)
            used = _cpu_seconds(pid) - before
            sampler.wait(timeout=30)
        print(f"{'20k emails rotating' if rotating else 'one email'}: {rate:,.0f} req/s, "
              f"server CPU {1e6 * used / done:.0f} µs per request")
        print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
