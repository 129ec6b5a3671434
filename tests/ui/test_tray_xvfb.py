"""The desktop app on a real X server with a real tray (trayer) and a real notification
daemon (dunst): the icon is embedded and visible, the notification goes over D-Bus with
the exact title and body, and clicking it in the daemon opens the record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from tests.helpers import programs
from tests.ui.tray_xvfb_program import BODY, TITLE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "ui" / "tray_xvfb_session.sh"
OUT = ROOT / "tests" / "e2e" / "out" / "tray_xvfb"
PROGRAMS = (
    "xvfb-run",
    "dbus-run-session",
    "dbus-monitor",
    "trayer",
    "dunst",
    "dunstctl",
    "xdotool",
    "import",
)
CONNECTED_GREEN = QColor("#2f9e44")  # the connected badge in resources/icons


def green_pixels(image: QImage, x: int, y: int, width: int, height: int) -> int:
    count = 0
    for px in range(max(0, x), min(image.width(), x + width)):
        for py in range(max(0, y), min(image.height(), y + height)):
            colour = image.pixelColor(px, py)
            if (
                abs(colour.red() - CONNECTED_GREEN.red())
                + abs(colour.green() - CONNECTED_GREEN.green())
                + abs(colour.blue() - CONNECTED_GREEN.blue())
                < 60
            ):
                count += 1
    return count


def test_tray_icon_and_notification_under_xvfb(qapp: QApplication, tmp_path: Path) -> None:
    programs.require("xvfb-run", *PROGRAMS)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)

    session = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "dbus-run-session",
            "--",
            "bash",
            str(SCRIPT),
            str(OUT),
            str(tmp_path / "profile"),
            sys.executable,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    said: list[dict[str, Any]] = [
        json.loads(line)
        for line in (OUT / "program.log").read_text("utf-8").splitlines()
        if line.startswith("{")
    ]
    context = f"session:\n{session.stdout}\n{session.stderr}\nprogram said: {said}"
    assert "program exit 0" in session.stdout, context

    [report] = [line for line in said if "tray_available" in line]
    assert report["tray_available"] is True, context
    assert report["visible"] is True
    assert report["notifier"] == "freedesktop"
    assert report["icon_state"] == "connected"
    x, y, width, height = report["icon_geometry"]
    assert width > 0 and height > 0

    notify_log = (OUT / "notify.log").read_text("utf-8")
    assert f'string "{TITLE}"' in notify_log
    assert f'string "{BODY}"' in notify_log
    assert 'string "MailBeacon"' in notify_log

    assert {"opened": TITLE} in said  # clicked in dunst, came back as open_record
    assert {"agent_stopped": True} in said
    assert said[-1] == {"exit": 0}

    shot = QImage(str(OUT / "shot.png"))
    assert (shot.width(), shot.height()) == (1280, 800)
    assert green_pixels(shot, x, y, width, height) >= 4  # the badge is on screen
