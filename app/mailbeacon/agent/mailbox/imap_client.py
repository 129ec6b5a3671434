"""A small asyncio IMAP4rev1 client: what watching the inbox and tidying Sent need.

Connect (implicit TLS, STARTTLS or plain), log in (password, or an OAuth token
with XOAUTH2 / OAUTHBEARER), EXAMINE a mailbox, UID
SEARCH, UID FETCH with literals, IDLE and LOGOUT; for changing mail: SELECT,
LIST (with special-use attributes), UID STORE, EXPUNGE, UID EXPUNGE, APPEND,
UID COPY and UID MOVE. Commands run one at a time;
responses are read in full (literals included) into :class:`Response` values.
Untagged ``EXISTS`` responses that arrive with any command are remembered in
``new_mail`` so a caller never misses mail that arrived between commands.
What the responses say is read by :mod:`imap_parse`.

Why not a library: ``imaplib`` has no IDLE before Python 3.14 and blocks a
thread, and ``aioimaplib`` has no STARTTLS and no type hints.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mailbeacon.agent.mailbox.imap_parse import (
    ListedMailbox,
    Response,
    Value,
    copyuid,
    imap_date,
    parse_fetch,
    parse_list,
    quote,
    response_codes,
    uid_set,
)
from mailbeacon.core import sasl
from mailbeacon.core.language import Phrase, mark

log = logging.getLogger(__name__)

LINE_LIMIT = 8 * 1024 * 1024  # a SEARCH answer for a large mailbox is one long line
MAX_LITERAL = 80 * 1024 * 1024
# One response's literals together: three 80 MiB literals once grew memory by 600 MiB.
MAX_RESPONSE = 100 * 1024 * 1024
COMMAND_TIMEOUT = 60.0
CLOSED = Phrase(mark("the server closed the connection"))

_LITERAL = re.compile(rb"\{(\d{1,10})\+?\}\r?\n$")
_TAGGED = re.compile(rb"^(\S+) (OK|NO|BAD)(?: \[([^\]]*)\])? ?(.*)$", re.IGNORECASE | re.S)
_UNTAGGED_NUM = re.compile(rb"^\* (\d+) (\w+)", re.IGNORECASE)
_CODE = re.compile(rb"^\* (?:OK|NO|BAD|PREAUTH|BYE) \[([^\]]*)\]", re.IGNORECASE)


class ImapError(Exception):
    """The server refused a command or broke the protocol."""


class AuthenticationFailed(ImapError):
    """The server refused the user name or password."""


class TokenRefused(AuthenticationFailed):
    """The server refused the access token; ``refusal`` is what its error challenge said."""

    def __init__(self, message: str, refusal: sasl.BearerRefusal) -> None:
        super().__init__(message)
        self.refusal = refusal


class ConnectionClosed(ImapError):
    """The server closed the connection (or sent BYE)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """What EXAMINE says about a mailbox."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    read_only: bool = False  # EXAMINE, or a SELECT the server answered [READ-ONLY]


@dataclass(slots=True)
class ClientStats:
    """Counts for the operator and for tests (what did we ask the server for)."""

    commands: dict[str, int] = field(default_factory=dict)
    fetched_messages: int = 0
    fetched_bytes: int = 0


class ImapClient:
    """One IMAP connection. Create with :meth:`connect`; always :meth:`close`."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host
        self.max_response = MAX_RESPONSE  # a bound on one response's literals together
        self._tag = 0
        self.capabilities: frozenset[str] = frozenset()
        self.new_mail = False  # set by any untagged EXISTS; the caller clears it
        self.alert = False  # set by an untagged NO or BAD (a server-side problem)
        self.stats = ClientStats()

    # ------------------------------------------------------------ connecting

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        security: str,
        ssl_context: ssl.SSLContext | None = None,
        time_limit: float = 30.0,
    ) -> ImapClient:
        """Connect and read the greeting; ``security`` is "tls", "starttls" or "none"."""
        context = ssl_context or ssl.create_default_context()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=context if security == "tls" else None,
                server_hostname=host if security == "tls" else None,
                limit=LINE_LIMIT,
            ),
            time_limit,
        )
        _keepalive(writer)
        client = cls(reader, writer, host)
        try:
            await asyncio.wait_for(client._greeting(), time_limit)
            if security == "starttls":
                await client._starttls(context, time_limit)
        except BaseException:
            await client.close()
            raise
        return client

    async def _greeting(self) -> None:
        greeting = await self._read_response()
        if greeting.data.upper().startswith(b"* BYE"):
            raise ConnectionClosed(f"the server refused the connection: {greeting.text}")
        self._capabilities_from(greeting.data)
        if not self.capabilities:
            await self.capability()

    async def _starttls(self, context: ssl.SSLContext, time_limit: float) -> None:
        if "STARTTLS" not in self.capabilities:
            raise ImapError(
                Phrase(mark("the server does not offer STARTTLS; use imaps:// instead"))
            )
        await self.command("STARTTLS", time_limit=time_limit)
        await asyncio.wait_for(
            self._writer.start_tls(context, server_hostname=self._host), time_limit
        )
        self.capabilities = frozenset()  # must not be trusted from before TLS
        await self.capability()

    async def capability(self) -> frozenset[str]:
        """Ask for the server's capabilities."""
        responses = await self.command("CAPABILITY")
        for response in responses:
            if response.data.upper().startswith(b"* CAPABILITY "):
                self.capabilities = frozenset(response.text.upper().split()[2:])
        return self.capabilities

    def _capabilities_from(self, data: bytes) -> None:
        match = re.search(rb"\[CAPABILITY ([^\]]*)\]", data, re.IGNORECASE)
        if match:
            self.capabilities = frozenset(match.group(1).decode("ascii", "replace").upper().split())

    async def login(self, user: str, password: str) -> None:
        """Log in (AUTHENTICATE PLAIN where offered, else LOGIN); raises AuthenticationFailed."""
        if "LOGINDISABLED" in self.capabilities and "AUTH=PLAIN" not in self.capabilities:
            raise ImapError(
                Phrase(mark("the server does not allow logging in over this connection"))
            )
        try:
            if "AUTH=PLAIN" in self.capabilities:
                token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
                if "SASL-IR" in self.capabilities:
                    responses = await self.command("AUTHENTICATE", "PLAIN", token, secret=True)
                else:
                    responses = await self.command(
                        "AUTHENTICATE", "PLAIN", continuation=token.encode(), secret=True
                    )
            else:
                responses = await self.command(
                    "LOGIN", quote(user), quote(password), secret=True
                )
        except ImapError as exc:
            text = str(exc)
            if "[UNAVAILABLE]" in text.upper() or "[SERVERBUG]" in text.upper():
                raise
            raise AuthenticationFailed(text) from None
        self._capabilities_from(responses[-1].data)
        if not any(c.startswith("IMAP4") for c in self.capabilities):
            await self.capability()

    async def authenticate_bearer(
        self, user: str, token: str, mechanism: sasl.Mechanism, host: str, port: int
    ) -> None:
        """Log in with an access token (AUTHENTICATE XOAUTH2 or OAUTHBEARER).

        The initial response goes on the command line where the server offers
        SASL-IR (RFC 4959), else after its first ``+``. A server that refuses
        the token sends its error as another ``+`` (RFC 7628 3.2.2), which is
        answered so that it ends the exchange. Raises TokenRefused on NO.
        """
        if f"AUTH={mechanism}" not in self.capabilities:
            raise ImapError(
                Phrase(mark("the server does not offer a sign-in with {method}"), method=mechanism)
            )
        initial = sasl.encode(sasl.initial_response(mechanism, user, token, host, port))
        tag = self._next_tag()
        self._count("AUTHENTICATE")
        log.debug("imap > %s AUTHENTICATE %s ...", tag, mechanism)
        pending: str | None = initial
        if "SASL-IR" in self.capabilities:
            await self._send(f"{tag} AUTHENTICATE {mechanism} {initial}\r\n".encode())
            pending = None
        else:
            await self._send(f"{tag} AUTHENTICATE {mechanism}\r\n".encode())
        refusal: sasl.BearerRefusal | None = None
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while True:
                response = await self._read_response()
                if response.tag == "+":
                    if pending is None and refusal is None:  # the error challenge
                        refusal = sasl.parse_refusal(response.data[1:].strip())
                        pending = sasl.encode(sasl.error_reply(mechanism))
                    # Asked once more than the exchange has steps: cancel it.
                    await self._send((pending if pending is not None else "*").encode() + b"\r\n")
                    pending = None
                elif response.tag == tag:
                    break
                elif response.tag is None:
                    self._note(response)
        self._token_login_done(response, refusal or sasl.BearerRefusal(""))
        if not any(c.startswith("IMAP4") for c in self.capabilities):
            await self.capability()

    def _token_login_done(self, tagged: Response, refusal: sasl.BearerRefusal) -> None:
        """Capabilities from the tagged OK, or the error a refused token login means."""
        match = _TAGGED.match(tagged.data)
        status = match.group(2).upper() if match else b""
        if status == b"OK":
            self._capabilities_from(tagged.data)
            return
        text = f"AUTHENTICATE failed: {tagged.text.partition(' ')[2][:300]}"
        upper = text.upper()
        if status == b"BAD" or "[UNAVAILABLE]" in upper or "[SERVERBUG]" in upper:
            raise ImapError(text)  # not the token's fault: retrying later may help
        raise TokenRefused(text, refusal)

    # ------------------------------------------------------------ mailbox

    async def examine(self, mailbox: str = "INBOX") -> Mailbox:
        """Select ``mailbox`` read-only; the watcher never changes mail or flags."""
        return await self._open("EXAMINE", mailbox)

    async def select(self, mailbox: str) -> Mailbox:
        """Select ``mailbox`` for changes; ``read_only`` says if the server refused that."""
        return await self._open("SELECT", mailbox)

    async def _open(self, verb: str, mailbox: str) -> Mailbox:
        responses = await self.command(verb, quote(mailbox))
        uidvalidity: int | None = None
        uidnext: int | None = None
        exists = 0
        for response in responses:
            code = _CODE.match(response.data)
            if code:
                words = code.group(1).split()
                if len(words) == 2 and words[1].isdigit():
                    if words[0].upper() == b"UIDVALIDITY":
                        uidvalidity = int(words[1])
                    elif words[0].upper() == b"UIDNEXT":
                        uidnext = int(words[1])
            number = _UNTAGGED_NUM.match(response.data)
            if number and number.group(2).upper() == b"EXISTS":
                exists = int(number.group(1))
        if uidvalidity is None:
            raise ImapError(
                Phrase(mark("the server did not say the UIDVALIDITY of {folder}"), folder=mailbox)
            )
        self.new_mail = False
        read_only = verb == "EXAMINE" or b"READ-ONLY" in response_codes(responses[-1:])
        return Mailbox(mailbox, uidvalidity, uidnext, exists, read_only)

    async def list_mailboxes(self, pattern: str = "*") -> list[ListedMailbox]:
        """Every mailbox matching ``pattern``, with special-use attributes where offered."""
        words = ["LIST", '""', quote(pattern)]
        if {"LIST-EXTENDED", "SPECIAL-USE"} <= self.capabilities:
            words += ["RETURN", "(SPECIAL-USE)"]
        responses = await self.command(*words)
        listed = (parse_list(r.data) for r in responses)
        return [entry for entry in listed if entry is not None]

    async def uid_store(self, uids: Sequence[int], action: str, flags: str) -> None:
        """``UID STORE`` (e.g. ``+FLAGS.SILENT``, ``(\\Deleted)``) on exactly ``uids``."""
        if uids:
            await self.command("UID", "STORE", uid_set(uids), action, flags)

    async def expunge(self) -> None:
        """Remove every message marked \\Deleted in the selected mailbox (all of them!)."""
        await self.command("EXPUNGE")

    async def uid_expunge(self, uids: Sequence[int]) -> None:
        """Remove those of ``uids`` that are marked \\Deleted, nothing else (UIDPLUS)."""
        if "UIDPLUS" not in self.capabilities:
            raise ImapError(
                Phrase(mark("the server cannot expunge single messages (no UIDPLUS)"))
            )
        if uids:
            await self.command("UID", "EXPUNGE", uid_set(uids))

    async def append(
        self,
        mailbox: str,
        message: bytes,
        flags: Sequence[str] = (),
        when: datetime | None = None,
        time_limit: float = 300.0,
    ) -> int | None:
        """Store ``message`` in ``mailbox``; its new UID when the server says it (UIDPLUS)."""
        words = ["APPEND", quote(mailbox)]
        if flags:
            words.append("(" + " ".join(flags) + ")")
        if when is not None:
            words.append(quote(imap_date(when)))
        words.append(f"{{{len(message)}}}")
        responses = await self.command(*words, continuation=message, time_limit=time_limit)
        for code in response_codes(responses[-1:]):
            parts = code.split()
            if len(parts) == 3 and parts[0].upper() == b"APPENDUID" and parts[2].isdigit():
                return int(parts[2])
        return None

    async def uid_copy(self, uids: Sequence[int], mailbox: str) -> dict[int, int]:
        """Copy ``uids`` to ``mailbox``; old UID to new UID where the server says (COPYUID)."""
        if not uids:
            return {}
        return copyuid(await self.command("UID", "COPY", uid_set(uids), quote(mailbox)))

    async def uid_move(self, uids: Sequence[int], mailbox: str) -> dict[int, int]:
        """Move ``uids`` to ``mailbox`` (needs MOVE); old UID to new UID where the server says."""
        if "MOVE" not in self.capabilities:
            raise ImapError(Phrase(mark("the server cannot move messages (no MOVE)")))
        if not uids:
            return {}
        return copyuid(await self.command("UID", "MOVE", uid_set(uids), quote(mailbox)))

    async def uid_search(self, criteria: str) -> list[int]:
        """UIDs matching ``criteria`` (e.g. ``UID 100:*``), ascending."""
        responses = await self.command("UID", "SEARCH", criteria)
        uids: list[int] = []
        for response in responses:
            if response.data.upper().startswith(b"* SEARCH"):
                uids.extend(int(w) for w in response.data.split()[2:] if w.isdigit())
        return sorted(set(uids))

    async def uid_fetch(
        self, uids: Sequence[int], items: str, time_limit: float = COMMAND_TIMEOUT
    ) -> dict[int, dict[str, Value]]:
        """FETCH ``items`` for ``uids``; the answer per UID, keyed by item name (upper case)."""
        if not uids:
            return {}
        numbers = ",".join(str(u) for u in uids)
        responses = await self.command("UID", "FETCH", numbers, items, time_limit=time_limit)
        wanted = set(uids)
        found: dict[int, dict[str, Value]] = {}
        for response in responses:
            number = _UNTAGGED_NUM.match(response.data)
            if not number or number.group(2).upper() != b"FETCH":
                continue
            attributes = parse_fetch(response.data, number.end())
            uid = attributes.get("UID")
            if isinstance(uid, int) and uid in wanted:
                found.setdefault(uid, {}).update(attributes)
        self.stats.fetched_messages += len(found)
        return found

    async def uid_fetch_last(self) -> int:
        """The highest UID in the mailbox (0 when it is empty)."""
        try:
            responses = await self.command("UID", "FETCH", "*", "(UID)")
        except ImapError:
            return 0
        highest = 0
        for response in responses:
            number = _UNTAGGED_NUM.match(response.data)
            if number and number.group(2).upper() == b"FETCH":
                uid = parse_fetch(response.data, number.end()).get("UID")
                if isinstance(uid, int):
                    highest = max(highest, uid)
        return highest

    async def noop(self) -> None:
        """NOOP (keeps the connection alive; the server reports news with it)."""
        await self.command("NOOP")

    async def idle(
        self, time_limit: float, on_idle: Callable[[], None] = lambda: None
    ) -> bool:
        """IDLE until new mail (True) or ``time_limit`` seconds (False); then DONE.

        ``on_idle`` is called once the server has accepted IDLE.
        """
        if self.new_mail:
            return True
        tag = self._next_tag()
        self._count("IDLE")
        await self._send(f"{tag} IDLE\r\n".encode())
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while True:  # untagged news may come before the server's "+"
                first = await self._read_response()
                if first.tag == tag:
                    raise ImapError(
                        Phrase(mark("the server refused IDLE: {reply}"), reply=first.text[:200])
                    )
                if first.tag == "+":
                    break
                self._note(first)
        on_idle()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit
        while not (self.new_mail or self.alert):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                response = await asyncio.wait_for(self._read_response(), remaining)
            except TimeoutError:
                break
            if response.tag == tag:  # the server ended IDLE itself
                return self.new_mail
            self._note(response)
        await self._send(b"DONE\r\n")
        await self._until_tagged(tag, "IDLE", COMMAND_TIMEOUT)
        return self.new_mail

    async def logout(self) -> None:
        """Say goodbye (best effort) and close."""
        with contextlib.suppress(ImapError, OSError, TimeoutError):
            await self.command("LOGOUT", time_limit=5.0)
        await self.close()

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self._writer.wait_closed(), 5.0)

    # ------------------------------------------------------------ protocol

    def _next_tag(self) -> str:
        self._tag += 1
        return f"M{self._tag}"

    def _count(self, name: str) -> None:
        self.stats.commands[name] = self.stats.commands.get(name, 0) + 1

    async def command(
        self,
        *words: str,
        continuation: bytes | None = None,
        secret: bool = False,
        time_limit: float = COMMAND_TIMEOUT,
    ) -> list[Response]:
        """Run one command; the untagged responses and the tagged OK, last.

        ``continuation`` is sent when the server asks for more (``+``);
        ``secret`` keeps the arguments out of logs. Raises ImapError on NO/BAD.
        """
        tag = self._next_tag()
        name = " ".join(words[:2]) if words[0] == "UID" else words[0]
        self._count(name)
        line = f"{tag} {' '.join(words)}\r\n".encode()
        log.debug("imap > %s", f"{tag} {name} ..." if secret else line.decode().rstrip())
        await self._send(line)
        return await self._until_tagged(tag, name, time_limit, continuation)

    async def _until_tagged(
        self, tag: str, name: str, time_limit: float, continuation: bytes | None = None
    ) -> list[Response]:
        responses: list[Response] = []
        async with asyncio.timeout(time_limit):
            while True:
                response = await self._read_response()
                if response.tag == "+":
                    # Answer once; asked again, cancel (an empty line ends a SASL exchange).
                    await self._send((continuation or b"*") + b"\r\n")
                    continuation = None
                    continue
                if response.tag == tag:
                    responses.append(response)
                    return self._finish(name, response, responses)
                if response.tag is not None:
                    continue  # a stray tagged response (e.g. an IDLE we abandoned)
                self._note(response)
                responses.append(response)

    def _finish(self, name: str, tagged: Response, responses: list[Response]) -> list[Response]:
        match = _TAGGED.match(tagged.data)
        status = match.group(2).upper() if match else b""
        if status != b"OK":
            raise ImapError(
                Phrase(
                    mark("{command} failed: {reply}"),
                    command=name,
                    reply=tagged.text.partition(" ")[2][:300],
                )
            )
        return responses

    def _note(self, response: Response) -> None:
        upper = response.data[:64].upper()
        if upper.startswith(b"* BYE"):
            raise ConnectionClosed(
                Phrase(
                    mark("the server closed the connection: {reply}"), reply=response.text[:200]
                )
            )
        if upper.startswith((b"* NO", b"* BAD")):
            log.info("the IMAP server warns: %s", response.text[:200])
            self.alert = True
            return
        number = _UNTAGGED_NUM.match(response.data)
        if number and number.group(2).upper() in (b"EXISTS", b"RECENT"):
            self.new_mail = True

    async def _send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ConnectionClosed(f"the connection was lost: {exc}") from exc

    async def _read_line(self) -> bytes:
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed(CLOSED) from exc
        except asyncio.LimitOverrunError as exc:
            raise ImapError(Phrase(mark("the server sent an over-long line"))) from exc
        except (ConnectionError, OSError) as exc:
            raise ConnectionClosed(f"the connection was lost: {exc}") from exc
        return line

    async def _read_response(self) -> Response:
        """One response, with its literals read into it."""
        chunks: list[bytes] = []
        total = 0
        while True:
            line = await self._read_line()
            chunks.append(line)
            literal = _LITERAL.search(line)
            if literal is None:
                break
            size = int(literal.group(1))
            total += size
            if size > MAX_LITERAL or total > self.max_response:
                raise ImapError(
                    f"the server sent a response of more than {total} bytes; not reading it"
                )
            try:
                data = await self._reader.readexactly(size)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionClosed(CLOSED) from exc
            self.stats.fetched_bytes += size
            chunks.append(data)
        data = b"".join(chunks)
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        head = data[:2]
        if head == b"* ":
            return Response(None, data)
        if head.startswith(b"+"):
            return Response("+", data)
        return Response(data.split(b" ", 1)[0].decode("ascii", "replace"), data)


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive: a connection a NAT or firewall dropped silently during a long
    IDLE is noticed within minutes instead of at the next IDLE renewal."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
