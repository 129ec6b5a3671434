"""Python's cycle collector, run on the UI thread only.

The collector runs on whichever thread happens to allocate when a threshold trips.
If that is a worker thread and the garbage holds a Qt object, Qt frees it off its
thread and the process crashes. So automatic collection is off while the app runs,
and a timer on the UI thread collects whenever the thresholds say it is due.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class UiThreadCollector(QObject):
    """Collects cycles from a UI-thread timer; ``stop()`` gives the collector back."""

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start(interval_ms)

    def collect_if_due(self) -> int:
        """Collect the generations whose thresholds were passed; the objects freed."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return 0
        generation = 0
        if counts[1] > thresholds[1]:
            generation = 2 if counts[2] > thresholds[2] else 1
        return gc.collect(generation)

    def stop(self) -> None:
        """Stop the timer, collect once more here, and re-enable automatic collection."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
