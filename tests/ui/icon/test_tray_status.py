"""The tray tells the truth (issue 20): its icon and the status line at the top of its
menu show the agent's worst current state in plain words, never a green "Connected"
while sending is not set up or failing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pytestqt.qtbot import QtBot

from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState
from mailbeacon.agent.status import (
    Reachable,
    Sending,
    SendingState,
    StatusReport,
    Stream,
    StreamLink,
    Tracking,
)
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from tests.helpers.tray import relay_status

ALL_GOOD = StatusReport(
    Sending(SendingState.OK, 0, "Mail goes out through smtp.example.com:465.",
            "smtp.example.com:465"),
    Tracking("https://track.example.com", Reachable.YES, "Tracking works."),
    Stream(StreamLink.CONNECTED),
)
NOT_SET_UP = replace(ALL_GOOD, sending=Sending(SendingState.NOT_CONFIGURED, 2, "No server."))
FAILING = replace(
    ALL_GOOD, sending=Sending(SendingState.FAILING, 3, "refused", "smtp.example.com:465")
)
UNREACHABLE = replace(ALL_GOOD, tracking=Tracking("http://127.0.0.1:8725", Reachable.NO, "x"))
STREAM_DOWN = replace(ALL_GOOD, stream=Stream(StreamLink.OFFLINE, "Connecting…"))
PAUSED = replace(ALL_GOOD, paused_until="2099-01-01T15:30:00+00:00")


def with_report(report: StatusReport) -> AgentStatus:
    # The stream says "connected": what used to turn the icon green whatever else failed.
    return replace(relay_status(ConnectionState.CONNECTED), report=report)


def status_line(app: TrayApp) -> str:
    return app.menu.actions_by_key["status"].text()


@pytest.mark.parametrize(
    ("report", "line", "icon"),
    [
        (NOT_SET_UP, "Sending is not set up: 2 emails waiting", ConnectionState.OFFLINE),
        (FAILING, "Sending is failing: 3 emails waiting", ConnectionState.OFFLINE),
        (UNREACHABLE, "Tracking is not reachable by recipients", ConnectionState.CONNECTING),
        (STREAM_DOWN, "Event stream offline: opens are not heard now",
         ConnectionState.CONNECTING),
        (PAUSED, "Notifications paused until ", ConnectionState.PAUSED),
        (ALL_GOOD, "Sending and tracking work", ConnectionState.CONNECTED),
    ],
)
def test_icon_and_status_line_show_the_worst_state(
    qtbot: QtBot, icons: IconSet, report: StatusReport, line: str, icon: ConnectionState
) -> None:
    app = TrayApp(icons)
    app.on_status(with_report(report))
    assert status_line(app).startswith(line)
    assert app.tray.state == icon
    assert app.tray.icon().cacheKey() == icons.tray(icon).cacheKey()
    assert app.tray.tooltip_text().startswith(f"MailBeacon — {line}")
    assert "Connected" not in app.tray.tooltip_text()


def test_never_green_while_sending_is_not_set_up_even_if_all_else_fails_too(
    qtbot: QtBot, icons: IconSet
) -> None:
    app = TrayApp(icons)
    worst = replace(NOT_SET_UP, tracking=UNREACHABLE.tracking, stream=STREAM_DOWN.stream)
    app.on_status(with_report(worst))
    assert app.tray.state == ConnectionState.OFFLINE
    assert status_line(app) == "Sending is not set up: 2 emails waiting"
    tooltip = app.tray.tooltip_text().splitlines()
    assert tooltip[:3] == [
        "MailBeacon — Sending is not set up: 2 emails waiting",
        "Tracking is not reachable by recipients",
        "Event stream offline: opens are not heard now",
    ]
    # Fixed: the next status turns it back.
    app.on_status(with_report(ALL_GOOD))
    assert app.tray.state == ConnectionState.CONNECTED
    assert status_line(app) == "Sending and tracking work"


def test_a_pause_in_the_tray_greys_a_healthy_icon_but_not_a_failing_one(
    qtbot: QtBot, icons: IconSet
) -> None:
    app = TrayApp(icons)
    app.on_status(with_report(ALL_GOOD))
    app.pause_for_hour()
    assert app.tray.state == ConnectionState.PAUSED
    app.on_status(with_report(FAILING))
    assert app.tray.state == ConnectionState.OFFLINE
    app.resume()


def test_a_server_reply_with_an_ampersand_stays_text_in_the_menu(
    qtbot: QtBot, icons: IconSet
) -> None:
    app = TrayApp(icons)
    app.menu.set_status("Sending is failing: R&D relay", ())
    assert status_line(app) == "Sending is failing: R&&D relay"


def test_before_the_agent_speaks_the_menu_says_it_is_starting(
    qtbot: QtBot, icons: IconSet
) -> None:
    app = TrayApp(icons)
    assert status_line(app) == "Starting…"
    assert not app.menu.actions_by_key["status"].isEnabled()
