"""Instructions per pixel request: a figure the host's speed does not move.

Run: ``.venv/bin/python -m tests.bench.instructions_server [one|rotating]``
(both by default; needs valgrind, Debian package ``valgrind``).

This machine's speed for Python drifts by up to 60% from one minute to the next, so
requests/s and even CPU time per request cannot show a change worth 2%. Counting
instructions can: ``mailbeacon server serve`` runs under cachegrind (every thread,
the commit thread included; the kernel's share, the fsync and the sockets, is not
counted), a fixed number of pixel requests is sent, and the count of a short run is
subtracted from a long one, so start-up and shutdown cancel out. Two runs of the
same code agree within 0.1%. Requests come one at a time on each of 8 keep-alive
connections from 127.0.0.9 (a recipient, not the rep's machine), with Chrome's
user agent: a smaller group per commit than wrk's 64 connections make, so the
figure is an upper bound of the per-hit work, comparable only with itself.
docs/performance.md ("Instructions per request") keeps the history.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.bench.bench_server import CHROME, ROTATING_EMAILS, _enroll, _mailbeacon, _pixel_path
from tests.helpers.net import free_port

CONNECTIONS = 8
SHORT, LONG = 1_000, 4_000  # requests in the two runs
RECIPIENT = "127.0.0.9"
# Before the pixel path's instruction work (commit aff64e9), same harness and machine.
BASELINE = {"one": 211_950, "rotating": 372_200}


def _send(port: int, paths: list[str], first: int, count: int) -> None:
    """``count`` pixel requests on one keep-alive connection, one at a time."""
    with socket.create_connection(("127.0.0.1", port), timeout=120,
                                  source_address=(RECIPIENT, 0)) as sock:
        for i in range(first, first + count):
            path = paths[i % len(paths)]
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: {CHROME}\r\n\r\n".encode())
            answer = b""
            while not _whole(answer):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError(f"connection closed after {answer[:80]!r}")
                answer += chunk
            if not answer.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"not a pixel: {answer[:80]!r}")


def _whole(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    return found is not None and len(body) >= int(found.group(1))


def _instructions(root: Path, paths: list[str], db: Path, requests: int) -> int:
    """Instructions the whole server executed for start-up, ``requests``, shutdown."""
    port = free_port()
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
               f"--cachegrind-out-file={root / 'cachegrind.out'}",
               *_mailbeacon(root / "profile", "server", "serve", "--listen",
                            f"127.0.0.1:{port}", "--db", str(db))]
    server = subprocess.Popen(command, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert server.stderr is not None
    try:
        while b"listening on" not in (line := server.stderr.readline()):
            if not line:
                raise RuntimeError("the server did not start under valgrind")
        each = requests // CONNECTIONS
        senders = [threading.Thread(target=_send, args=(port, paths, n * each, each))
                   for n in range(CONNECTIONS)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        server.terminate()
        _, err = server.communicate(timeout=300)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    found = re.search(rb"I\s+refs:\s+([\d,]+)", err)
    if found is None:
        raise RuntimeError(f"no count from cachegrind: {err[-500:]!r}")
    return int(found.group(1).replace(b",", b""))


def per_request(mode: str) -> float:
    """Instructions per pixel request, one email or ROTATING_EMAILS rotating."""
    counts = []
    for requests in (SHORT, LONG):
        with tempfile.TemporaryDirectory(prefix="mb-instructions-") as tmp:
            root = Path(tmp)
            db = root / "bench.db"
            enrollment = _enroll(root, db)
            emails = ROTATING_EMAILS if mode == "rotating" else 1
            paths = [_pixel_path(enrollment) for _ in range(emails)]
            counts.append(_instructions(root, paths, db, requests))
    return (counts[1] - counts[0]) / (LONG - SHORT)


def main(argv: list[str]) -> int:
    """Print instructions per request for each mode, against the baseline."""
    if shutil.which("valgrind") is None:
        print("needs valgrind (Debian package valgrind)", file=sys.stderr)
        return 1
    for mode in [m for m in ("one", "rotating") if m in argv] or ["one", "rotating"]:
        now = per_request(mode)
        base = BASELINE[mode]
        print(f"{mode}: {now:,.0f} instructions per request "
              f"(baseline {base:,}, {100 * (now - base) / base:+.1f}%)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
