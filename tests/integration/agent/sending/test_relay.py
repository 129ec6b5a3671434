"""The SMTP relay over real SMTP: client -> relay -> outbox -> upstream sink.

Clients are smtplib (in a worker thread), swaks, and a raw socket where a
client must misbehave. The upstream is a real aiosmtpd sink.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import smtplib
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem, RetryPolicy
from mailbeacon.agent.sending.relay import IncomingMessage, Relay, RelayStartError
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from tests.helpers.smtp import SmtpSink

PASSWORD = "relay-secret-Pw1"
FAST = RetryPolicy(base=0.01, cap=0.05, jitter=0.1)


@dataclass
class Chain:
    relay: Relay
    outbox: Outbox
    sink: SmtpSink
    spool: Path
    accepted: list[IncomingMessage] = field(default_factory=list)
    fail_accept: Exception | None = None

    def queued_files(self) -> list[Path]:
        return sorted((self.spool / "queue").glob("*.eml")) + sorted((self.spool / "tmp").glob("*"))


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
async def chain(tmp_path: Path, sink: SmtpSink) -> AsyncIterator[Chain]:
    spool = tmp_path / "outbox"
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
    outbox = Outbox(spool, upstream, policy=FAST)
    holder: list[Chain] = []

    async def accept(message: IncomingMessage) -> str:
        chain = holder[0]
        if chain.fail_accept is not None:
            raise chain.fail_accept
        chain.accepted.append(message)
        return await outbox.enqueue(OutboxItem(message.mail_from, message.recipients, message.data))

    relay = Relay(accept, PASSWORD, max_message_bytes=200_000)
    holder.append(Chain(relay, outbox, sink, spool))
    await outbox.start()
    await relay.start()
    yield holder[0]
    await relay.stop()
    await outbox.stop()


def send(port: int, sender: str, rcpts: list[str], data: bytes, password: str = PASSWORD) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.login("mailbeacon", password)
        client.sendmail(sender, rcpts, data)


RAW = (
    b"From: Rep <rep@x.example>\r\n"
    b"To: Bob <bob@y.example>, track@mailbeacon.invalid\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and \xc3\xbcmlauts\r\n"
    b"Message-ID: <m1@x.example>\r\n"
    b"X-MailBeacon-Log: no\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".a line that starts with a dot\r\n"
    b"..and one with two\r\n"
    b"\r\n"
    b"X-MailBeacon-Track: no (this is body text, it stays)\r\n"
)


async def test_message_passes_with_controls_honoured_and_removed(chain: Chain) -> None:
    await asyncio.to_thread(
        send,
        chain.relay.port,
        "rep@x.example",
        ["bob@y.example", "track@mailbeacon.invalid", "carol@z.example"],
        RAW,
    )
    [got] = await chain.sink.until(1)
    assert got.mail_from == "rep@x.example"
    assert got.rcpt_tos == ("bob@y.example", "carol@z.example")
    expected = RAW.replace(b", track@mailbeacon.invalid", b"").replace(
        b"X-MailBeacon-Log: no\r\n", b""
    )
    assert got.data == expected
    head = got.data.split(b"\r\n\r\n")[0].lower()
    assert b"mailbeacon.invalid" not in got.data and b"x-mailbeacon-" not in head
    [message] = chain.accepted
    assert (message.track_override, message.log_override) == (True, False)


async def test_login_mechanism_works_too(chain: Chain) -> None:
    def login_and_send() -> None:
        with smtplib.SMTP("127.0.0.1", chain.relay.port, timeout=10) as client:
            client.ehlo()
            assert "LOGIN" in client.esmtp_features["auth"].split()
            client.user, client.password = "mailbeacon", PASSWORD
            client.auth("LOGIN", client.auth_login)
            client.sendmail("rep@x.example", ["bob@y.example"], b"Subject: s\r\n\r\nx\r\n")

    await asyncio.to_thread(login_and_send)
    await chain.sink.until(1)


@pytest.mark.needs_program("swaks")
async def test_swaks_html_and_pdf_attachment_arrive_intact(chain: Chain, tmp_path: Path) -> None:
    html = tmp_path / "body.html"
    html.write_text("<html><body><p>Hi <a href='https://example.com/x'>there</a></p></body></html>")
    pdf = tmp_path / "f.pdf"
    pdf_bytes = b"%PDF-1.4\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"
    pdf.write_bytes(pdf_bytes)
    command = [
        "swaks", "--server", f"127.0.0.1:{chain.relay.port}",
        "--auth", "PLAIN", "--auth-user", "mailbeacon", "--auth-password", PASSWORD,
        "--from", "rep@x.example", "--to", "bob@y.example,notrack@mailbeacon.invalid",
        "--header", "Subject: Proposal", "--header", "X-MailBeacon-Log: yes",
        "--attach-type", "text/html", "--attach-body", f"@{html}",
        "--attach-type", "application/pdf", "--attach-name", "f.pdf", "--attach", f"@{pdf}",
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "250 2.0.0 OK queued as" in done.stdout
    [got] = await chain.sink.until(1)
    assert got.rcpt_tos == ("bob@y.example",)
    assert b"mailbeacon.invalid" not in got.data.lower()
    assert b"x-mailbeacon-" not in got.data.lower()
    parsed = message_from_bytes(got.data, policy=policy.default)
    assert str(parsed["To"]) == "bob@y.example"
    parts = {part.get_content_type(): part for part in parsed.walk()}
    assert parts["application/pdf"].get_content() == pdf_bytes
    assert "https://example.com/x" in parts["text/html"].get_content()
    [message] = chain.accepted
    assert (message.track_override, message.log_override) == (False, True)


@pytest.mark.expect_log("wrong password")
async def test_wrong_password_gets_535_and_a_log_line_without_the_password(
    chain: Chain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        await asyncio.to_thread(
            send, chain.relay.port, "rep@x.example", ["b@y.example"], RAW, "guess-Pw9"
        )
    assert refused.value.smtp_code == 535
    relay_lines = [r.getMessage() for r in caplog.records if r.name.endswith("relay")]
    assert any("refused" in line and "wrong password" in line for line in relay_lines)
    assert "guess-Pw9" not in caplog.text and PASSWORD not in caplog.text
    assert base64.b64encode(b"\0mailbeacon\0guess-Pw9").decode() not in caplog.text
    assert not chain.queued_files()


async def test_mail_without_auth_gets_530(chain: Chain) -> None:
    def unauthenticated() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", chain.relay.port, timeout=10) as client:
            client.ehlo()
            return client.mail("rep@x.example")

    code, _ = await asyncio.to_thread(unauthenticated)
    assert code == 530
    assert not chain.queued_files()


async def test_unknown_control_address_is_refused_at_rcpt(chain: Chain) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(
            send, chain.relay.port, "rep@x.example", ["typo@mailbeacon.invalid"], RAW
        )
    code, reply = refused.value.recipients["typo@mailbeacon.invalid"]
    assert code == 550 and b"unknown control address" in reply


async def test_message_to_control_addresses_only_is_refused(chain: Chain) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(
            send, chain.relay.port, "rep@x.example", ["track@mailbeacon.invalid"], RAW
        )
    assert refused.value.smtp_code == 554
    assert not chain.queued_files()


async def test_size_is_advertised_and_oversize_gets_552(chain: Chain) -> None:
    def oversize() -> tuple[str, int, int]:
        with smtplib.SMTP("127.0.0.1", chain.relay.port, timeout=10) as client:
            client.login("mailbeacon", PASSWORD)
            advertised = client.esmtp_features["size"]
            declared, _ = client.mail("rep@x.example", ["SIZE=300000"])
            client.rset()
            big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 250
            client.esmtp_features.pop("size")  # a client that does not declare the size
            try:
                client.sendmail("rep@x.example", ["b@y.example"], big)
            except smtplib.SMTPDataError as error:
                return advertised, declared, error.smtp_code
            return advertised, declared, 250

    advertised, declared, actual = await asyncio.to_thread(oversize)
    assert advertised == "200000"
    assert (declared, actual) == (552, 552)
    assert not chain.accepted and not chain.queued_files()


async def test_overlong_line_is_refused_and_nothing_queued(chain: Chain) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(
            send, chain.relay.port, "rep@x.example", ["b@y.example"],
            b"Subject: s\r\n\r\n" + b"z" * 5000 + b"\r\n.\r\nmore\r\n",
        )  # fmt: skip
    assert refused.value.smtp_code == 500
    assert not chain.queued_files() and not chain.accepted


@pytest.mark.expect_log("could not queue a message")
async def test_failing_accept_answers_451_without_details_and_queues_nothing(
    chain: Chain, caplog: pytest.LogCaptureFixture
) -> None:
    chain.fail_accept = OSError("disk full at /secret/path")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(send, chain.relay.port, "rep@x.example", ["b@y.example"], RAW)
    assert refused.value.smtp_code == 451
    assert b"disk full" not in refused.value.smtp_error
    assert b"/secret/path" not in refused.value.smtp_error
    assert "disk full" in caplog.text  # the operator sees it
    assert not chain.queued_files()


async def test_client_disconnecting_mid_data_queues_nothing(chain: Chain) -> None:
    def half_message() -> None:
        plain = base64.b64encode(f"\0mailbeacon\0{PASSWORD}".encode()).decode()
        with socket.create_connection(("127.0.0.1", chain.relay.port), timeout=10) as raw:
            stream = raw.makefile("rwb")

            def say(line: str, expect: bytes) -> None:
                stream.write(line.encode() + b"\r\n")
                stream.flush()
                reply = stream.readline()
                while reply[3:4] == b"-":
                    reply = stream.readline()
                assert reply.startswith(expect), reply

            assert stream.readline().startswith(b"220")
            say("EHLO client", b"250")
            say(f"AUTH PLAIN {plain}", b"235")
            say("MAIL FROM:<rep@x.example>", b"250")
            say("RCPT TO:<b@y.example>", b"250")
            say("DATA", b"354")
            stream.write(b"Subject: cut\r\n\r\nhalf a mess")
            stream.flush()

    await asyncio.to_thread(half_message)
    async with asyncio.timeout(5):
        await chain.relay.wait_no_sessions()
    assert not chain.accepted and not chain.queued_files()
    await asyncio.to_thread(send, chain.relay.port, "rep@x.example", ["b@y.example"], RAW)
    assert len(await chain.sink.until(1)) == 1


async def test_port_in_use_names_the_port_and_the_setting(chain: Chain) -> None:
    async def accept(message: IncomingMessage) -> str:
        return "never"

    second = Relay(accept, PASSWORD, port=chain.relay.port)
    with pytest.raises(RelayStartError) as error:
        await second.start()
    assert str(chain.relay.port) in str(error.value)
    assert "relay.port" in str(error.value)


def test_relay_refuses_to_listen_beyond_loopback_without_tls() -> None:
    async def accept(message: IncomingMessage) -> str:
        return "never"

    with pytest.raises(RelayStartError, match="loopback"):
        Relay(accept, PASSWORD, host="0.0.0.0")


def raw_session(port: int) -> tuple[socket.socket, Callable[[str], bytes]]:
    """A hand-driven SMTP session; ``say`` sends one line and returns the whole reply."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    stream = sock.makefile("rwb")

    def say(line: str) -> bytes:
        if line:
            stream.write(line.encode() + b"\r\n")
            stream.flush()
        line_in = stream.readline()
        reply = line_in
        while line_in[3:4] == b"-":
            line_in = stream.readline()
            reply += line_in
        return reply

    assert say("").startswith(b"220")
    return sock, say


