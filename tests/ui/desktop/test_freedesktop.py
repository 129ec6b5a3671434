"""Freedesktop notifications over a real (private) session bus and a notification server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.desktop.freedesktop import FreedesktopNotifier
from mailbeacon.tray.desktop.notifiers import choose_notifier
from tests.helpers.tray import FakeNotificationServer, RecordingNotifier

TITLE = "Alicja opened “Oferta Q4”"


def open_notifier(icons: IconSet, fallback: RecordingNotifier | None = None) -> FreedesktopNotifier:
    notifier = FreedesktopNotifier.open(icons.app_icon_path(), fallback=fallback)
    assert notifier is not None
    return notifier


def test_notify_carries_plain_title_escaped_body_and_open_action(
    qtbot: QtBot, icons: IconSet, notification_server: FakeNotificationServer
) -> None:
    notifier = open_notifier(icons)
    try:
        notifier.show(TITLE, "<b>html</b> & co", lambda: None)
        qtbot.waitUntil(lambda: len(notification_server.calls) == 1, timeout=5000)
    finally:
        notifier.close()
    app_name, replaces, app_icon, summary, body, actions, hints, timeout = (
        notification_server.calls[0]
    )
    assert notification_server.signatures == ["susssasa{sv}i"]
    assert (app_name, replaces, timeout) == ("MailBeacon", 0, -1)
    assert app_icon.startswith("file://") and app_icon.endswith("/icons/app.svg")
    assert summary == TITLE  # the summary is plain text by the spec
    assert body == "&lt;b&gt;html&lt;/b&gt; &amp; co"  # the server reads body markup
    assert actions == ["default", "Open"]
    assert hints == {"desktop-entry": ("s", "mailbeacon")}


def test_body_goes_unescaped_to_a_server_without_markup(
    qtbot: QtBot, icons: IconSet, session_bus: str
) -> None:
    server = FakeNotificationServer(capabilities=("body", "actions"))
    notifier = open_notifier(icons)
    try:
        notifier.show(TITLE, "<b>html</b> & co", None)
        qtbot.waitUntil(lambda: len(server.calls) == 1, timeout=5000)
    finally:
        notifier.close()
        server.close()
    assert server.calls[0][4] == "<b>html</b> & co"
    assert server.calls[0][5] == []  # nothing to open: no action offered


def test_clicking_the_notification_runs_on_click_on_the_ui_thread(
    qtbot: QtBot, icons: IconSet, notification_server: FakeNotificationServer
) -> None:
    clicked_on: list[threading.Thread] = []
    notifier = open_notifier(icons)
    try:
        notifier.show(TITLE, "", lambda: clicked_on.append(threading.current_thread()))
        notifier.show("Other", "", lambda: clicked_on.append(threading.current_thread()))
        qtbot.waitUntil(lambda: len(notification_server.calls) == 2, timeout=5000)
        notification_server.invoke_action(1, "default")
        qtbot.waitUntil(lambda: len(clicked_on) == 1, timeout=5000)
    finally:
        notifier.close()
    assert clicked_on == [threading.main_thread()]


@pytest.mark.expect_log("notification service failed")
def test_a_failing_service_hands_the_notification_to_the_fallback(
    qtbot: QtBot, icons: IconSet, session_bus: str
) -> None:
    server = FakeNotificationServer(fail_notify=True)
    fallback = RecordingNotifier()
    notifier = open_notifier(icons, fallback)
    try:
        notifier.show(TITLE, "body", None)
        qtbot.waitUntil(lambda: len(fallback.shown) == 1, timeout=5000)
    finally:
        notifier.close()
        server.close()
    assert (fallback.shown[0].title, fallback.shown[0].body) == (TITLE, "body")
    assert fallback.closed  # the notifier owns its fallback


def test_chosen_when_the_bus_has_the_service(
    qtbot: QtBot, icons: IconSet, notification_server: FakeNotificationServer
) -> None:
    app = TrayApp(icons)
    chosen = choose_notifier(app.tray, icons.app(), icons.app_icon_path())
    assert chosen.kind == "freedesktop"
    chosen.close()


def test_not_offered_on_a_bus_without_the_service(
    qtbot: QtBot, icons: IconSet, session_bus: str
) -> None:
    assert FreedesktopNotifier.open(icons.app_icon_path()) is None


def test_not_offered_without_a_session_bus(
    qtbot: QtBot, icons: IconSet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert FreedesktopNotifier.open(icons.app_icon_path()) is None
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/nobody-listens")
    assert FreedesktopNotifier.open(icons.app_icon_path()) is None
