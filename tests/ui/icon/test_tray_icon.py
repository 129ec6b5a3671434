"""The tray icon shows the agent's state; its tooltip the last event; its menu only
what works."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet, PanelTheme, detect_panel_theme, find_resource
from mailbeacon.tray.icon.menu import TrayMenu, Windows
from mailbeacon.tray.icon.tray_icon import tooltip_markup
from tests.helpers.tray import RecordingNotifier, relay_status, sample_notification


def shows(app: TrayApp, icons: IconSet, state: ConnectionState) -> bool:
    return app.tray.state == state and app.tray.icon().cacheKey() == icons.tray(state).cacheKey()


@pytest.mark.parametrize("theme", list(PanelTheme))
@pytest.mark.parametrize("state", list(ConnectionState))
def test_every_tray_icon_is_a_real_svg_legible_at_16_px(
    qapp: QApplication, theme: PanelTheme, state: ConnectionState
) -> None:
    path = find_resource(f"icons/{IconSet.tray_name(state, theme)}.svg")
    assert path is not None and path.parent.name == "icons"
    image = IconSet(theme).tray(state).pixmap(16, 16).toImage()
    opaque = sum(1 for x in range(16) for y in range(16) if image.pixelColor(x, y).alpha() > 128)
    assert opaque > 40  # the envelope and badge drew something solid


def test_app_icon_exists(qapp: QApplication) -> None:
    assert find_resource("icons/app.svg") is not None
    image: QImage = IconSet(PanelTheme.DARK).app().pixmap(24, 24).toImage()
    assert image.pixelColor(12, 12).alpha() == 255


def test_icon_and_tooltip_follow_agent_status(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    assert shows(app, icons, ConnectionState.CONNECTING)

    app.on_status(AgentStatus(ConnectionState.CONNECTED, server_url="http://127.0.0.1:8025"))
    assert shows(app, icons, ConnectionState.CONNECTED)
    assert "MailBeacon — Connected" in app.tray.tooltip_text()

    app.on_status(AgentStatus(ConnectionState.OFFLINE, detail="Tracking server unreachable"))
    assert shows(app, icons, ConnectionState.OFFLINE)
    assert "Offline" in app.tray.tooltip_text()
    assert "Tracking server unreachable" in app.tray.tooltip_text()

    app.on_status(AgentStatus(ConnectionState.CONNECTING))
    assert shows(app, icons, ConnectionState.CONNECTING)

    app.on_status(AgentStatus(ConnectionState.PAUSED))
    assert shows(app, icons, ConnectionState.PAUSED)


def test_pause_shows_paused_icon_but_offline_wins(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    app.on_status(relay_status())
    app.pause_for_hour()
    assert shows(app, icons, ConnectionState.PAUSED)
    assert "Notifications paused until" in app.tray.tooltip_text()
    app.on_status(AgentStatus(ConnectionState.OFFLINE))
    assert shows(app, icons, ConnectionState.OFFLINE)
    app.on_status(relay_status())
    app.resume()
    assert shows(app, icons, ConnectionState.CONNECTED)


def test_tooltip_names_last_event_and_never_renders_its_html(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons, platform="xcb")
    app.set_notifier(RecordingNotifier())
    app.on_notification(sample_notification(title="Alicja opened “<b>html</b>”"))
    assert "Last: Alicja opened “<b>html</b>”" in app.tray.tooltip_text()
    tooltip = app.tray.toolTip()
    assert "<b>html</b>" not in tooltip
    assert "&lt;b&gt;html&lt;/b&gt;" in tooltip


def test_tooltip_stays_plain_on_platforms_with_plain_tooltips() -> None:
    assert tooltip_markup("a <b> c", "windows") == "a <b> c"
    assert tooltip_markup("a <b>\nc", "xcb") == "<qt>a &lt;b&gt;<br>c</qt>"


def test_menu_offers_only_windows_that_exist(qtbot: QtBot) -> None:
    menu = TrayMenu(Windows())
    assert set(menu.actions_by_key) == {
        "status", "pause_hour", "pause_tomorrow", "resume", "setup", "quit"
    }

    opened: list[str] = []
    menu = TrayMenu(
        Windows(
            compose=lambda: opened.append("compose"),
            activity=lambda: opened.append("activity"),
            contacts=lambda: opened.append("contacts"),
            reports=lambda: opened.append("reports"),
            settings=lambda: opened.append("settings"),
        )
    )
    for key in ("compose", "activity", "contacts", "reports", "settings"):
        menu.actions_by_key[key].trigger()
    assert opened == ["compose", "activity", "contacts", "reports", "settings"]
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts[1:5] == ["&Compose…", "&Activity", "C&ontacts", "&Reports"]
    assert texts[-1] == "&Quit MailBeacon"


def test_resume_and_setup_are_enabled_only_when_they_can_act(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    actions = app.menu.actions_by_key
    assert not actions["resume"].isEnabled()
    assert not actions["setup"].isEnabled()
    actions["pause_hour"].trigger()
    assert actions["resume"].isEnabled()
    assert app.menu.pause_menu.title().startswith("&Paused until ")
    actions["resume"].trigger()
    assert not actions["resume"].isEnabled()
    app.on_status(relay_status())
    assert actions["setup"].isEnabled()


def test_quit_item_asks_to_quit(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    with qtbot.waitSignal(app.quitRequested, timeout=1000):
        app.menu.actions_by_key["quit"].trigger()


def test_agent_stopping_by_itself_turns_icon_offline_and_tells_rep(
    qtbot: QtBot, icons: IconSet
) -> None:
    app = TrayApp(icons)
    notifier = RecordingNotifier()
    app.set_notifier(notifier)
    app.on_status(relay_status())
    app.on_agent_exited(RuntimeError("records store is locked"))
    assert shows(app, icons, ConnectionState.OFFLINE)
    assert [s.title for s in notifier.shown] == ["MailBeacon stopped tracking"]
    assert "records store is locked" in notifier.shown[0].body


def test_icons_follow_a_dark_desktop(qtbot: QtBot, qapp: QApplication, icons: IconSet) -> None:
    app = TrayApp(icons)
    app.on_status(relay_status())
    previous = qapp.palette()
    dark = QPalette(previous)
    dark.setColor(QPalette.ColorRole.Window, QColor("#202326"))
    qapp.setPalette(dark)
    try:
        assert detect_panel_theme(qapp) == PanelTheme.DARK
        app.follow_color_scheme(Qt.ColorScheme.Dark)
        assert app.icons.theme == PanelTheme.DARK
        assert shows(app, app.icons, ConnectionState.CONNECTED)
    finally:
        qapp.setPalette(previous)
    assert detect_panel_theme(qapp) == PanelTheme.LIGHT
