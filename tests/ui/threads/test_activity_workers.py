"""The worker the feed and the settings dialog run their slow calls on: results on
the UI thread, nothing delivered to a closed window, and closing never waits."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QObject
from pytestqt.qtbot import QtBot

from mailbeacon.tray.threads.workers import Worker

WAIT_MS = 10_000


def idle(qtbot: QtBot, worker: Worker) -> None:
    if worker.busy:
        with qtbot.waitSignal(
            worker.busyChanged, timeout=WAIT_MS, check_params_cb=lambda busy: not busy
        ):
            pass


def test_results_and_errors_arrive_on_the_ui_thread(qtbot: QtBot) -> None:
    worker = Worker(2)
    ui = threading.get_ident()
    got: list[tuple[str, object, bool]] = []

    async def later() -> str:
        await asyncio.sleep(0)
        return "from a coroutine"

    worker.submit(
        lambda: threading.get_ident() != ui,
        lambda v: got.append(("blocking", v, threading.get_ident() == ui)),
    )
    worker.submit(later, lambda v: got.append(("async", v, threading.get_ident() == ui)))
    worker.submit(
        lambda: 1 // 0,
        lambda v: got.append(("never", v, False)),
        lambda e: got.append(("error", type(e).__name__, threading.get_ident() == ui)),
    )
    idle(qtbot, worker)
    assert sorted(got, key=str) == sorted(
        [
            ("blocking", True, True),
            ("async", "from a coroutine", True),
            ("error", "ZeroDivisionError", True),
        ],
        key=str,
    )


def test_one_thread_runs_calls_in_order(qtbot: QtBot) -> None:
    worker = Worker(1)
    order: list[int] = []
    for n in range(20):
        worker.submit(lambda n=n: n, order.append)
    idle(qtbot, worker)
    assert order == list(range(20))
    assert worker.thread_count <= 1


def test_a_cancelled_call_delivers_nothing(qtbot: QtBot) -> None:
    worker = Worker(1)
    release = threading.Event()
    got: list[object] = []
    job = worker.submit(lambda: release.wait(WAIT_MS / 1000), got.append)
    job.cancel()
    release.set()
    idle(qtbot, worker)
    assert got == []


def test_deleting_the_owner_never_waits_and_nothing_is_delivered(qtbot: QtBot) -> None:
    owner = QObject()
    worker = Worker(1, owner, idle_seconds=0.05)
    release = threading.Event()
    ran_on: list[threading.Thread] = []
    got: list[object] = []

    def slow() -> str:
        ran_on.append(threading.current_thread())
        release.wait(WAIT_MS / 1000)
        return "late"

    worker.submit(slow, got.append)
    qtbot.waitUntil(lambda: bool(ran_on), timeout=WAIT_MS)
    started = time.perf_counter()
    shiboken6.delete(owner)  # what closing a window with WA_DeleteOnClose does
    assert time.perf_counter() - started < 1.0  # a running call does not hold it up
    assert not shiboken6.isValid(worker)
    release.set()
    ran_on[0].join(WAIT_MS / 1000)  # the thread retires once idle
    assert not ran_on[0].is_alive()
    QCoreApplication.processEvents()
    assert got == []


def test_idle_threads_retire(qtbot: QtBot) -> None:
    worker = Worker(2, idle_seconds=0.05)
    worker.submit(lambda: None, lambda _v: None)
    idle(qtbot, worker)
    qtbot.waitUntil(lambda: worker.thread_count == 0, timeout=WAIT_MS)
    got: list[int] = []
    worker.submit(lambda: 7, got.append)  # a new thread starts when needed
    idle(qtbot, worker)
    assert got == [7]


@pytest.mark.expect_log("still runs after")
def test_close_waits_a_bounded_time(qtbot: QtBot) -> None:
    worker = Worker(1)
    release = threading.Event()
    worker.submit(lambda: release.wait(WAIT_MS / 1000), lambda _v: None)
    assert worker.close(timeout_ms=50) is False  # still running: reported, not waited out
    release.set()
    assert worker.wait(WAIT_MS)
