"""All benchmarks, one table: ``.venv/bin/python -m tests.bench [NAME ...]``.

Each ``bench_<name>.py`` module has ``run() -> list[(metric, value, note)]``; the note
names the unit and the target or baseline the figure is compared with.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("server", "server_pg", "notify", "rewrite", "relay", "classify", "tray", "activity")


def available() -> list[str]:
    """Benchmark names present, in report order."""
    found = {p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def machine() -> str:
    """One line about where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(names: list[str]) -> int:
    """Run the named benchmarks (all by default) and print one table."""
    rows: list[tuple[str, str, str, str]] = []
    failed = 0
    for name in names or available():
        started = time.monotonic()
        print(f"running bench_{name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
            results = module.run()
        except Exception as exc:  # one broken benchmark must not hide the others
            failed += 1
            rows.append((name, "FAILED", "", f"{type(exc).__name__}: {exc}"))
            continue
        for metric, value, note in results:
            rows.append((name, metric, f"{value:,.3f}".rstrip("0").rstrip("."), note))
        print(f"  done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    print(f"Machine: {machine()}")
    widths = [max(len(r[i]) for r in [("part", "metric", "value", "unit / target"), *rows])
              for i in range(4)]
    header = ("part", "metric", "value", "unit / target")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
