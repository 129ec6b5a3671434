"""The IMAP watcher over TLS (imaps://) and STARTTLS, against Dovecot with a test certificate."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.agent.mailbox.watch import (
    ImapState,
    ImapStatus,
    ImapWatcher,
    IncomingMessage,
    WatcherConfig,
)
from mailbeacon.agent.settings.mail_urls import parse_mail_url
from tests.helpers import dovecot as dv

pytestmark = [
    pytest.mark.needs_program("dovecot"),
    pytest.mark.needs_program("openssl"),
]

WAIT = 10.0
CONFIG = WatcherConfig(poll_seconds=600, backoff_initial=0.05, backoff_max=0.2)


@pytest.fixture(scope="module")
def server(certificate: tuple[Path, Path]) -> Iterator[dv.Dovecot]:
    users = {f"tls{n}@example.net": dv.PASSWORD for n in range(1, 6)}
    with dv.running_dovecot(users=users, tls=certificate) as running:
        yield running


class Seen:
    def __init__(self) -> None:
        self.messages: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        self.statuses: asyncio.Queue[ImapStatus] = asyncio.Queue()

    async def handle(self, message: IncomingMessage) -> None:
        self.messages.put_nowait(message)

    async def status(self, state: ImapState) -> ImapStatus:
        while True:
            status = await asyncio.wait_for(self.statuses.get(), WAIT)
            if status.state is state:
                return status


def watcher(url: str, state: Path, seen: Seen, context: ssl.SSLContext | None) -> ImapWatcher:
    return ImapWatcher(
        parse_mail_url(url, "imap"), lambda: dv.PASSWORD, state, seen.handle,
        seen.statuses.put_nowait, ssl_context=context, config=CONFIG,
    )  # fmt: skip


@pytest.mark.parametrize(("scheme", "user"), [("imaps", "tls1"), ("imap+starttls", "tls2")])
async def test_secure_connections_watch_the_inbox(
    server: dv.Dovecot, certificate: tuple[Path, Path], tmp_path: Path, scheme: str, user: str
) -> None:
    port = server.imaps_port if scheme == "imaps" else server.port
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    seen = Seen()
    watch = watcher(
        f"{scheme}://{user}@example.net@127.0.0.1:{port}", tmp_path / "s.json", seen, trusted
    )
    watch.start()
    try:
        await asyncio.wait_for(watch.waiting.wait(), WAIT)
        assert watch.status.state is ImapState.CONNECTED and watch.status.push
        await asyncio.to_thread(
            server.append, b"From: a@example.com\r\nSubject: hi\r\n\r\nx\r\n",
            user=f"{user}@example.net",
        )
        message = await asyncio.wait_for(seen.messages.get(), WAIT)
        assert b"Subject: hi" in message.header
    finally:
        await watch.stop()


@pytest.mark.expect_log("secure connection failed")
async def test_an_untrusted_certificate_is_refused_with_a_clear_status(
    server: dv.Dovecot, tmp_path: Path
) -> None:
    seen = Seen()
    watch = watcher(
        f"imaps://tls3@example.net@127.0.0.1:{server.imaps_port}", tmp_path / "s.json", seen,
        None,  # the system's trust store does not know the test certificate
    )
    watch.start()
    try:
        status = await seen.status(ImapState.ERROR)
        assert "secure connection failed" in status.detail
        assert "certificate" in status.detail.lower()
    finally:
        await watch.stop()


@pytest.mark.expect_log("does not offer STARTTLS")
async def test_starttls_is_required_when_asked_for(tmp_path: Path) -> None:
    with dv.running_dovecot(users={"plain@example.net": dv.PASSWORD}) as plain_only:
        seen = Seen()
        watch = watcher(
            f"imap+starttls://plain@example.net@127.0.0.1:{plain_only.port}",
            tmp_path / "s.json", seen, None,
        )
        watch.start()
        try:
            status = await seen.status(ImapState.ERROR)
            assert "STARTTLS" in status.detail
        finally:
            await watch.stop()
