""""250 only after the message is durably queued", checked at the system-call level.

A SIGKILL keeps the page cache, so a crash test cannot see a missing ``fsync``; this
records the order of the real ``fsync`` and ``rename`` calls against the moment the
mail client gets the relay's 250 (issue 14; docs/promises.md, "No mail lost"). The
recorder calls the real functions: it only writes down what happened, and when.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem, RetryPolicy
from mailbeacon.agent.sending.relay import IncomingMessage, Relay
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from tests.helpers.smtp import SmtpSink

PASSWORD = "relay-secret-Pw1"
MESSAGE = b"From: rep@x.example\r\nTo: bob@y.example\r\nSubject: Hi\r\n\r\nHello\r\n"


class SyscallLog:
    """``fsync`` and ``rename`` as they happen (with their paths), and the replies seen."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, what: str) -> None:
        with self._lock:
            self.entries.append((kind, what))

    def index(self, kind: str, test: Callable[[str], bool]) -> int:
        for number, (seen, what) in enumerate(self.entries):
            if seen == kind and test(what):
                return number
        raise AssertionError(f"no {kind} matching: {self.entries}")


@pytest.fixture
def syscalls(monkeypatch: pytest.MonkeyPatch) -> SyscallLog:
    log = SyscallLog()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        log.add("fsync", os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        real_replace(src, dst, **kwargs)
        log.add("rename", f"{src} -> {dst}")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
async def relay(tmp_path: Path, sink: SmtpSink) -> AsyncIterator[Relay]:
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
    outbox = Outbox(tmp_path / "outbox", upstream, policy=RetryPolicy(base=0.01, cap=0.05))

    async def accept(message: IncomingMessage) -> str:
        item = OutboxItem(message.mail_from, message.recipients, message.data)
        return await outbox.enqueue(item)

    running = Relay(accept, PASSWORD)
    await outbox.start()
    await running.start()
    yield running
    await running.stop()
    await outbox.stop()


async def test_the_item_and_its_folder_are_fsynced_before_the_250(
    relay: Relay, syscalls: SyscallLog, sink: SmtpSink, tmp_path: Path
) -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
            client.login("mailbeacon", PASSWORD)
            client.sendmail("rep@x.example", ["bob@y.example"], MESSAGE)
            syscalls.add("reply", "250")  # sendmail returns only on the 250 to DATA

    await asyncio.to_thread(send)
    await sink.until(1)
    queue = str(tmp_path / "outbox" / "queue")
    tmp = str(tmp_path / "outbox" / "tmp")
    written = syscalls.index("fsync", lambda path: path.startswith(tmp + "/"))
    queued = syscalls.index("rename", lambda what: what.endswith(".eml") and queue in what)
    folder = syscalls.index("fsync", lambda path: path == queue)
    replied = syscalls.index("reply", lambda _what: True)
    assert written < queued < folder < replied, syscalls.entries
