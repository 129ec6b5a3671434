"""Renders the tray's windows offscreen to PNG files, to look at without a desktop.

Usage: ``.venv/bin/python packaging/screenshots.py OUTDIR``. Writes ``first_run.png``,
``toast.png`` (a subject that looks like HTML shows literally), ``tray_menu.png``,
``tray_menu_paused.png`` and ``icons.png`` (every icon at 16, 22, 24 and 48 px on a
light and a dark panel).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget

from mailbeacon.agent.notification import AgentStatus, ConnectionState
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet, PanelTheme
from mailbeacon.tray.first_run import FirstRunDialog, MailClientSettings
from mailbeacon.tray.menu import Windows
from mailbeacon.tray.toast import Toast

ICON_SIZES = (16, 22, 24, 48)
PANELS = {PanelTheme.LIGHT: "#eceff1", PanelTheme.DARK: "#2e3440"}


def _save(widget: QWidget, path: Path) -> None:
    widget.ensurePolished()
    widget.adjustSize()
    if not widget.grab().save(str(path)):
        raise OSError(f"cannot write {path}")
    print(path)


def _relay_status() -> AgentStatus:
    return AgentStatus(
        ConnectionState.CONNECTED,
        server_url="https://t.example.com",
        relay_host="127.0.0.1",
        relay_port=2525,
    )


def first_run(out: Path) -> None:
    """The mail-client settings dialog."""
    settings = MailClientSettings.from_status(_relay_status(), "k3V9-relay-Pw2x")
    _save(FirstRunDialog(settings), out / "first_run.png")


def toast(out: Path, icons: IconSet) -> None:
    """The in-app toast with a hostile-looking subject."""
    widget = Toast(icons.app())
    widget.title_label.setText("Alicja opened “<b>Oferta</b> Q4”")
    widget.body_label.setText("alicja@example.pl · first open, 2 minutes after sending")
    _save(widget, out / "toast.png")


def tray_menus(out: Path, icons: IconSet) -> None:
    """The tray menu as the product builds it (Activity wired), running and paused."""
    app = TrayApp(icons, windows=Windows(activity=lambda: None))
    app.on_status(_relay_status())
    _save(app.menu, out / "tray_menu.png")
    app.pause_for_hour()
    _save(app.menu, out / "tray_menu_paused.png")
    app.close()


def icon_sheet(out: Path) -> None:
    """Every icon at tray sizes, on a light and a dark panel."""
    states = list(ConnectionState)
    cell = max(ICON_SIZES) + 12
    width = len(ICON_SIZES) * cell + 12
    image = QImage(width * 2, (len(states) + 1) * cell + 12, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    for column, (theme, colour) in enumerate(PANELS.items()):
        painter.fillRect(column * width, 0, width, image.height(), QColor(colour))
        icons = IconSet(theme)
        rows = [icons.tray(state) for state in states] + [icons.app()]
        for row, icon in enumerate(rows):
            for index, size in enumerate(ICON_SIZES):
                x = column * width + 12 + index * cell
                y = 12 + row * cell + (cell - 12 - size) // 2
                painter.drawPixmap(x, y, icon.pixmap(size, size))
    painter.end()
    path = out / "icons.png"
    if not image.save(str(path)):
        raise OSError(f"cannot write {path}")
    print(path)


def main(argv: list[str]) -> int:
    """Render everything into the folder given."""
    if len(argv) != 1:
        print("usage: screenshots.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    icons = IconSet(PanelTheme.LIGHT)
    first_run(out)
    toast(out, icons)
    tray_menus(out, icons)
    icon_sheet(out)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
