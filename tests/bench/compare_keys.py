"""Random against time-ordered message keys, on one server: what a first hit costs.

Run: ``.venv/bin/python -m tests.bench.compare_keys [PAIRS] [--shuffled]``

One ``mailbeacon server serve`` (SQLite, as ``bench_server``); each pair of runs
mints 20,000 fresh emails with random 96-bit message keys and 20,000 with keys in
mint order (``tokens.new_message_key``), and loads each set with ``wrk -t2 -c64
-d1s`` under ``bench_server``'s rotation script, the two kinds alternating which goes
first. One second is less than a pass over the set (each wrk thread walks its own
half), so every hit is a first hit: an INSERT into ``events_by_message``.
Prints each run's requests/s and server CPU per request and the medians.
``--shuffled`` hits each set in random order instead of mint order (the index then
costs what random keys cost). docs/performance.md, "Message keys in mint order".
"""

from __future__ import annotations

import random
import secrets
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from tests.bench.bench_server import (
    ROTATING_EMAILS,
    WRK_THREADS,
    _cpu_seconds,
    _enroll,
    _events,
    _pid,
    _pixel_path,
    _rotation_script,
    _server,
    _wrk,
)

LOAD = [f"-t{WRK_THREADS}", "-c64", "-d1s"]
KINDS: dict[str, Callable[[], str]] = {
    "random": lambda: secrets.token_hex(tokens.MESSAGE_KEY_BYTES),
    "mint order": tokens.new_message_key,
}


def _paths(enrollment: Enrollment, new_key: Callable[[], str], shuffled: bool) -> list[str]:
    paths = [_pixel_path(enrollment, new_key) for _ in range(ROTATING_EMAILS)]
    if shuffled:
        random.shuffle(paths)
    return paths


def main(argv: list[str]) -> int:
    """Alternate the two kinds of key PAIRS times (default 8); print the figures."""
    shuffled = "--shuffled" in argv
    numbers = [int(arg) for arg in argv if arg.isdigit()]
    pairs = numbers[0] if numbers else 8
    results: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="mb-keys-") as tmp:
        root = Path(tmp)
        db = root / "keys.db"
        enrollment = _enroll(root, db)
        with _server(root, db) as port:
            pid = _pid(port)
            for pair in range(pairs):
                order = list(KINDS) if pair % 2 == 0 else list(reversed(KINDS))
                for kind in order:
                    script = _rotation_script(
                        root / f"keys{pair}-{len(results[kind])}-{kind[0]}.lua",
                        _paths(enrollment, KINDS[kind], shuffled),
                    )
                    cpu, events = _cpu_seconds(pid), _events(db)
                    rate, done = _wrk(f"http://127.0.0.1:{port}/o/x.gif", script, LOAD)
                    per_request = 1e6 * (_cpu_seconds(pid) - cpu) / done
                    first = (_events(db) - events) / done
                    results[kind].append((rate, per_request, first))
                    print(f"pair {pair}, {kind:>10}: {rate:8,.0f} req/s, "
                          f"{per_request:5.1f} µs CPU per request, first hits {first:.2f}",
                          flush=True)
    for kind, runs in results.items():
        print(f"{kind:>10}: median {statistics.median(r for r, _, _ in runs):,.0f} req/s, "
              f"{statistics.median(c for _, c, _ in runs):.1f} µs CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
