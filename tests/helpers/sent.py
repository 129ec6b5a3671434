"""Fakes for the Sent-folder cleanup: a provider that saves what it got into Sent,
a mail server that can be switched off, emails, and a look into a mailbox."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import shutil
import socket
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailbeacon.agent.mailbox.sent_copies import tracking_tokens
from tests.helpers import dovecot as dv
from tests.helpers.net import free_port
from tests.helpers.smtp import SinkHandler, SmtpSink

_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r?\n", re.IGNORECASE | re.MULTILINE)


def html_email(
    message_id: str,
    to: tuple[str, ...] = ("alicja@example.com",),
    subject: str = "Oferta Q4",
    sender: str = "rep@example.net",
    html: str = '<p>Dzień dobry, <a href="https://example.com/offer">our offer</a>.</p>',
) -> bytes:
    """A multipart/alternative email with a quoted-printable HTML part."""
    qp = html.replace("=", "=3D").encode("utf-8")
    qp = re.sub(rb"[\x80-\xff]", lambda m: b"=%02X" % m.group(0)[0], qp)
    return (
        f"From: Rep <{sender}>\r\n"
        f"To: {', '.join(to)}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Tue, 01 Jan 2030 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Dzien dobry, our offer: https://example.com/offer\r\n"
        "--b1\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
    ).encode() + qp + b"\r\n--b1--\r\n"


def plain_email(message_id: str, subject: str = "Lunch?") -> bytes:
    """A plain-text email the rep wrote without MailBeacon."""
    return (
        f"From: rep@example.net\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n\r\nSee you at noon.\r\n"
    ).encode()


def has_pixel(raw: bytes) -> bool:
    """Whether the message carries any MailBeacon pixel."""
    return bool(tracking_tokens(raw)[0])


@dataclass
class SentSavingHandler(SinkHandler):
    """An upstream that, like Gmail, appends what it accepted to the sender's Sent.

    ``hold``: keep the copies back until ``release()`` (Microsoft 365 saves later);
    ``new_message_id``: save under a Message-ID of its own (some providers do).
    """

    server: Any = None
    rep: str = dv.USER  # whose Sent (``user`` would make the sink ask for a login)
    save: bool = True
    hold: bool = False
    new_message_id: bool = False
    held: list[bytes] = field(default_factory=list)
    saved: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        content = envelope.original_content
        if not reply.startswith("250") or not self.save or not isinstance(content, bytes):
            return reply
        if self.new_message_id:
            number = self.saved + 1
            content = _MESSAGE_ID.sub(
                f"Message-ID: <provider-{number}@outlook.example>\r\n".encode(), content, 1
            )
        if self.hold:
            self.held.append(content)
        else:
            # Saved before answering 250, as Gmail does: the copy is there once sent.
            await asyncio.to_thread(self.server.append, content, mailbox="Sent", user=self.rep)
        self.saved += 1
        return reply

    def release(self) -> None:
        """Save the held copies now (blocking)."""
        held, self.held = self.held, []
        if held:
            self.server.append(*held, mailbox="Sent", user=self.rep)


class SentSavingSink(SmtpSink):
    """An SmtpSink whose handler saves into the rep's Sent on ``server``."""

    def __init__(self, server: dv.Dovecot, user: str, **options: Any) -> None:
        super().__init__()
        handler = SentSavingHandler(server=server, rep=user, **options)
        self.handler = handler
        self._controller.handler = handler
        self.saving = handler


@dataclass(frozen=True)
class Stored:
    """A message in a mailbox, as a mail client would see it."""

    uid: int
    flags: str
    data: bytes

    @property
    def message_id(self) -> str | None:
        found = re.search(rb"^Message-ID:\s*(\S+)", self.data, re.IGNORECASE | re.MULTILINE)
        return found.group(1).decode() if found else None