async def test_client_hanging_up_while_its_message_is_queued_leaves_one_whole_item(
    tmp_path: Path, sink: SmtpSink
) -> None:
    spool = tmp_path / "outbox"
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
    outbox = Outbox(spool, upstream, policy=FAST)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow_accept(message: IncomingMessage) -> str:
        arrived.set()
        await release.wait()
        copies = [OutboxItem(message.mail_from, (r,), message.data) for r in message.recipients]
        return (await outbox.enqueue_many(copies))[0]

    relay = Relay(slow_accept, PASSWORD)
    await outbox.start()
    await relay.start()
    try:

        def send_and_hang_up() -> None:
            sock, say = raw_session(relay.port)
            plain = base64.b64encode(f"\0mailbeacon\0{PASSWORD}".encode()).decode()
            assert say("EHLO c").startswith(b"250")
            assert say(f"AUTH PLAIN {plain}").startswith(b"235")
            assert say("MAIL FROM:<rep@x.example>").startswith(b"250")
            assert say("RCPT TO:<a@y.example>").startswith(b"250")
            assert say("RCPT TO:<b@y.example>").startswith(b"250")
            assert say("DATA").startswith(b"354")
            sock.sendall(b"Message-ID: <hang@x.example>\r\n\r\nbody\r\n.\r\n")
            sock.close()  # gone before the relay could answer

        await asyncio.to_thread(send_and_hang_up)
        async with asyncio.timeout(5):
            await arrived.wait()
            await relay.wait_no_sessions()
        release.set()
        got = await sink.until(2)
        await outbox.wait_drained(5)
        assert sorted(g.rcpt_tos for g in got) == [("a@y.example",), ("b@y.example",)]
    finally:
        await relay.stop()
        await outbox.stop()


