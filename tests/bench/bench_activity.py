"""Activity feed timings (docs/performance.md: the feed opens on 100,000 events in under 0.5 s).

Run: ``.venv/bin/python -m tests.bench.bench_activity``. Fills a records file with
100,000 events (bulk insert, one transaction), then measures, offscreen, the time
from constructing ``ActivityWindow`` (and its model) to the first page painted.
Each row: metric, value, target or note.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer, SignalInstance
from PySide6.QtWidgets import QApplication

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.activity.model import FeedFilter
from mailbeacon.tray.views.activity.window import ActivityWindow
from tests.helpers.activity import fill_events

EVENTS = 100_000
TARGET_S = 0.5
RUNS = 7
WAIT_MS = 30_000


def _wait(signal: SignalInstance, start: Callable[[], object] = lambda: None) -> bool:
    """Run the event loop until ``signal`` fires (bounded); True if it did."""
    loop = QEventLoop()
    fired: list[bool] = []

    def done(*_args: object) -> None:
        fired.append(True)
        loop.quit()

    signal.connect(done)
    start()
    QTimer.singleShot(WAIT_MS, loop.quit)
    if not fired:
        loop.exec()
    signal.disconnect(done)
    return bool(fired)


def _open_window(store: RecordsStore) -> tuple[float, ActivityWindow]:
    """Seconds from constructing the window to its first page painted."""
    started = time.perf_counter()
    window = ActivityWindow(store)
    window.show()
    if not _wait(window.model.pageLoaded):
        raise RuntimeError("the first page never arrived")
    window.table.viewport().repaint()  # paints synchronously
    elapsed = time.perf_counter() - started
    if window.model.rowCount() == 0:
        raise RuntimeError("the first page is empty")
    return elapsed, window


def _close(window: ActivityWindow) -> None:
    window.shutdown()
    window.close()
    window.deleteLater()
    QApplication.processEvents()


def _longest_stall(action: Callable[[], object], signal: SignalInstance) -> tuple[float, float]:
    """(seconds until ``signal``, longest gap between 10 ms UI heartbeats meanwhile)."""
    beats: list[float] = []
    heart = QTimer()
    heart.setInterval(10)
    heart.timeout.connect(lambda: beats.append(time.perf_counter()))
    heart.start()
    started = time.perf_counter()
    beats.append(started)
    if not _wait(signal, action):
        raise RuntimeError("no answer")
    ended = time.perf_counter()
    heart.stop()
    beats.append(ended)
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    return ended - started, max(gaps)


def run() -> list[tuple[str, float, str]]:
    """Benchmark rows: (metric, value, target or note)."""
    app = QApplication.instance() or QApplication([])
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.db"
        started = time.perf_counter()
        fill_events(path, EVENTS)
        rows.append((f"fill {EVENTS:,} events (bulk insert), s", time.perf_counter() - started,
                     "setup"))

        started = time.perf_counter()
        store = RecordsStore(path)
        first, window = _open_window(store)
        cold = time.perf_counter() - started
        rows.append(("open store + window, first page painted (cold), s", cold,
                     f"target < {TARGET_S} s"))
        rows.append(("  of which window to first page, s", first, f"target < {TARGET_S} s"))
        _close(window)

        samples = []
        for _ in range(RUNS):
            elapsed, window = _open_window(store)
            samples.append(elapsed)
            _close(window)
        rows.append((f"window to first page painted, median of {RUNS}, s",
                     statistics.median(samples), f"target < {TARGET_S} s"))
        rows.append((f"window to first page painted, worst of {RUNS}, s", max(samples),
                     f"target < {TARGET_S} s"))

        window = ActivityWindow(store)
        window.show()
        _wait(window.model.pageLoaded)
        model = window.model
        took, _stall = _longest_stall(
            lambda: model.fetchMore(window.table.rootIndex()), model.pageLoaded
        )
        rows.append(("next page (offset 200), s", took, "off the UI thread"))
        model.set_filter(FeedFilter(show_filtered=True))
        _wait(model.pageLoaded)
        took, stall = _longest_stall(
            lambda: model.set_filter(FeedFilter(show_filtered=True, text="no such subject")),
            model.pageLoaded,
        )
        rows.append((f"search with no hit over {EVENTS:,} events, s", took,
                     "off the UI thread"))
        rows.append(("  longest UI-thread stall meanwhile, ms", stall * 1000,
                     "10 ms heartbeat; the GIL is shared"))
        _close(window)

        deep = time.perf_counter()
        store.activity(200, EVENTS - 200)
        rows.append(("deepest page (offset 99,800) query, ms", (time.perf_counter() - deep) * 1000,
                     "off the UI thread"))
        store.close()
    del app
    return rows


def main() -> None:
    for metric, value, note in run():
        print(f"{metric:55s} {value:10.3f}   {note}")


if __name__ == "__main__":
    main()
