"""Toast, balloon and the choice among the notification backends."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.desktop.notifiers import BalloonNotifier, DesktopNotifier, choose_notifier
from mailbeacon.tray.desktop.toast import ToastNotifier
from tests.helpers.tray import RecordingNotifier, sample_notification


def test_toast_shows_html_looking_text_literally(qtbot: QtBot, icons: IconSet) -> None:
    notifier = ToastNotifier(icons.app())
    toast = notifier.toast
    qtbot.addWidget(toast)
    notifier.show("<b>html</b>", "<i>body</i> & <a href='x'>link</a>", None)
    assert toast.isVisible()
    assert toast.title_label.textFormat() == Qt.TextFormat.PlainText
    assert toast.body_label.textFormat() == Qt.TextFormat.PlainText
    assert toast.title_label.text() == "<b>html</b>"
    assert toast.body_label.text() == "<i>body</i> & <a href='x'>link</a>"


def test_toast_click_opens_and_closes(qtbot: QtBot, icons: IconSet) -> None:
    notifier = ToastNotifier(icons.app())
    qtbot.addWidget(notifier.toast)
    clicked: list[str] = []
    notifier.show("Alicja opened “Oferta Q4”", "", lambda: clicked.append("open"))
    qtbot.mouseClick(notifier.toast, Qt.MouseButton.LeftButton)
    assert clicked == ["open"]
    assert not notifier.toast.isVisible()


def test_toast_goes_away_by_itself(qtbot: QtBot, icons: IconSet) -> None:
    notifier = ToastNotifier(icons.app(), duration_ms=50)
    qtbot.addWidget(notifier.toast)
    notifier.show("Alicja opened “Oferta Q4”", "", None)
    assert notifier.toast.isVisible()
    qtbot.waitUntil(lambda: not notifier.toast.isVisible(), timeout=2000)


def test_toast_sits_in_the_screen_corner(qtbot: QtBot, icons: IconSet) -> None:
    notifier = ToastNotifier(icons.app())
    qtbot.addWidget(notifier.toast)
    notifier.show("Alicja opened “Oferta Q4”", "first open", None)
    area = notifier.toast.screen().availableGeometry()
    frame = notifier.toast.geometry()
    assert area.contains(frame)
    assert frame.right() > area.center().x() and frame.bottom() > area.center().y()
    flags = notifier.toast.windowFlags()
    assert flags & Qt.WindowType.WindowStaysOnTopHint
    assert flags & Qt.WindowType.FramelessWindowHint


def test_balloon_click_runs_the_newest_callback(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    balloon = BalloonNotifier(app.tray, icons.app())
    clicked: list[int] = []
    balloon.show("first", "", lambda: clicked.append(1))
    balloon.show("second", "", lambda: clicked.append(2))
    app.tray.messageClicked.emit()
    assert clicked == [2]
    app.tray.messageClicked.emit()  # a stale click does nothing
    assert clicked == [2]
    balloon.close()


def test_clicking_a_shown_notification_opens_its_record(qtbot: QtBot, icons: IconSet) -> None:
    opened = []
    app = TrayApp(icons, open_record=opened.append)
    notifier = RecordingNotifier()
    app.set_notifier(notifier)
    notification = sample_notification()
    app.on_notification(notification)
    [shown] = notifier.shown
    assert (shown.title, shown.body) == (notification.title, notification.body)
    assert shown.on_click is not None
    shown.on_click()
    assert opened == [notification]


def test_notifications_before_the_notifier_exists_are_shown_when_it_comes(
    qtbot: QtBot, icons: IconSet
) -> None:
    app = TrayApp(icons)
    app.on_notification(sample_notification())
    notifier = RecordingNotifier()
    app.set_notifier(notifier)
    assert [s.title for s in notifier.shown] == [sample_notification().title]


def test_choice_prefers_freedesktop_then_balloon_then_toast(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    service = RecordingNotifier(kind="freedesktop")
    fallbacks: list[DesktopNotifier] = []

    def offered(fallback: DesktopNotifier) -> DesktopNotifier:
        fallbacks.append(fallback)
        return service

    chosen = choose_notifier(app.tray, icons.app(), None, freedesktop=offered)
    assert chosen is service
    assert fallbacks[0].kind in {"balloon", "toast"}  # what a failing service falls back to

    def absent(_fallback: DesktopNotifier) -> None:
        return None

    chosen = choose_notifier(
        app.tray, icons.app(), None, freedesktop=absent, balloon_possible=lambda: True
    )
    assert chosen.kind == "balloon"
    chosen.close()
    chosen = choose_notifier(
        app.tray, icons.app(), None, freedesktop=absent, balloon_possible=lambda: False
    )
    assert chosen.kind == "toast"
    chosen.close()
