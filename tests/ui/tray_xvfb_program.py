"""The desktop app under a real X tray and notification daemon (run by test_tray_xvfb.py).

Runs the real ``tray.app.main`` with a fake agent that reports one connected status and
one notification, and prints what it sees as JSON lines on stdout: whether Qt found a
system tray and shows the icon (with its on-screen geometry), which notifier it chose,
when a notification was clicked, and that the agent stopped at quit.
Usage: python -m tests.ui.tray_xvfb_program PROFILE_DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QSystemTrayIcon

from mailbeacon.agent.notifications.model import (
    AgentListener,
    AgentStatus,
    ConnectionState,
    Notification,
)
from mailbeacon.core.profile import Profile
from mailbeacon.tray.app import TrayApp, main

TITLE = "Alicja opened “Oferta Q4”"
BODY = "alicja@example.pl · first open, 2 minutes after sending"
EMBED_CHECKS = 100  # x 50 ms: how long the icon may take to get into the tray


def say(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


async def agent(listener: AgentListener, stop: asyncio.Event) -> None:
    listener.status(
        AgentStatus(
            ConnectionState.CONNECTED,
            server_url="http://127.0.0.1:8025",
            relay_host="127.0.0.1",
            relay_port=2525,
        )
    )
    listener.notification(
        Notification(
            event=1,
            type="open",
            message_id="<q4@example.com>",
            subject="Oferta Q4",
            recipient="alicja@example.pl",
            anonymous=False,
            title=TITLE,
            body=BODY,
            at="2026-03-02T13:05:00+00:00",
        )
    )
    await stop.wait()
    say(agent_stopped=True)


def report_when_embedded(app: TrayApp) -> None:
    """Report the icon once the tray has it (or after EMBED_CHECKS tries)."""
    checks = [0]
    timer = QTimer(app)

    def check() -> None:
        checks[0] += 1
        geometry = app.tray.geometry()
        if geometry.isEmpty() and checks[0] < EMBED_CHECKS:
            return
        timer.stop()
        say(
            tray_available=QSystemTrayIcon.isSystemTrayAvailable(),
            visible=app.tray.isVisible(),
            icon_geometry=[geometry.x(), geometry.y(), geometry.width(), geometry.height()],
            icon_state=app.tray.state.value,
            notifier=app.notifier.kind if app.notifier is not None else None,
        )

    timer.timeout.connect(check)
    timer.start(50)


def run(profile_dir: str) -> int:
    code = main(
        argparse.Namespace(),
        Profile.at(Path(profile_dir)),
        agent,
        open_record=lambda notification: say(opened=notification.title),
        ready=report_when_embedded,
    )
    say(exit=code)
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
