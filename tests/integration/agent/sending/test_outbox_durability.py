"""No mail lost: kill -9 the relay+outbox process and check what the upstream gets.

The process under test is tests/helpers/relay_runner.py (real relay, outbox and
upstream in one process); clients are smtplib; the upstream is an aiosmtpd sink.
Every message the relay answered 250 for must arrive; none twice, except at
most the single message in flight to the upstream at the moment of the kill.
"""

from __future__ import annotations

import asyncio
import signal
import smtplib
import socket
import sys
from pathlib import Path

from tests.helpers import paths
from tests.helpers.smtp import SmtpSink

ROOT = paths.REPO
PASSWORD = "durable-Pw3"
COUNT = 50


class Runner:
    """One relay+outbox process, followed through its stdout lines."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, spool: Path, upstream_port: int, log: Path) -> Runner:
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.helpers.relay_runner",
                "--spool", str(spool), "--password", PASSWORD,
                "--upstream", f"smtp://127.0.0.1:{upstream_port}",
                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )  # fmt: skip
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("READY "), f"runner said {line!r}; see {log}"
        return cls(process, int(line.split()[1]))

    async def delivered(self, count: int, within: float) -> list[str]:
        """Wait for ``count`` DELIVERED lines."""
        assert self.process.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(within):
            while len(seen) < count:
                line = (await self.process.stdout.readline()).decode()
                assert line, "runner exited"
                if line.startswith("DELIVERED "):
                    seen.append(line.split()[1])
        return seen

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            async with asyncio.timeout(30):
                await self.process.wait()


def message_ids(prefix: str) -> list[str]:
    return [f"<{prefix}{n}@x.example>" for n in range(COUNT)]


def send_all(port: int, ids: list[str]) -> None:
    """Send every message; each sendmail returning means the relay said 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login("mailbeacon", PASSWORD)
        for message_id in ids:
            data = f"Message-ID: {message_id}\r\nSubject: durable\r\n\r\nbody\r\n".encode()
            refused = client.sendmail("rep@x.example", ["b@y.example"], data)
            assert refused == {}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spooled(spool: Path) -> int:
    return len(list((spool / "queue").glob("*.eml"))) + len(list((spool / "sent").glob("*.eml")))


async def test_kill_9_with_the_upstream_down_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    spool, log = tmp_path / "outbox", tmp_path / "runner.log"
    upstream_port = closed_port()
    ids = message_ids("down")
    first = await Runner.start(spool, upstream_port, log)
    try:
        await asyncio.to_thread(send_all, first.port, ids)
    finally:
        await first.kill()
    assert spooled(spool) == COUNT

    with SmtpSink(port=upstream_port) as sink:
        second = await Runner.start(spool, upstream_port, log)
        try:
            await second.delivered(COUNT, within=60)
        finally:
            await second.stop()
        by_id = sink.messages_by_id()
    assert sorted(by_id) == sorted(ids)
    assert all(len(copies) == 1 for copies in by_id.values())
    assert spooled(spool) == 0


async def test_kill_9_in_the_middle_of_delivery_loses_nothing(tmp_path: Path) -> None:
    spool, log = tmp_path / "outbox", tmp_path / "runner.log"
    ids = message_ids("mid")
    with SmtpSink() as sink:
        sink.handler.data_delay = 0.05  # slow enough that the kill lands mid-queue
        first = await Runner.start(spool, sink.port, log)
        try:
            await asyncio.to_thread(send_all, first.port, ids)
            await sink.until(10, within=30)
        finally:
            await first.kill()
        left = spooled(spool)
        assert 0 < left < COUNT, "the kill should land while mail is still queued"

        second = await Runner.start(spool, sink.port, log)
        try:
            await second.delivered(left, within=60)
        finally:
            await second.stop()
        by_id = sink.messages_by_id()
    assert sorted(by_id) == sorted(ids)
    duplicates = sum(len(copies) - 1 for copies in by_id.values())
    assert duplicates <= 1, "only the message in flight at the kill may go twice"
    assert spooled(spool) == 0
