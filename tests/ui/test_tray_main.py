"""``tray.app.main`` end to end in-process, and the ``mailbeacon tray`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keyring
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from mailbeacon import cli
from mailbeacon.agent.notifications.model import AgentListener, Notification
from mailbeacon.core.profile import Profile
from mailbeacon.tray import app as tray_app_module
from mailbeacon.tray.app import TrayApp, main
from mailbeacon.tray.commands import run_tray
from mailbeacon.tray.desktop.single_instance import SingleInstance, instance_name
from tests.helpers.tray import RecordingNotifier, Shown, relay_status, sample_notification


@contextmanager
def give_up_after(app: QApplication, ms: int) -> Iterator[None]:
    """Ends the event loop if a test's own ending never comes."""
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(app.quit)
    guard.start(ms)
    try:
        yield
    finally:
        guard.stop()


@pytest.mark.expect_log("no system tray on this desktop")
def test_main_shows_agent_notifications_and_quit_stops_the_agent(
    qapp: QApplication, profile: Profile
) -> None:
    notification = sample_notification()
    agent_stopped = threading.Event()
    opened: list[Notification] = []
    apps: list[TrayApp] = []

    async def agent(listener: AgentListener, stop: asyncio.Event) -> None:
        listener.status(relay_status())
        listener.notification(notification)
        await stop.wait()
        agent_stopped.set()

    def clicked_then_quit(shown: Shown) -> None:
        assert shown.on_click is not None
        shown.on_click()  # the rep clicks the notification...
        QTimer.singleShot(0, apps[0].menu.actions_by_key["quit"].trigger)  # ...then Quit

    notifier = RecordingNotifier(on_show=clicked_then_quit)
    with give_up_after(qapp, 10_000):
        code = main(
            argparse.Namespace(relay_password="s3cret-relay"),
            profile,
            agent,
            open_record=opened.append,
            notifier_factory=lambda _app: notifier,
            ready=apps.append,
        )
    assert code == 0
    assert [s.title for s in notifier.shown] == [notification.title]
    assert opened == [notification]
    assert agent_stopped.is_set()
    assert notifier.closed
    assert not apps[0].tray.isVisible()


@pytest.mark.expect_log("no system tray on this desktop")
def test_sigterm_quits_cleanly(qapp: QApplication, profile: Profile) -> None:
    agent_stopped = threading.Event()

    async def agent(_listener: AgentListener, stop: asyncio.Event) -> None:
        await stop.wait()
        agent_stopped.set()

    def terminate(_app: TrayApp) -> None:
        QTimer.singleShot(0, lambda: os.kill(os.getpid(), signal.SIGTERM))

    previous = signal.getsignal(signal.SIGTERM)
    with give_up_after(qapp, 10_000):
        code = main(
            argparse.Namespace(),
            profile,
            agent,
            notifier_factory=lambda _app: RecordingNotifier(),
            ready=terminate,
        )
    assert code == 0
    assert agent_stopped.is_set()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_second_launch_on_the_profile_shows_the_first_and_exits_0(
    qtbot: QtBot, profile: Profile
) -> None:
    running = SingleInstance(instance_name(profile))
    assert running.acquire()
    started: list[str] = []

    async def agent(_listener: AgentListener, _stop: asyncio.Event) -> None:
        started.append("agent")

    try:
        with qtbot.waitSignal(running.showRequested, timeout=3000):
            assert main(argparse.Namespace(), profile, agent) == 0
    finally:
        running.close()
    assert started == []


def test_tray_command_takes_the_agent_options() -> None:
    args = cli.build_parser().parse_args(
        [
            "tray",
            "--enroll",
            "KEY",
            "--smtp-listen",
            "127.0.0.1:2525",
            "--upstream",
            "smtps://smtp.example.com:465",
            "--relay-password",
            "s3cret-relay",
            "--imap",
            "imaps://rep@imap.example.com",
            "--notify",
            "jsonl",
        ]
    )
    assert args.func is run_tray
    assert (args.enroll, args.smtp_listen, args.upstream) == (
        "KEY",
        "127.0.0.1:2525",
        "smtps://smtp.example.com:465",
    )
    assert (args.relay_password, args.imap, args.notify) == (
        "s3cret-relay",
        "imaps://rep@imap.example.com",
        "jsonl",
    )


@pytest.mark.expect_log("mailbeacon.agent.runtime is missing")
def test_tray_command_without_agent_runtime_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], profile: Profile
) -> None:
    monkeypatch.setitem(sys.modules, "mailbeacon.agent.runtime", None)
    assert run_tray(argparse.Namespace(), profile) == 1
    assert "no agent runtime (mailbeacon.agent.runtime)" in capsys.readouterr().err