async def test_international_addresses_pass_with_smtputf8(chain: Chain) -> None:
    def send_utf8() -> None:
        with smtplib.SMTP("127.0.0.1", chain.relay.port, timeout=10) as client:
            client.login("mailbeacon", PASSWORD)
            client.sendmail(
                "rep@x.example", ["zoë@exämple.de"], b"Subject: s\r\n\r\nx\r\n",
                mail_options=["SMTPUTF8"],
            )  # fmt: skip

    await asyncio.to_thread(send_utf8)
    [got] = await chain.sink.until(1)
    assert got.rcpt_tos == ("zoë@exämple.de",) and "SMTPUTF8" in got.mail_options


async def test_bad_input_gets_clear_answers_and_the_session_goes_on(chain: Chain) -> None:
    def misbehave() -> dict[str, bytes]:
        sock, say = raw_session(chain.relay.port)
        plain = base64.b64encode(f"\0mailbeacon\0{PASSWORD}".encode()).decode()
        with sock:
            replies = {
                "ehlo": say("EHLO c"),
                "garbage auth": say("AUTH PLAIN !!!notbase64!!!"),
                "auth": say(f"AUTH PLAIN {plain}"),
                "absurd size": say("MAIL FROM:<rep@x.example> SIZE=999999999999"),
                "bad sender": say("MAIL FROM:<a@b@c>"),
                "mail": say("MAIL FROM:<rep@x.example>"),
            }
            for n in range(1000):
                assert say(f"RCPT TO:<r{n}@y.example>").startswith(b"250")
            replies["rcpt 1001"] = say("RCPT TO:<one-too-many@y.example>")
            replies["quit"] = say("QUIT")
        return replies

    replies = await asyncio.to_thread(misbehave)
    assert replies["garbage auth"].startswith(b"501")
    assert replies["auth"].startswith(b"235")
    assert replies["absurd size"].startswith(b"552")
    assert replies["bad sender"].startswith(b"553")
    assert replies["mail"].startswith(b"250")
    assert replies["rcpt 1001"].startswith(b"452")
    assert replies["quit"].startswith(b"221")
    assert not chain.accepted and not chain.queued_files()


