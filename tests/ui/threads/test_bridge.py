"""The agent runs on its own thread; the UI hears from it only through Qt signals."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pytestqt.qtbot import QtBot

from mailbeacon.agent.notifications.model import AgentListener, AgentStatus, ConnectionState
from mailbeacon.tray.threads.bridge import AgentBridge, AgentThread
from tests.helpers.tray import sample_notification


def test_notification_from_agent_thread_arrives_as_signal_on_ui_thread(qtbot: QtBot) -> None:
    bridge = AgentBridge()
    seen_on: list[threading.Thread] = []
    bridge.notificationReceived.connect(lambda _n: seen_on.append(threading.current_thread()))
    notification = sample_notification()

    with qtbot.waitSignal(bridge.notificationReceived, timeout=2000) as blocker:
        agent = threading.Thread(target=bridge.notification, args=(notification,))
        agent.start()
        agent.join(2)
        assert seen_on == []  # queued: nothing ran on the agent's thread
    assert blocker.args == [notification]
    assert seen_on == [threading.main_thread()]


def test_status_from_agent_thread_arrives_as_signal(qtbot: QtBot) -> None:
    bridge = AgentBridge()
    status = AgentStatus(ConnectionState.OFFLINE, detail="server unreachable")
    with qtbot.waitSignal(bridge.statusChanged, timeout=2000) as blocker:
        threading.Thread(target=bridge.status, args=(status,)).start()
    assert blocker.args == [status]


def test_agent_thread_runs_coroutine_and_stops_it_within_bound(qtbot: QtBot) -> None:
    bridge = AgentBridge()
    started = threading.Event()
    ended_cleanly = threading.Event()
    loop_threads: list[threading.Thread] = []

    async def agent(listener: AgentListener, stop: asyncio.Event) -> None:
        loop_threads.append(threading.current_thread())
        listener.status(AgentStatus(ConnectionState.CONNECTED))
        started.set()
        await stop.wait()
        ended_cleanly.set()

    thread = AgentThread(agent, bridge)
    with qtbot.waitSignal(bridge.statusChanged, timeout=2000):
        thread.start()
    assert started.wait(2)
    assert loop_threads[0] is not threading.main_thread()

    began = time.monotonic()
    assert thread.stop(timeout=2.0)
    assert time.monotonic() - began < 2.0
    assert ended_cleanly.is_set()
    assert not thread.is_running()


@pytest.mark.expect_log("did not stop within", "still running after")
def test_agent_ignoring_stop_is_cancelled_within_bound() -> None:
    started = threading.Event()

    async def stubborn(_listener: AgentListener, _stop: asyncio.Event) -> None:
        started.set()
        await asyncio.sleep(3600)

    thread = AgentThread(stubborn, AgentBridge())
    thread.start()
    assert started.wait(2)
    began = time.monotonic()
    assert thread.stop(timeout=1.0)
    assert time.monotonic() - began < 1.5
    assert thread.error is None


def test_stop_right_after_start_still_stops() -> None:
    async def agent(_listener: AgentListener, stop: asyncio.Event) -> None:
        await stop.wait()

    thread = AgentThread(agent, AgentBridge())
    thread.start()
    assert thread.stop(timeout=2.0)


@pytest.mark.expect_log("did not stop within", "still running after")
def test_stuck_agent_does_not_hold_quit_longer_than_the_bound() -> None:
    release = threading.Event()
    started = threading.Event()

    async def stuck(_listener: AgentListener, _stop: asyncio.Event) -> None:
        started.set()
        release.wait(10)  # blocks its loop: neither the stop event nor cancel can act

    thread = AgentThread(stuck, AgentBridge())
    thread.start()
    assert started.wait(2)
    began = time.monotonic()
    assert not thread.stop(timeout=0.5)
    assert time.monotonic() - began < 1.0
    release.set()
    assert thread.stop(timeout=2.0)


@pytest.mark.expect_log("the agent stopped")
def test_agent_failure_is_reported_on_ui_thread_not_raised(qtbot: QtBot) -> None:
    bridge = AgentBridge()

    async def broken(_listener: AgentListener, _stop: asyncio.Event) -> None:
        raise RuntimeError("records store is locked")

    thread = AgentThread(broken, bridge, on_exit=bridge.agent_exited)
    with qtbot.waitSignal(bridge.agentExited, timeout=2000) as blocker:
        thread.start()
    assert isinstance(blocker.args[0], RuntimeError)
    assert thread.stop(timeout=1.0)
    assert isinstance(thread.error, RuntimeError)
