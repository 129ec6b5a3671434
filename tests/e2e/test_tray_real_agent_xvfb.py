"""The tray, seen: the real desktop app (``mailbeacon tray`` with the real agent inside)
on a real X server with a real tray (trayer) and notification daemon (dunst). Mail
sent through its relay is tracked; when a recipient opens it, the app asks the
notification daemon over D-Bus to show a notification whose title names the
recipient. Artifacts (Notify log, the app's log and notification lines, a screenshot)
go to tests/e2e/out/tray_real_agent/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.harness import OUT, need_programs
from tests.helpers.agent_process import REPO

PROGRAMS = ("xvfb-run", "dbus-run-session", "dbus-monitor", "trayer", "dunst", "xdotool",
            "import")


def test_real_tray_notifies_an_open_over_dbus(tmp_path: Path) -> None:
    need_programs(*PROGRAMS)
    out = OUT / "tray_real_agent"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    session = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "dbus-run-session", "--",
         sys.executable, "-m", "tests.e2e.tray_real_agent_driver", str(out), str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    lines = [x for x in session.stdout.splitlines() if x.startswith("{")]
    context = f"session:\n{session.stdout[-3000:]}\n{session.stderr[-3000:]}"
    assert session.returncode == 0 and lines, context
    seen: dict[str, Any] = json.loads(lines[-1])
    assert seen["trayer"] and seen["monitor"] and seen["relay"], seen
    assert seen["stream"], seen  # the agent inside the tray reached the server
    assert seen["pixel_status"] == 200
    assert seen["notified"], seen

    [call] = [c for c in seen["notify_calls"] if any("alicja" in s.lower() for s in c)]
    app_name, _icon, title, _body = call[:4]
    assert app_name == "MailBeacon"
    assert "Oferta Q4 (tray)" in title and "alicja" in title.lower(), call
    [line] = [x for x in seen["jsonl"] if x["type"] == "open"]
    assert line["recipient"] == "alicja@client.example" and line["title"] == title
    assert seen["tray_exit"] == 0
    assert (out / "shot.png").stat().st_size > 0
