""""A hit is answered only after it is committed", checked at the system-call level:
under strace, the WAL's fsync of the group commit comes before the 200 of the pixel
(issue 14; docs/promises.md, "No event lost or doubled"). A SIGKILL test cannot see a
missing fsync, since the page cache survives the kill."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.helpers.server import add_user_process, new_mail, recipient

pytestmark = pytest.mark.needs_program("strace")

LINE = re.compile(r"^\d+\s+(?P<at>\d+\.\d+) (?P<call>\w+)\((?P<fd>\d+)<(?P<what>[^>]*)>")


async def test_the_wal_is_fsynced_before_the_pixel_is_answered(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    enrollment = await add_user_process(tmp_path / "profile", db)
    trace = tmp_path / "strace.txt"
    process = await asyncio.create_subprocess_exec(
        "strace", "-f", "-ttt", "-y", "-s", "16", "-o", str(trace),
        "-e", "trace=fsync,fdatasync,read,recvfrom,write,writev,sendto,sendmsg",
        sys.executable, "-m", "mailbeacon", "--profile", str(tmp_path / "profile"),
        "server", "serve", "--listen", "127.0.0.1:0", "--db", str(db),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # strace and the server in a group of their own
    )  # fmt: skip
    try:
        assert process.stderr is not None
        async with asyncio.timeout(60):
            line = (await process.stderr.readline()).decode()
        assert "listening on " in line, line
        base = line.split("listening on ", 1)[1].split(" ", 1)[0]
        mail = new_mail(enrollment)
        pixel = mail.pixel().replace(enrollment.server_url, base)
        async with recipient("127.0.0.9") as web:
            answer = await web.get(pixel)
        assert answer.status_code == 200
    finally:
        if process.returncode is None:
            # strace does not pass signals on; the server ends, then strace with it.
            os.killpg(process.pid, signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()
    events = []
    for text in trace.read_text(errors="replace").splitlines():
        found = LINE.match(text)
        if found:
            events.append((float(found["at"]), found["call"], found["what"], text))
    events.sort()
    asked = next(at for at, _call, what, text in events
                 if what.startswith("socket:") and '"GET /o/' in text)  # fmt: skip
    answered = next(at for at, _call, what, text in events
                    if what.startswith("socket:") and '"HTTP/1.1 200' in text)  # fmt: skip
    committed = [at for at, call, what, _text in events
                 if call in ("fsync", "fdatasync") and what.endswith("server.db-wal")
                 and asked < at < answered]  # fmt: skip
    assert asked < answered
    assert committed, "the pixel was answered before its commit reached the disk"
