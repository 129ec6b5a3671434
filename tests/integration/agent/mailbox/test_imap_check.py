"""The IMAP "Test connection" against a real Dovecot on loopback: what works is said with
IDLE and Sent, and each kind of failure gets a sentence naming what to check."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.agent.mailbox.check import check_imap
from tests.helpers import dovecot as dv

pytestmark = [
    pytest.mark.needs_program("dovecot"),
    pytest.mark.needs_program("openssl"),
]

USER = "check@example.net"
URL_USER = "check%40example.net"
WRONG = "not-the-password"


@pytest.fixture(scope="module")
def server(certificate: tuple[Path, Path]) -> Iterator[dv.Dovecot]:
    with dv.running_dovecot(users={USER: dv.PASSWORD}, tls=certificate) as running:
        running.append(b"Subject: hello\r\n\r\nbody\r\n", user=USER)
        yield running


@pytest.fixture
def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_working_inbox_says_idle_and_where_sent_is(server: dv.Dovecot) -> None:
    result = await check_imap(f"imap://{URL_USER}@127.0.0.1:{server.port}", dv.PASSWORD, False)
    assert result.ok is True, result.message
    assert result.idle is True and "IDLE" in result.message
    assert result.sent_folder == "Sent" and '"Sent"' in result.message
    assert "1 message" in result.message and USER in result.message


@pytest.mark.parametrize("scheme", ["imaps", "imap+starttls"])
async def test_secure_connections_work(
    server: dv.Dovecot, trusting: ssl.SSLContext, scheme: str
) -> None:
    port = server.imaps_port if scheme == "imaps" else server.port
    result = await check_imap(
        f"{scheme}://{URL_USER}@127.0.0.1:{port}", dv.PASSWORD, False, ssl_context=trusting
    )
    assert result.ok is True, result.message
    assert "IDLE" in result.message


async def test_a_wrong_password_is_named_and_not_repeated(server: dv.Dovecot) -> None:
    result = await check_imap(f"imap://{URL_USER}@127.0.0.1:{server.port}", WRONG, False)
    assert result.ok is False
    assert "user name" in result.message and "password" in result.message
    assert USER in result.message
    assert WRONG not in result.message


async def test_a_closed_port_is_unreachable() -> None:
    port = closed_port()
    result = await check_imap(f"imap://rep@127.0.0.1:{port}", dv.PASSWORD, False)
    assert result.ok is False
    assert f"127.0.0.1:{port}" in result.message and "connection refused" in result.message
    assert "Traceback" not in result.message


async def test_an_untrusted_certificate_is_a_tls_failure(server: dv.Dovecot) -> None:
    result = await check_imap(
        f"imaps://{URL_USER}@127.0.0.1:{server.imaps_port}", dv.PASSWORD, False
    )
    assert result.ok is False
    assert "secure connection" in result.message and "not trusted" in result.message


async def test_imaps_to_the_plain_port_is_a_tls_failure(
    server: dv.Dovecot, trusting: ssl.SSLContext
) -> None:
    result = await check_imap(
        f"imaps://{URL_USER}@127.0.0.1:{server.port}", dv.PASSWORD, False, ssl_context=trusting
    )
    assert result.ok is False
    assert "secure connection" in result.message and "993" in result.message


async def test_a_server_that_never_greets_times_out() -> None:
    with socket.socket() as silent:  # accepts (in the kernel's backlog), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        result = await asyncio.wait_for(
            check_imap(f"imap://rep@127.0.0.1:{port}", dv.PASSWORD, False, timeout=0.5), 10
        )
    assert result.ok is False
    assert f"127.0.0.1:{port} did not answer within 0.5 seconds" in result.message


async def test_plain_imap_to_another_machine_is_refused_before_connecting() -> None:
    # mail.example.invalid cannot resolve: an attempt to connect would say so instead.
    result = await check_imap("imap://rep@mail.example.invalid", dv.PASSWORD, False)
    assert result.ok is False
    assert "unencrypted" in result.message and "imaps://" in result.message


@pytest.mark.parametrize(
    ("url", "password", "words"),
    [
        ("", dv.PASSWORD, "Enter the URL"),
        ("imaps://imap.example.invalid", dv.PASSWORD, "user name in the URL"),
        ("https://rep@imap.example.invalid", dv.PASSWORD, "cannot be used"),
        ("imaps://rep@imap.example.invalid", "", "No IMAP password"),
    ],
)
async def test_unusable_settings_are_explained_without_connecting(
    url: str, password: str, words: str
) -> None:
    result = await check_imap(url, password, False)
    assert result.ok is False and words in result.message
