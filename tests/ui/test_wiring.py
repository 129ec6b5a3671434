"""What the tray's menu and notification clicks open for a profile."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QCheckBox, QWidget
from pytestqt.qtbot import QtBot

from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.status import (
    Reachable,
    Sending,
    SendingState,
    StatusReport,
    Stream,
    StreamLink,
    Tracking,
)
from mailbeacon.core.profile import Profile
from mailbeacon.tray.views.activity.window import ActivityWindow
from mailbeacon.tray.views.compose.window import ComposeWindow, SentEmail
from mailbeacon.tray.views.contacts.window import ContactsWindow
from mailbeacon.tray.views.email.actions import reply_subject
from mailbeacon.tray.views.email.window import EmailWindow
from mailbeacon.tray.views.reports.window import PERIODS, ReportsWindow
from mailbeacon.tray.views.settings.dialog import SettingsDialog
from mailbeacon.tray.wiring import LazyWindow, ProfileWindows, saved_pause, send_confirmation
from tests.helpers.contacts import fill_records
from tests.helpers.records import event, sent_email


def note(recipient: str | None) -> Notification:
    return Notification(event=1, type="open", message_id="<m@x>", subject="S",
                        recipient=recipient, anonymous=recipient is None,
                        title="t", body="b", at="2030-01-01T00:00:00.000Z")


def windows_for(profile: Profile) -> ProfileWindows:
    profile.data_dir.mkdir(parents=True)
    with RecordsStore.for_profile(profile) as store:
        fill_records(store)
    # A failure fails the test at once, never a modal box that would wait for a click.
    return ProfileWindows(profile, lambda: None, lambda _m: "250 queued", warn=fail_now)


def fail_now(message: str) -> None:
    raise AssertionError(f"the rep would be told: {message}")


def test_every_menu_entry_opens_its_window(qtbot: QtBot, profile: Profile) -> None:
    windows = windows_for(profile)
    menu = windows.menu()
    for opener in (menu.activity, menu.contacts, menu.reports, menu.settings):
        assert opener is not None
        opener()
    assert isinstance(windows.activity.window, ActivityWindow)
    assert isinstance(windows.contacts.window, ContactsWindow)
    assert isinstance(windows.reports.window, ReportsWindow)
    assert isinstance(windows.settings.window, SettingsDialog)
    assert menu.compose is not None
    menu.compose()
    assert [type(w) for w in windows._compose.windows] == [ComposeWindow]
    for lazy in (windows.activity, windows.contacts, windows.reports, windows.settings):
        assert lazy.window is not None
        qtbot.addWidget(lazy.window)
    for window in windows._compose.windows:
        qtbot.addWidget(window)


def shown_windows() -> list[QWidget]:
    return [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.isWindow()]


def test_a_notification_naming_an_email_opens_that_emails_view_alone(
    qtbot: QtBot, profile: Profile
) -> None:
    windows = windows_for(profile)
    with RecordsStore.for_profile(profile) as store:
        email = store.contacts()[0].email
        [sent] = store.emails_for_message_id(
            next(r.message_id for r in store.activity() if r.event.contact == email)
            or "<none>"
        )
    windows.open_record(replace(note(email), email_id=sent.id))
    [window] = shown_windows()
    assert isinstance(window, EmailWindow) and window.email_id == sent.id
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.view is not None, timeout=10_000)
    assert windows.contacts.window is None and windows.activity.window is None
    # Its Reply opens the compose window pre-filled, through the tray's compose opener.
    window.reply()
    [compose] = windows._compose.windows
    qtbot.addWidget(compose)
    assert compose.to_edit.text() == email
    assert compose.subject_edit.text() == reply_subject(sent.subject)
    compose._confirm = lambda *_: True  # the test's teardown closes the filled window


def test_a_notification_naming_only_a_contact_opens_the_record_alone(
    qtbot: QtBot, profile: Profile
) -> None:
    windows = windows_for(profile)
    with RecordsStore.for_profile(profile) as store:
        email = store.contacts()[0].email
    windows.open_record(note(email))
    contacts = windows.contacts.window
    assert isinstance(contacts, ContactsWindow)
    qtbot.addWidget(contacts)
    assert list(contacts.record_views) == [email]
    record = contacts.record_views[email]
    qtbot.addWidget(record)
    assert shown_windows() == [record]  # not the contacts list
    windows.contacts.open()  # the menu's Contacts still shows the list
    assert contacts.isVisible()


def test_a_notification_naming_nobody_opens_the_activity_feed(
    qtbot: QtBot, profile: Profile
) -> None:
    windows = windows_for(profile)
    windows.open_record(note(None))  # "Someone": the activity feed
    assert isinstance(windows.activity.window, ActivityWindow)
    qtbot.addWidget(windows.activity.window)
    assert shown_windows() == [windows.activity.window]


def test_sign_in_again_opens_the_account_flow(qtbot: QtBot, profile: Profile) -> None:
    """Issue 13: the notification's action reopens the sign-in (its button opens the
    browser), and nothing else opens."""
    windows = windows_for(profile)
    windows.open_record(replace(note(None), type="sign_in_required", title="Sign in again"))
    assert windows.account.window is not None
    qtbot.addWidget(windows.account.window)
    assert shown_windows() == [windows.account.window]


def test_saving_settings_with_start_at_login_writes_the_autostart_entry(
    qtbot: QtBot, profile: Profile, tmp_path: Path
) -> None:
    restarts: list[int] = []
    profile.data_dir.mkdir(parents=True)
    windows = ProfileWindows(profile, lambda: restarts.append(1), lambda _m: "250",
                             config_home=tmp_path / "xdg")
    windows.settings.open()
    dialog = windows.settings.window
    assert isinstance(dialog, SettingsDialog)
    qtbot.addWidget(dialog)
    checkbox = dialog.fields["app.autostart"].widget
    assert isinstance(checkbox, QCheckBox)
    checkbox.setChecked(True)
    dialog.accept()
    entry = tmp_path / "xdg" / "autostart" / "mailbeacon.desktop"
    assert "tray" in entry.read_text() and str(profile.config_dir.parent) in entry.read_text()
    assert restarts == [1]


def test_closing_stops_every_window_then_closes_the_store(
    qtbot: QtBot, profile: Profile
) -> None:
    windows = windows_for(profile)
    menu = windows.menu()
    for opener in (menu.activity, menu.contacts, menu.reports, menu.compose):
        assert opener is not None
        opener()
    activity = windows.activity.window
    assert isinstance(activity, ActivityWindow)
    qtbot.waitUntil(lambda: activity.model.rowCount() > 0, timeout=10_000)
    windows.close()
    assert windows._store is None
    assert windows.activity.window is None and windows._compose.windows == []


def test_the_pause_is_kept_in_the_settings_where_the_agent_reads_it(profile: Profile) -> None:
    pause = saved_pause(profile)
    assert not pause.is_paused()
    until = pause.pause_for(3600)
    saved = Settings.load(profile.config_file).notify.paused_until
    assert abs(datetime.fromisoformat(saved).timestamp() - until) < 1
    assert saved_pause(profile).is_paused()  # a restarted tray still knows
    pause.resume()
    assert Settings.load(profile.config_file).notify.paused_until == ""


def _report(state: str, detail: str = "") -> StatusReport:
    return StatusReport(
        Sending(SendingState(state), 1, detail),
        Tracking("https://track.example.com", Reachable.UNKNOWN),
        Stream(StreamLink.CONNECTED),
    )


def test_a_send_from_compose_shows_in_the_tray_as_the_agent_sees_it(
    qtbot: QtBot, profile: Profile
) -> None:
    """Issue 20: the compose window's send is confirmed by a notification, and the
    words follow the agent's status: sent, queued, or only "handed over" when unknown."""
    windows = windows_for(profile)
    shown: list[tuple[str, str]] = []
    windows.notify = lambda title, body: shown.append((title, body))
    report: list[StatusReport | None] = [None]
    windows.agent_status = lambda: report[0]

    def send(subject: str, track: bool = True) -> tuple[str, str]:
        windows.compose()
        compose = windows._compose.windows[-1]
        compose.from_edit.setText("rep@example.net")
        compose.to_edit.setText("alice@example.com")
        compose.subject_edit.setText(subject)
        compose.editor.setPlainText("Hello")
        compose.track_box.setChecked(track)
        before = len(shown)
        compose.send_button.click()
        qtbot.waitUntil(lambda: len(shown) > before, timeout=10_000)
        qtbot.waitUntil(lambda: compose not in windows._compose.windows, timeout=10_000)
        return shown[-1]

    assert send("Unknown") == (
        "Handed to MailBeacon", "It goes out as soon as your outgoing mail server answers."
    )
    report[0] = _report("ok")
    assert send("Offer") == ("Sent, tracked", "Offer")
    assert send("Note", track=False) == ("Sent", "Note")
    report[0] = _report("not_configured", "No outgoing mail server is set up.")
    assert send("Later") == ("Queued: sending is not set up", "No outgoing mail server is set up.")
    report[0] = _report("failing", "smtp.example.net is not taking mail: refused")
    assert send("Again") == (
        "Queued: sending is failing", "smtp.example.net is not taking mail: refused"
    )
    windows.close()