# --- Guessing the password and flooding the relay are bounded (docs/promises.md#isolation).


class _Clock:
    """A monotonic clock the test moves forward (the per-minute window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def guarded() -> AsyncIterator[tuple[Relay, _Clock]]:
    """A relay with the default limits and a clock the test controls."""
    clock = _Clock()

    async def accept(message: IncomingMessage) -> str:
        return "q1"

    relay = Relay(accept, PASSWORD, clock=clock)
    await relay.start()
    yield relay, clock
    await relay.stop()


def _plain(password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0mailbeacon\0{password}".encode()).decode()


def _logins(port: int, passwords: list[str]) -> list[int]:
    """One SMTP session trying each password in turn: the reply codes (0: the relay
    had closed the connection)."""
    codes: list[int] = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        for password in passwords:
            try:
                code, _ = client.docmd("AUTH", _plain(password))
            except smtplib.SMTPServerDisconnected:
                code = 0
            codes.append(code)
            if code in (0, 421):
                # The relay closed the connection: the next command finds it gone.
                with pytest.raises(smtplib.SMTPServerDisconnected):
                    client.noop()
                    client.noop()
                break
    return codes


@pytest.mark.expect_log("wrong password", "failed logins")
async def test_three_failed_logins_close_the_session_with_421(
    guarded: tuple[Relay, _Clock],
) -> None:
    relay, _ = guarded
    codes = await asyncio.to_thread(_logins, relay.port, ["a-Guess1", "b-Guess2", "c-Guess3"])
    assert codes == [535, 535, 421]


@pytest.mark.expect_log("wrong password")
async def test_a_mistyped_password_corrected_in_time_still_logs_in(
    guarded: tuple[Relay, _Clock],
) -> None:
    relay, _ = guarded
    codes = await asyncio.to_thread(_logins, relay.port, ["typo-Pw1", "typo-Pw2", PASSWORD])
    assert codes == [535, 535, 235]


@pytest.mark.expect_log("wrong password", "failed logins")
async def test_failed_logins_across_sessions_lock_the_address_out_for_a_minute(
    guarded: tuple[Relay, _Clock],
) -> None:
    relay, clock = guarded
    guesses = ["x-Guess1", "y-Guess2", "z-Guess3"]
    for _ in range(3):  # 9 failures, three sessions closed
        assert await asyncio.to_thread(_logins, relay.port, guesses) == [535, 535, 421]
    # The tenth failure reaches the minute's limit: even the right password is refused
    # now, in this session and in a new one.
    assert await asyncio.to_thread(_logins, relay.port, ["w-Guess4", PASSWORD]) == [535, 421]
    assert await asyncio.to_thread(_logins, relay.port, [PASSWORD]) == [421]
    clock.now += 61
    assert await asyncio.to_thread(_logins, relay.port, [PASSWORD]) == [235]


@pytest.mark.expect_log("sessions are open already")
async def test_the_21st_concurrent_session_gets_421(guarded: tuple[Relay, _Clock]) -> None:
    relay, _ = guarded

    def connect_many() -> None:
        clients = [smtplib.SMTP("127.0.0.1", relay.port, timeout=10) for _ in range(20)]
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", relay.port, timeout=10)
            assert refused.value.smtp_code == 421
            clients.pop().quit()
            # One closed: a new session is welcome again.
            for _ in range(100):
                if relay.active_sessions < 20:
                    break
                time.sleep(0.01)  # the relay's loop notices the hang-up (no Qt here)
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as again:
                again.login("mailbeacon", PASSWORD)
        finally:
            for client in clients:
                client.close()

    await asyncio.to_thread(connect_many)
