"""Pausing notifications: for an hour, until tomorrow, or until resumed."""

from __future__ import annotations

from datetime import UTC, datetime

from pytestqt.qtbot import QtBot

from mailbeacon.agent.notifications.model import ConnectionState
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.icon.pause import HOUR, PauseState
from tests.helpers.fakes import FakeClock
from tests.helpers.tray import RecordingNotifier, relay_status, sample_notification


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_pause_for_an_hour_ends_when_the_clock_passes_it() -> None:
    clock = FakeClock(at("2026-03-02T14:00:00+00:00"))
    pause = PauseState(clock, tz=UTC)
    assert not pause.is_paused()
    pause.pause_for(HOUR)
    assert pause.is_paused()
    assert pause.describe_end() == "15:00"
    clock.advance(HOUR - 1)
    assert pause.is_paused()
    assert pause.seconds_left() == 1
    clock.advance(1)
    assert not pause.is_paused()
    assert pause.describe_end() == ""


def test_until_tomorrow_means_tomorrow_morning() -> None:
    clock = FakeClock(at("2026-03-02T17:30:00+00:00"))  # a Monday evening
    pause = PauseState(clock, tz=UTC)
    assert pause.pause_until_tomorrow() == at("2026-03-03T08:00:00+00:00")
    assert pause.describe_end() == "Tue 08:00"
    clock.now = at("2026-03-03T07:59:59+00:00")
    assert pause.is_paused()
    clock.now = at("2026-03-03T08:00:00+00:00")
    assert not pause.is_paused()


def test_resume_ends_the_pause_at_once() -> None:
    pause = PauseState(FakeClock())
    pause.pause_for(HOUR)
    pause.resume()
    assert not pause.is_paused()


def test_pause_for_an_hour_suppresses_notifications_until_it_passes(
    qtbot: QtBot, icons: IconSet
) -> None:
    clock = FakeClock()
    app = TrayApp(icons, pause=PauseState(clock))
    notifier = RecordingNotifier()
    app.set_notifier(notifier)
    app.on_status(relay_status())

    app.menu.actions_by_key["pause_hour"].trigger()
    app.on_notification(sample_notification(event=1, title="Alicja opened “Oferta Q4”"))
    clock.advance(HOUR - 1)
    app.on_notification(sample_notification(event=2, title="Alicja clicked “Cennik”"))
    assert notifier.shown == []
    assert app.tray.state == ConnectionState.PAUSED
    assert "Last: Alicja clicked “Cennik”" in app.tray.tooltip_text()  # still noted

    clock.advance(2)
    app.on_notification(sample_notification(event=3, title="Alicja opened “Oferta Q4”"))
    assert [s.title for s in notifier.shown] == ["Alicja opened “Oferta Q4”"]
    app.refresh_pause()  # what the end-of-pause timer does
    assert app.tray.state == ConnectionState.CONNECTED
    assert not app.menu.actions_by_key["resume"].isEnabled()


def test_end_of_pause_timer_restores_the_icon(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)  # the real clock: the timer must fire by itself
    app.on_status(relay_status())
    app.pause.pause_for(0.05)
    app.refresh_pause()
    assert app.tray.state == ConnectionState.PAUSED
    qtbot.waitUntil(lambda: app.tray.state == ConnectionState.CONNECTED, timeout=2000)
