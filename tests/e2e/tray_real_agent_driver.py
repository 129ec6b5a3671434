"""Drives the real desktop app inside an X + D-Bus session (run by
test_tray_real_agent_xvfb.py under ``xvfb-run ... dbus-run-session --``).

Starts an X tray (trayer), a D-Bus monitor of Notify calls, a tracking server process,
an SMTP sink and then ``mailbeacon --profile P tray --enroll KEY --smtp-listen ...
--upstream ...`` itself; sends one email through the tray's relay, lets a recipient on
127.0.0.9 open it once the human threshold has passed, waits (bounded) until the
notification daemon was asked to show a notification naming the recipient, takes a
screenshot, quits the app with SIGTERM and prints one JSON line with what it saw.
Usage: python -m tests.e2e.tray_real_agent_driver OUT_DIR WORK_DIR
"""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

import httpx

from tests.e2e.harness import RECIPIENT_IP, THUNDERBIRD_UA, Rep, ServerProcess, mailbeacon
from tests.helpers.agent_process import REPO, subprocess_env
from tests.helpers.smtp import SmtpSink

RECIPIENT = "alicja@client.example"
SUBJECT = "Oferta Q4 (tray)"
MIN_OPEN_S = 2.0


class Lines:
    """A process's output lines, collected in a thread; wait for one that matches."""

    def __init__(self, stream: IO[bytes], copy_to: Path) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._copy = copy_to.open("w", encoding="utf-8")
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            self._copy.write(line)
            self._copy.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # end of output
            self._cond.notify_all()

    def wait_for(self, pattern: str, within: float) -> bool:
        """True once a line matching ``pattern`` has been seen."""
        regex = re.compile(pattern)
        with self._cond:
            return self._cond.wait_for(lambda: any(regex.search(x) for x in self.lines), within)


def wait_program(argv: list[str], tries: int = 100) -> bool:
    """Run ``argv`` until it succeeds, at most ``tries`` times 50 ms apart (X windows
    appear asynchronously; the X server offers nothing to block on)."""
    for _ in range(tries):
        if subprocess.run(argv, capture_output=True, check=False, timeout=10).returncode == 0:
            return True
        time.sleep(0.05)
    return False


def send(rep: Rep) -> float:
    """One tracked email through the tray's relay; the moment the relay accepted it."""
    message = EmailMessage()
    message["From"] = "rep@rep.example"
    message["To"] = f"Alicja Nowak <{RECIPIENT}>"
    message["Subject"] = SUBJECT
    message.add_alternative('<p>Hi! <a href="https://shop.example/q4">Offer</a></p>', "html")
    with smtplib.SMTP("127.0.0.1", rep.relay_port, timeout=30) as client:
        client.login("mailbeacon", rep.relay_password)
        client.send_message(message)
    return time.time()


def run(out: Path, work: Path) -> dict[str, Any]:
    """The session; returns what it saw."""
    seen: dict[str, Any] = {}
    procs: list[subprocess.Popen[bytes]] = []
    server = ServerProcess(work / "server").start()
    sink = SmtpSink().start()
    try:
        procs.append(subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width",
             "160", "--height", "28", "--SetDockType", "true", "--tint", "0x2e3440"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        seen["trayer"] = wait_program(["xdotool", "search", "--class", "trayer"])
        monitor = subprocess.Popen(
            ["dbus-monitor", "--session",
             "interface='org.freedesktop.Notifications',member='Notify'"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        procs.append(monitor)
        assert monitor.stdout is not None
        notify = Lines(monitor.stdout, out / "notify.log")
        seen["monitor"] = notify.wait_for("NameAcquired", 10)

        user = server.add_user("rep")
        rep = Rep(work / "rep")
        tray = subprocess.Popen(
            mailbeacon(
                rep.profile, "--log-level", "INFO", "tray", "--enroll", user["enrollment_key"],
                "--smtp-listen", f"127.0.0.1:{rep.relay_port}",
                "--upstream", f"smtp://127.0.0.1:{sink.port}",
                "--relay-password", rep.relay_password, "--notify", "jsonl",
            ),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
            env={**subprocess_env(rep.keyring), "QT_QPA_PLATFORM": "xcb"},
        )
        procs.append(tray)
        assert tray.stdout is not None and tray.stderr is not None
        jsonl = Lines(tray.stdout, out / "tray.jsonl")
        log = Lines(tray.stderr, out / "tray.log")
        seen["relay"] = log.wait_for(r"relay listening on", 30)
        seen["stream"] = log.wait_for(r"agent status: connected", 30)

        sent = send(rep)
        [delivered] = sink.wait_for(1, timeout=30)
        [pixel] = re.findall(r'src="(http://127\.0\.0\.1:\d+/o/[A-Za-z0-9_-]+\.gif)"',
                             delivered.data.decode("utf-8", "replace"))
        time.sleep(max(0.0, sent + MIN_OPEN_S + 0.2 - time.time()))  # the human threshold
        transport = httpx.HTTPTransport(local_address=RECIPIENT_IP)
        with httpx.Client(transport=transport, headers={"User-Agent": THUNDERBIRD_UA}) as viewer:
            seen["pixel_status"] = viewer.get(pixel, timeout=10).status_code

        seen["notified"] = notify.wait_for(r"alicja|Alicja", 20)
        seen["jsonl_line"] = jsonl.wait_for(r'"type": "open"', 10)
        seen["dunst_window"] = wait_program(["xdotool", "search", "--onlyvisible", "--class",
                                             "dunst"])
        subprocess.run(["import", "-window", "root", str(out / "shot.png")], check=False,
                       timeout=30, capture_output=True)
        tray.send_signal(signal.SIGTERM)
        try:
            seen["tray_exit"] = tray.wait(timeout=30)
        except subprocess.TimeoutExpired:
            tray.kill()
            seen["tray_exit"] = "killed"
        seen["notify_calls"] = _notify_calls(notify.lines)
        seen["jsonl"] = [json.loads(x) for x in jsonl.lines if x.startswith("{")]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        sink.stop()
        server.stop()
    return seen


def _notify_calls(lines: list[str]) -> list[list[str]]:
    """The string arguments of each Notify call dbus-monitor printed."""
    calls: list[list[str]] = []
    for line in lines:
        if "member=Notify" in line:
            calls.append([])
        elif calls and line.strip().startswith('string "'):
            calls[-1].append(line.strip()[len('string "'):-1])
    return calls


def main() -> int:
    """Entry point: OUT_DIR WORK_DIR."""
    out, work = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    print(json.dumps(run(out, work), ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
