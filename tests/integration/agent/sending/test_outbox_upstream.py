"""The upstream connection: TLS modes, login, and the messages "Test upstream" shows."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.agent.sending.outbox_items import DeliveryError
from mailbeacon.agent.sending.upstream import Credentials, Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from tests.helpers.smtp import SmtpSink, TestTLS

USER, PASSWORD = "rep@example.com", "upstream-Pw7"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return TestTLS.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def starttls_sink(tls: TestTLS) -> Iterator[SmtpSink]:
    with SmtpSink(user=USER, password=PASSWORD, tls=tls, starttls=True) as sink:
        yield sink


@pytest.fixture
def tls_sink(tls: TestTLS) -> Iterator[SmtpSink]:
    with SmtpSink(user=USER, password=PASSWORD, tls=tls, implicit_tls=True) as sink:
        yield sink


def creds(password: str = PASSWORD) -> Credentials:
    return Credentials(USER, password)


MESSAGE = b"Message-ID: <u1@x.example>\r\nSubject: s\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"


async def test_starttls_with_login_delivers(starttls_sink: SmtpSink, tls: TestTLS) -> None:
    url = parse_upstream(f"smtp+starttls://127.0.0.1:{starttls_sink.port}")
    upstream = Upstream(url, creds, tls_context=tls.client_context())
    check = await upstream.test_connection()
    assert check.ok, check.message
    result = await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
    await upstream.close()
    assert result.refused == {}
    [got] = await starttls_sink.until(1)
    assert got.data == MESSAGE and "BODY=8BITMIME" in got.mail_options


async def test_implicit_tls_with_login_delivers(tls_sink: SmtpSink, tls: TestTLS) -> None:
    url = parse_upstream(f"smtps://127.0.0.1:{tls_sink.port}")
    upstream = Upstream(url, creds, tls_context=tls.client_context())
    await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
    await upstream.close()
    assert (await tls_sink.until(1))[0].data == MESSAGE


async def test_wrong_password_is_named_as_such(starttls_sink: SmtpSink, tls: TestTLS) -> None:
    url = parse_upstream(f"smtp+starttls://127.0.0.1:{starttls_sink.port}")
    upstream = Upstream(url, lambda: creds("wrong-Pw"), tls_context=tls.client_context())
    check = await upstream.test_connection()
    assert not check.ok
    assert "refused the user name or password" in check.message and "535" in check.message
    assert "wrong-Pw" not in check.message
    with pytest.raises(DeliveryError) as refused:
        await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
    assert refused.value.connection and not refused.value.permanent  # kept and retried


async def test_untrusted_certificate_is_a_tls_failure(starttls_sink: SmtpSink) -> None:
    url = parse_upstream(f"smtp+starttls://127.0.0.1:{starttls_sink.port}")
    check = await Upstream(url, creds).test_connection()  # system CAs do not know the sink
    assert not check.ok
    assert "TLS" in check.message and "certificate" in check.message


async def test_smtps_against_a_plain_server_says_tls_failed(tmp_path: Path) -> None:
    with SmtpSink() as plain:
        url = parse_upstream(f"smtps://127.0.0.1:{plain.port}")
        check = await Upstream(url, lambda: None, timeout=5).test_connection()
    assert not check.ok and "TLS" in check.message and "smtp+starttls://" in check.message


async def test_starttls_against_a_server_without_it_says_so() -> None:
    with SmtpSink() as plain:
        url = parse_upstream(f"smtp+starttls://127.0.0.1:{plain.port}")
        check = await Upstream(url, lambda: None, timeout=5).test_connection()
    assert not check.ok and "does not offer STARTTLS" in check.message


async def test_unreachable_host_says_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{port}"), lambda: None)
    check = await upstream.test_connection()
    assert not check.ok
    assert "connection refused" in check.message and f"127.0.0.1:{port}" in check.message


async def test_missing_login_is_retried_not_bounced() -> None:
    with SmtpSink(user=USER, password=PASSWORD) as sink:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
        with pytest.raises(DeliveryError) as refused:
            await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
        await upstream.close()
    assert refused.value.code == 530
    assert not refused.value.permanent and "user and password" in refused.value.reply


async def test_plain_login_to_a_local_server_works() -> None:
    with SmtpSink(user=USER, password=PASSWORD) as sink:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), creds)
        await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
        await upstream.close()
        assert len(await sink.until(1)) == 1


async def test_reconnects_when_the_server_dropped_an_idle_connection() -> None:
    with SmtpSink() as sink:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
        await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
        sink.stop()  # the server goes away and comes back on the same port
        restarted = SmtpSink(port=sink.port).start()
        try:
            await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
            assert len(await restarted.until(1)) == 1
        finally:
            await upstream.close()
            restarted.stop()