def test_a_confirmation_without_a_subject_still_reads() -> None:
    sent = SentEmail("250 queued", True, "")
    assert send_confirmation(sent, _report("ok")) == ("Sent, tracked", "(no subject)")


def test_compose_says_when_recipients_cannot_reach_tracking(
    qtbot: QtBot, profile: Profile
) -> None:
    """Issue 20: with a tracking address only this computer reaches, the compose window
    says so in plain words before the rep sends."""
    windows = windows_for(profile)
    unreachable = StatusReport(
        Sending(SendingState("ok"), 0, ""),
        Tracking("http://127.0.0.1:8725", Reachable.NO, "127.0.0.1 is this computer."),
        Stream(StreamLink.CONNECTED),
    )
    windows.agent_status = lambda: unreachable
    windows.compose()
    compose = windows._compose.windows[-1]
    qtbot.addWidget(compose)
    assert compose.reach_label.isVisibleTo(compose)
    assert "cannot reach tracking" in compose.reach_label.text()
    windows.agent_status = lambda: _report("ok")
    windows.compose()
    again = windows._compose.windows[-1]
    qtbot.addWidget(again)
    assert not again.reach_label.isVisibleTo(again)


def test_a_stored_event_moves_the_open_feed_contacts_and_reports_without_reopening(
    qtbot: QtBot, profile: Profile
) -> None:
    """Issue 20, live windows: the agent's news reaches every open window through
    ``ProfileWindows.event_added``; the reports' figures move without a reload."""
    windows = windows_for(profile)
    menu = windows.menu()
    for opener in (menu.activity, menu.contacts, menu.reports):
        assert opener is not None
        opener()
    activity, contacts, reports = (
        windows.activity.window, windows.contacts.window, windows.reports.window
    )
    assert isinstance(activity, ActivityWindow) and isinstance(contacts, ContactsWindow)
    assert isinstance(reports, ReportsWindow)
    for window in (activity, contacts, reports):
        qtbot.addWidget(window)
    with qtbot.waitSignal(reports.loaded, timeout=10_000):
        reports.period_box.setCurrentIndex(len(PERIODS) - 1)  # all time
    assert reports.report is not None
    opens = reports.report.totals.opens
    qtbot.waitUntil(lambda: activity.model.rowCount() > 0, timeout=10_000)
    qtbot.waitUntil(lambda: not contacts.model.loading, timeout=10_000)
    rows, people = activity.model.rowCount(), contacts.model.rowCount()
    with RecordsStore.for_profile(profile) as store:
        email_id = store.record_sent(sent_email("dora@example.com", subject="Demo"))
        store.add_event(event("open", "2030-01-05T10:00:00Z", email_id=email_id,
                              contact="dora@example.com"))
    with qtbot.waitSignal(reports.loaded, timeout=10_000):
        windows.event_added(note("dora@example.com"))
    assert reports.report is not None and reports.report.totals.opens == opens + 1
    qtbot.waitUntil(lambda: activity.model.rowCount() == rows + 1, timeout=10_000)
    qtbot.waitUntil(lambda: contacts.model.rowCount() == people + 1, timeout=10_000)
    windows.close()


@pytest.mark.expect_log("cannot open")
def test_a_window_that_cannot_be_made_says_why_and_opens_nothing(qtbot: QtBot) -> None:
    told: list[str] = []

    def broken() -> QWidget:
        raise OSError("records.db is not a database")

    lazy = LazyWindow("the reports", broken, warn=told.append)
    lazy.open()

    assert told == ["Cannot open the reports: records.db is not a database"]
    assert lazy.window is None
    assert shown_windows() == []