def test_tray_command_runs_the_agent_runtime_with_the_command_line_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], profile: Profile
) -> None:
    from mailbeacon.agent import runtime

    calls: list[tuple[Any, ...]] = []

    def run_agent(*args: Any) -> str:
        calls.append(args)
        return "coroutine"

    monkeypatch.setattr(runtime, "run_agent", run_agent)
    seen: dict[str, Any] = {}

    def fake_main(args: Any, prof: Profile, agent_main: Callable[..., Any], **kw: Any) -> int:
        bridge = RecordingListener()
        seen.update(args=args, profile=prof, result=agent_main(bridge, "stop"), kw=kw)
        seen["bridge"] = bridge
        return 0

    monkeypatch.setattr(tray_app_module, "main", fake_main)
    args = cli.build_parser().parse_args(
        ["tray", "--enroll", "KEY", "--smtp-listen", "127.0.0.1:0", "--notify", "jsonl"]
    )
    assert run_tray(args, profile) == 0
    assert (seen["args"], seen["profile"], seen["result"]) == (args, profile, "coroutine")
    assert seen["kw"]["first_run"] is True  # a new profile
    assert "activity" in {k for k, v in vars_of(seen["kw"]["windows"]).items() if v}
    [(prof, options, listener, stop)] = calls
    assert (prof, stop) == (profile, "stop")
    assert options == runtime.AgentOptions(enroll="KEY", smtp_listen="127.0.0.1:0")

    listener.notification(sample_notification())  # --notify jsonl: the tray and stdout
    assert seen["bridge"].notifications == [sample_notification()]
    assert json.loads(capsys.readouterr().out)["title"] == sample_notification().title

    seen["kw"]["first_run_shown"]()
    assert run_tray(args, profile) == 0
    assert seen["kw"]["first_run"] is False  # shown once: not again


class RecordingListener:
    def __init__(self) -> None:
        self.notifications: list[Notification] = []

    def notification(self, notification: Notification) -> None:
        self.notifications.append(notification)

    def status(self, status: object) -> None:
        pass


def vars_of(windows: Any) -> dict[str, Any]:
    return {name: getattr(windows, name) for name in windows.__slots__}


@pytest.mark.expect_log("no system tray on this desktop")
def test_saved_settings_restart_the_agent_without_crying_wolf(
    qapp: QApplication, profile: Profile
) -> None:
    starts: list[int] = []
    apps: list[TrayApp] = []

    async def agent(listener: AgentListener, stop: asyncio.Event) -> None:
        starts.append(len(starts))
        if len(starts) == 2:
            listener.notification(sample_notification())  # the restarted agent speaks
        await stop.wait()

    def restart_once(tray: TrayApp) -> None:
        apps.append(tray)
        QTimer.singleShot(0, tray.restartAgentRequested.emit)  # settings were saved

    def quit_on_first(_shown: Shown) -> None:
        QTimer.singleShot(0, apps[0].menu.actions_by_key["quit"].trigger)

    notifier = RecordingNotifier(on_show=quit_on_first)
    with give_up_after(qapp, 10_000):
        code = main(
            argparse.Namespace(relay_password="pw"),
            profile,
            agent,
            notifier_factory=lambda _app: notifier,
            ready=restart_once,
        )
    assert code == 0
    assert starts == [0, 1]
    assert [s.title for s in notifier.shown] == [sample_notification().title]


@pytest.mark.expect_log("no system tray on this desktop", "keyring unavailable")
def test_without_a_keyring_the_rep_chooses_a_session_only_password_or_quits(
    monkeypatch: pytest.MonkeyPatch, profile: Profile
) -> None:
    from keyring.backends.fail import Keyring as NoKeyring

    from mailbeacon.agent import runtime

    keyring.set_keyring(NoKeyring())
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(runtime, "run_agent", lambda *a: calls.append(a) or "coroutine")
    seen: dict[str, Any] = {}

    def fake_main(args: Any, prof: Profile, agent_main: Callable[..., Any], **kw: Any) -> int:
        agent_main(RecordingListener(), "stop")
        seen.update(kw=kw)
        return 0

    monkeypatch.setattr(tray_app_module, "main", fake_main)
    args = cli.build_parser().parse_args(["tray"])
    asked: list[str] = []

    def quit_(problem: str) -> bool:
        asked.append(problem)
        return False

    assert run_tray(args, profile, choose_session_only=quit_) == 1
    assert "keyring is unavailable" in asked[0] and calls == []

    assert run_tray(args, profile, choose_session_only=lambda _p: True) == 0
    [(_prof, options, _listener, _stop)] = calls
    assert options.relay_password and len(options.relay_password) >= 16
    assert seen["kw"]["relay_password"]() == options.relay_password  # shown to the rep
    assert seen["kw"]["first_run"] is True
    assert not any(profile.config_dir.parent.rglob("*keyring*"))  # nothing written aside


def test_without_a_display_the_tray_says_so_instead_of_aborting() -> None:
    from mailbeacon.tray.commands import no_display_problem

    problem = no_display_problem("linux", {})
    assert problem is not None and "mailbeacon agent" in problem
    assert no_display_problem("linux", {"DISPLAY": ":0"}) is None
    assert no_display_problem("linux", {"WAYLAND_DISPLAY": "wayland-0"}) is None
    assert no_display_problem("linux", {"QT_QPA_PLATFORM": "offscreen"}) is None
    assert no_display_problem("darwin", {}) is None
