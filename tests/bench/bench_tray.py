"""Tray launch timing (docs/performance.md: icon up under 1 s from launch; idle CPU ~0).

Run: ``.venv/bin/python -m tests.bench.bench_tray``. Each run starts a fresh Python
process (offscreen) that parses ``tray`` with the real command line (as the desktop
entry's ``mailbeacon tray`` does) and runs the real ``tray.app.main`` with an idle
fake agent. The parent notes ``time.monotonic()`` (system-wide on Linux) just before
starting it; the child reports the same clock right after the tray icon's ``show()``
returned, and after its imports. It then stays idle for a while and reports the CPU
time it used meanwhile (agent thread included), which should be about zero: nothing
polls.
Each row: metric, value, unit and target.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = 5
TARGET_S = 1.0
IDLE_S = 2.0
CHILD_TIMEOUT_S = 30.0


def _child(profile_dir: str) -> int:
    """One launch: print the time marks as one JSON line, then quit."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # What the desktop entry's `mailbeacon tray` does before the tray starts: the
    # command line's dispatcher and the tray command's module (imports are part of
    # what is measured; until 0.3.1 the dispatcher imported every command's module).
    from mailbeacon import cli

    cli.build_parser("tray").parse_args(["tray"])
    import argparse
    import asyncio

    from PySide6.QtCore import QTimer

    from mailbeacon.agent.notifications.model import AgentListener
    from mailbeacon.core.profile import Profile
    from mailbeacon.tray.app import TrayApp, main
    from mailbeacon.tray.icon import tray_icon

    marks = {"imported": time.monotonic()}
    show = tray_icon.TrayIcon.show

    def timed_show(icon: tray_icon.TrayIcon) -> None:
        show(icon)
        marks.setdefault("shown", time.monotonic())

    tray_icon.TrayIcon.show = timed_show  # type: ignore[method-assign,assignment]

    async def idle_agent(_listener: AgentListener, stop: asyncio.Event) -> None:
        await stop.wait()

    def ready(app: TrayApp) -> None:
        cpu_before = time.process_time()

        def report() -> None:
            marks["idle_cpu_s"] = time.process_time() - cpu_before
            print(json.dumps(marks), flush=True)
            app.quitRequested.emit()

        QTimer.singleShot(int(IDLE_S * 1000), report)

    return main(argparse.Namespace(), Profile.at(Path(profile_dir)), idle_agent, ready=ready)


def _launch(profile_dir: str) -> dict[str, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_tray", "--child", profile_dir],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=True,
    )
    marks: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return {
        "to_icon": marks["shown"] - started,
        "to_imported": marks["imported"] - started,
        "idle_cpu": marks["idle_cpu_s"] / IDLE_S * 100,
    }


def run() -> list[tuple[str, float, str]]:
    """Launch the tray RUNS times; median and worst launch-to-icon, idle CPU."""
    with tempfile.TemporaryDirectory(prefix="mb-bench-tray-") as folder:
        runs = [_launch(str(Path(folder) / f"profile{i}")) for i in range(RUNS)]
    to_icon = [r["to_icon"] for r in runs]
    return [
        ("launch_to_icon_median", statistics.median(to_icon), f"s (target < {TARGET_S:g} s)"),
        ("launch_to_icon_max", max(to_icon), f"s over {RUNS} launches"),
        (
            "launch_to_imports_median",
            statistics.median(r["to_imported"] for r in runs),
            "s (interpreter start + imports, part of the above)",
        ),
        (
            "idle_cpu_max",
            max(r["idle_cpu"] for r in runs),
            f"% of one core over {IDLE_S:g} s idle (target ~0: no polling)",
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(_child(sys.argv[2]))
    for metric, value, note in run():
        print(f"{metric:28} {value:10.3f}  {note}")
