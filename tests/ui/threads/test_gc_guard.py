"""Cycle collection happens on the UI thread only while the app runs."""

from __future__ import annotations

import gc

from pytestqt.qtbot import QtBot

from mailbeacon.tray.threads.gc_guard import UiThreadCollector


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_collector_runs_from_the_ui_timer_and_gives_gc_back(qtbot: QtBot) -> None:
    gc.enable()
    collector = UiThreadCollector(interval_ms=10)
    assert not gc.isenabled()
    threshold = gc.get_threshold()[0]
    for _ in range(threshold * 3):  # garbage cycles, well past the first threshold
        Cycle()
    qtbot.waitUntil(lambda: gc.get_count()[0] <= threshold, timeout=5000)
    collector.stop()
    assert gc.isenabled()