def fill_maildir(server: dv.Dovecot, user: str, folder: str, messages: list[bytes]) -> None:
    """Drop ``messages`` straight into a maildir folder (thousands in a blink; Dovecot
    indexes them when the folder is next opened). The folder must exist already."""
    target = server.root / "mail" / user / f".{folder}" / "cur"
    assert target.is_dir(), f"{target} does not exist yet"
    for number, raw in enumerate(messages):
        path = target / f"1700000000.M{number}P1.fill,S={len(raw)}:2,S"
        path.write_bytes(raw)
        shutil.chown(path, "mail", "mail")


class _ImapFrom(imaplib.IMAP4):
    """A stdlib IMAP client connecting from 127.0.0.9: Dovecot's penalty for the agent's
    failed logins (from 127.0.0.1) does not slow the test's own look into the mailbox."""

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=("127.0.0.9", 0)
        )


def mailbox(server: dv.Dovecot, user: str, name: str = "Sent",
            message_id: str | None = None) -> list[Stored]:
    """The messages in ``name`` (only those with ``message_id`` when given), blocking."""
    imap = _ImapFrom("127.0.0.1", server.port, timeout=10)
    try:
        imap.login(user, server.users[user])
        return _messages(imap, name, message_id)
    finally:
        with contextlib.suppress(Exception):
            imap.logout()


def _messages(imap: imaplib.IMAP4, name: str, message_id: str | None) -> list[Stored]:
    typ, _ = imap.select(f'"{name}"', readonly=True)
    assert typ == "OK", f"cannot open {name}"
    criteria = ("HEADER", "Message-ID", f'"{message_id}"') if message_id else ("ALL",)
    typ, data = imap.uid("SEARCH", *criteria)
    uids = data[0].split() if data and data[0] else []
    found = []
    for uid in uids:
        typ, parts = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
        for part in parts:
            if isinstance(part, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", part[0])
                found.append(Stored(int(uid), flags.group(1).decode() if flags else "", part[1]))
    return found


class SwitchableServer:
    """A loopback port that forwards to the mail server while up and refuses while down."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class ScriptedImap:
    """A tiny IMAP server on loopback for protocol corners Dovecot never shows (no
    UIDPLUS, odd answers). ``answers`` maps a command (``"UID SEARCH"``) to the
    untagged lines sent before the tagged OK, ``codes`` to a code in that OK; every
    command line is recorded, and the literal of an APPEND."""

    def __init__(self, capabilities: str = "IMAP4rev1 AUTH=PLAIN SASL-IR",
                 answers: dict[str, list[str]] | None = None,
                 codes: dict[str, str] | None = None) -> None:
        self.capabilities = capabilities
        self.answers = answers or {}
        self.codes = codes or {}  # a response code for the tagged OK, e.g. "[APPENDUID 1 9]"
        self.lines: list[str] = []
        self.literals: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def commands(self) -> list[str]:
        """The command names received (``UID SEARCH``, ``EXPUNGE``...)."""
        names = []
        for line in self.lines:
            words = line.split()
            if len(words) >= 2:
                names.append(" ".join(words[1:3]).upper() if words[1].upper() == "UID"
                             else words[1].upper())
        return names

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"* OK [CAPABILITY {self.capabilities}] ready\r\n".encode())
        try:
            for _ in range(1000):  # bounded: a test sends a handful of commands
                line = (await reader.readline()).decode().rstrip("\r\n")
                if not line:
                    break
                self.lines.append(line)
                literal = re.search(r"\{(\d+)\}$", line)
                if literal:
                    writer.write(b"+ go ahead\r\n")
                    await writer.drain()
                    self.literals.append(await reader.readexactly(int(literal.group(1))))
                    await reader.readline()
                tag, _, rest = line.partition(" ")
                words = rest.upper().split()
                name = " ".join(words[:2]) if words[0] == "UID" else words[0]
                for answer in self.answers.get(name, []):
                    writer.write(answer.encode() + b"\r\n")
                if name == "LOGOUT":
                    writer.write(b"* BYE\r\n")
                code = self.codes.get(name, "")
                writer.write(f"{tag} OK {code}{' ' if code else ''}{name} done\r\n".encode())
                await writer.drain()
                if name == "LOGOUT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
