"""The outgoing server's refusals in the rep's language (issue 19), against a real SMTP
server on loopback: the agent words them once, in English for the status file, the
outbox's spool and the log, and the tray says them again in Polish (``in_language``);
the server's own reply stays as it came."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mailbeacon.agent.sending.outbox_items import DeliveryError
from mailbeacon.agent.sending.upstream import Credentials, Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from mailbeacon.core.language import Language, in_language
from tests.helpers.smtp import SmtpSink

USER, PASSWORD = "rep@example.com", "upstream-Pw7"
MESSAGE = b"From: rep@example.com\r\nTo: b@y.example\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


async def test_a_missing_login_says_what_to_check_in_polish(pl: Language) -> None:
    with SmtpSink(user=USER, password=PASSWORD) as sink:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
        with pytest.raises(DeliveryError) as refused:
            await upstream.send("rep@example.com", ["b@y.example"], MESSAGE)
        await upstream.close()
    reply = refused.value.reply
    assert reply.startswith("530 ") and reply.endswith("(check the upstream user and password)")
    polish = in_language(reply, pl)
    assert polish.startswith("530 ")  # the server's words as they came
    assert polish.endswith("(sprawdź użytkownika i hasło serwera wychodzącego)")


async def _bare_smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An SMTP server that offers no extension at all (no AUTH, no SMTPUTF8)."""
    writer.write(b"220 bare.localhost ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        writer.write(b"221 bye\r\n" if verb == b"QUIT" else b"250 bare.localhost\r\n")
        await writer.drain()
        if verb == b"QUIT":
            break
    writer.close()


@pytest.fixture
async def bare() -> AsyncIterator[int]:
    server = await asyncio.start_server(_bare_smtp, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_server_without_smtputf8_says_so_in_polish(bare: int, pl: Language) -> None:
    url = parse_upstream(f"smtp://127.0.0.1:{bare}")
    upstream = Upstream(url, lambda: None)
    with pytest.raises(DeliveryError) as refused:
        await upstream.send("rep@example.com", ["zoë@exämple.de"], MESSAGE)
    await upstream.close()
    assert refused.value.permanent
    assert refused.value.reply == (
        f"{url} cannot take this message: the server does not accept non-ASCII addresses (SMTPUTF8)"
    )
    assert in_language(refused.value.reply, pl) == (
        f"Serwer {url} nie może przyjąć tej wiadomości: serwer nie przyjmuje adresów ze "
        "znakami spoza ASCII (SMTPUTF8)"
    )


async def test_a_server_without_a_login_says_so_in_polish(bare: int, pl: Language) -> None:
    upstream = Upstream(
        parse_upstream(f"smtp://127.0.0.1:{bare}"), lambda: Credentials(USER, PASSWORD)
    )
    check = await upstream.test_connection()
    await upstream.close()
    assert not check.ok
    assert check.message == (
        f"127.0.0.1:{bare} does not offer a login (SMTP AUTH) before STARTTLS; use "
        "smtp+starttls:// or smtps://."
    )
    assert in_language(check.message, pl) == (
        f"Serwer 127.0.0.1:{bare} nie oferuje logowania (SMTP AUTH) przed STARTTLS; użyj "
        "smtp+starttls:// lub smtps://."
    )
