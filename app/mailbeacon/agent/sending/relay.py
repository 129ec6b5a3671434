"""The intercepting SMTP relay: where the rep's mail client hands over outgoing mail.

The relay listens on loopback, requires SMTP AUTH (user ``mailbeacon`` and the
relay password), applies the per-message control channel (:mod:`mailbeacon.core.control`)
and hands each message to an injected ``accept`` coroutine, which rewrites it
and queues it durably. Only when ``accept`` returns does the client get
``250``; if it fails, the client gets ``451`` and keeps the message
(docs/promises.md#no-mail-lost).

It runs on the caller's asyncio loop (no thread), using aiosmtpd's protocol
with its handler hooks. DATA is read into one growing buffer instead of
aiosmtpd's list of per-line bytearrays, which keeps a 25 MB attachment from
costing three times its size in memory.

Guessing the relay password is bounded (docs/promises.md#isolation): a session
that fails AUTH ``max_auth_failures`` times gets ``421`` and is closed; a client
address with ``max_auth_failures_per_minute`` failures in the last minute, across
its sessions, gets ``421`` for every login until that minute has passed (the
password is then not even compared). At most ``max_sessions`` sessions are open at
once; one more gets ``421`` at its greeting and is closed, so a flood of
connections cannot exhaust the agent.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import io
import logging
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from mailbeacon.agent.settings.mail_urls import is_loopback
from mailbeacon.core.control import control_of, decide, is_control_address
from mailbeacon.core.followup_time import Delay
from mailbeacon.core.language import Phrase, mark

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 35 * MiB
DEFAULT_USER = "mailbeacon"
MAX_RECIPIENTS = 1000

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please retry"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
# A mail client retries a refused login once or twice; a third failure in one
# session is a guess. Across sessions, ten a minute is still far from brute force.
MAX_AUTH_FAILURES = 3
MAX_AUTH_FAILURES_PER_MINUTE = 10
# A desktop mail client opens a handful of connections at most.
MAX_SESSIONS = 20
TOO_MANY_FAILURES = "421 4.7.0 Too many failed logins; closing the connection"
LOCKED_OUT = "421 4.7.0 Too many failed logins from your address; try again in a minute"
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections; try again later"
_WINDOW = 60.0
_TRACKED_ADDRESSES = 1024  # client addresses whose recent failures are remembered


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message as the client handed it over, control channel already removed.

    ``track_override``/``log_override``/``opens_override`` are None when the message
    did not say (the rep's defaults apply); ``opens_override`` False is "clicks only".
    ``send_at`` (UTC) asks for a later send, ``remind`` for a reminder when nobody
    replies (``X-MailBeacon-Send-At``, ``X-MailBeacon-Remind``; docs/interfaces.md).
    """

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    track_override: bool | None
    log_override: bool | None
    opens_override: bool | None = None
    send_at: datetime | None = None
    remind: Delay | None = None


Accept = Callable[[IncomingMessage], Awaitable[str]]
"""Queues a message durably and returns its queue id; raises if it could not."""


class RelayStartError(RuntimeError):
    """The relay could not start listening; the message says what to change."""


class Relay:
    """The SMTP relay server; ``await start()``, then ``port`` is the bound port."""

    def __init__(
        self,
        accept: Accept,
        password: str | Callable[[], str],
        *,
        user: str = DEFAULT_USER,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tls_context: ssl.SSLContext | None = None,
        server_name: str = "mailbeacon.localhost",
        timeout: float = 300.0,
        max_sessions: int = MAX_SESSIONS,
        max_auth_failures: int = MAX_AUTH_FAILURES,
        max_auth_failures_per_minute: int = MAX_AUTH_FAILURES_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not is_loopback(host) and tls_context is None:
            raise RelayStartError(
                Phrase(
                    mark(
                        "The relay listens only on a loopback address (127.0.0.1), not {host}, "
                        "unless it is given a TLS certificate. Change relay.host or "
                        "--smtp-listen."
                    ),
                    host=repr(host),
                )
            )
        limits = _LoginLimits(max_auth_failures, max_auth_failures_per_minute, clock)
        self._handler = _RelayHandler(accept, user, password, limits)
        self._max_sessions = max_sessions
        self._host = host
        self._port = port
        self._max_message_bytes = max_message_bytes
        self._tls_context = tls_context
        self._server_name = server_name
        self._timeout = timeout
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[_RelaySMTP] = set()
        self._closed_waiters: list[asyncio.Future[None]] = []

    @property
    def host(self) -> str:
        """The address the relay listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the relay listens on (the real one once started with port 0)."""
        return self._port

    @property
    def active_sessions(self) -> int:
        """Client connections open right now."""
        return len(self._sessions)

    async def wait_no_sessions(self) -> None:
        """Wait until no client is connected (pair with asyncio.timeout)."""
        while self._sessions:
            waiter = asyncio.get_running_loop().create_future()
            self._closed_waiters.append(waiter)
            await waiter

    def _session_closed(self, session: _RelaySMTP) -> None:
        self._sessions.discard(session)
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    async def start(self) -> None:
        """Start listening on the current event loop."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._new_session, self._host, self._port, reuse_address=True
            )
        except OSError as error:
            raise RelayStartError(self._bind_problem(error)) from error
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("relay listening on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Stop listening, let messages being queued finish, close sessions."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self._handler.drain()
        for session in list(self._sessions):
            session.close()
        await server.wait_closed()
        log.info("relay stopped")

    def _bind_problem(self, error: OSError) -> str:
        where = f"{self._host}:{self._port}"
        if error.errno == errno.EADDRINUSE:
            return Phrase(
                mark(
                    "The relay cannot listen on {where}: port {port} is already in use. Choose "
                    "another port with `mailbeacon config set relay.port PORT` (or "
                    "--smtp-listen HOST:PORT) and point the mail client at it."
                ),
                where=where,
                port=self._port,
            )
        if error.errno == errno.EACCES:
            return Phrase(
                mark(
                    "The relay is not allowed to listen on {where} (ports below 1024 need "
                    "privileges). Choose a port above 1024 with relay.port."
                ),
                where=where,
            )
        return Phrase(
            mark("The relay cannot listen on {where}: {error}."),
            where=where,
            error=error.strerror or str(error),
        )

    def _new_session(self) -> _RelaySMTP:
        loopback = is_loopback(self._host)
        session = _RelaySMTP(
            self._handler,
            data_size_limit=self._max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=self._server_name,
            ident="MailBeacon relay",
            tls_context=self._tls_context,
            require_starttls=self._tls_context is not None and not loopback,
            timeout=self._timeout,
            # Plain AUTH is fine on loopback: the password never leaves the machine.
            auth_require_tls=not loopback,
            authenticator=self._handler.authenticate,
            loop=asyncio.get_running_loop(),
        )
        session.on_closed = self._session_closed
        open_now = sum(1 for other in self._sessions if other.refusal is None)
        if open_now >= self._max_sessions:
            # Still a protocol object (asyncio needs one), but it only says 421.
            session.refusal = TOO_MANY_SESSIONS
            log.warning(
                "relay: refused a connection: %d sessions are open already (the limit)",
                open_now,
            )
        self._sessions.add(session)
        return session


class _LoginLimits:
    """Failed logins per session and per client address in the last minute."""

    def __init__(self, per_session: int, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_session = per_session
        self._per_minute = per_minute
        self._clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()

    def _failures(self, address: str) -> deque[float]:
        failures = self._recent.get(address)
        if failures is None:
            return deque()
        cutoff = self._clock() - _WINDOW
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._recent[address]
        return failures

    def locked_out(self, address: str) -> bool:
        """Whether this address failed too often in the last minute."""
        return len(self._failures(address)) >= self._per_minute

    def failed(self, address: str) -> bool:
        """Count a failure; True when the address has just reached the minute's limit."""
        failures = self._recent.setdefault(address, deque())
        failures.append(self._clock())
        self._recent.move_to_end(address)
        while len(self._recent) > _TRACKED_ADDRESSES:
            self._recent.popitem(last=False)
        return len(failures) == self._per_minute


def _address(session: Session) -> str:
    """The client's address without its port (sessions from one client share it)."""
    peer: object = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


class _RelayHandler:
    """aiosmtpd hooks: who may send, which recipients, and what happens on DATA."""

    def __init__(
        self,
        accept: Accept,
        user: str,
        password: str | Callable[[], str],
        limits: _LoginLimits,
    ) -> None:
        self._accept = accept
        self._user = user.encode("utf-8")
        self._password = password
        self._limits = limits
        self._in_flight: set[asyncio.Task[str]] = set()

    def _current_password(self) -> bytes:
        password = self._password() if callable(self._password) else self._password
        return password.encode("utf-8")

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Check user and password in constant time; log refusals without the password.

        Past the failure limits the answer is 421 and the session closes (module
        docstring); while an address is locked out its password is not compared.
        """
        address = _address(session)
        if self._limits.locked_out(address):
            assert isinstance(session, _QuietSession)
            session.close_after_reply = True
            return AuthResult(success=False, handled=False, message=LOCKED_OUT)
        result = self._check(mechanism, session, auth_data)
        if result.success:
            return result
        assert isinstance(session, _QuietSession)
        session.auth_failures += 1
        if self._limits.failed(address):
            log.warning(
                "relay: %d failed logins from %s within a minute; refusing its logins for "
                "a minute", MAX_AUTH_FAILURES_PER_MINUTE, address,
            )
        if session.auth_failures >= self._limits.per_session:
            log.warning(
                "relay: closed a session from %s after %d failed logins",
                address, session.auth_failures,
            )
            session.close_after_reply = True
            return AuthResult(success=False, handled=False, message=TOO_MANY_FAILURES)
        return result

    def _check(self, mechanism: str, session: Session, auth_data: Any) -> AuthResult:
        expected = self._current_password()
        if not isinstance(auth_data, LoginPassword) or not expected:
            log.warning(
                "relay: refused %s login from %s (no relay password set)", mechanism, session.peer
            )
            return AuthResult(success=False, handled=False)
        user_ok = hmac.compare_digest(auth_data.login, self._user)
        password_ok = hmac.compare_digest(auth_data.password, expected)
        if user_ok and password_ok:
            return AuthResult(success=True, auth_data=self._user.decode())
        reason = "wrong password" if user_ok else "unknown user name"
        log.warning("relay: refused %s login from %s (%s)", mechanism, session.peer, reason)
        return AuthResult(success=False, handled=False)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return AUTH_REQUIRED
        if is_control_address(address) and control_of(address) is None:
            return f"550 5.1.1 <{address}>: unknown control address"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert envelope.mail_from is not None
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        decision = decide(envelope.rcpt_tos, raw)
        for note in decision.notes:
            log.info("relay: %s", note)
        if not decision.recipients:
            return "554 5.5.1 No recipients left besides MailBeacon control addresses"
        if decision.refusal is not None:
            # Never sent now instead of later, never without the asked-for reminder.
            log.info("relay: refused a message: %s", decision.refusal)
            return f"554 5.6.0 {_one_line(decision.refusal)}"
        message = IncomingMessage(
            mail_from=envelope.mail_from,
            recipients=decision.recipients,
            data=decision.message,
            track_override=decision.track,
            log_override=decision.log,
            opens_override=decision.opens,
            send_at=decision.send_at,
            remind=decision.remind,
        )
        del raw, decision
        envelope.original_content = envelope.content = None
        # Shielded: a client that disconnects while its message is being queued must
        # not leave half a queue entry. It gets no 250 and will resend: a possible
        # duplicate, never a loss.
        task = asyncio.ensure_future(self._accept(message))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        try:
            queue_id = await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            return TEMPORARY_FAILURE
        return f"250 2.0.0 OK queued as {queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("relay: unexpected error in an SMTP session", exc_info=error)
        return TEMPORARY_FAILURE

    def _finished(self, task: asyncio.Task[str]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "relay: could not queue a message; the client was told to retry",
                exc_info=task.exception(),
            )

    async def drain(self) -> None:
        """Wait for messages being queued right now."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))


def _one_line(text: str) -> str:
    """An SMTP reply text: printable ASCII on one line, bounded."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return clean[:400]


class _QuietSession(Session):
    """aiosmtpd logs a deprecation warning each time it sets login_data itself.

    Also counts the session's failed logins, and says when it must close.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.auth_failures = 0
        self.close_after_reply = False

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _RelaySMTP(SMTP):
    """aiosmtpd's SMTP session with a DATA reader that buffers the message only once."""

    on_closed: Callable[[_RelaySMTP], None] | None = None
    refusal: str | None = None  # set: the session only answers this and closes

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    async def _handle_client(self) -> None:
        if self.refusal is not None:
            await self.push(self.refusal)
            self.close()
            return
        await super()._handle_client()

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        await super().smtp_AUTH(arg)
        session = self.session
        if isinstance(session, _QuietSession) and session.close_after_reply:
            self.close()  # the 421 is already on its way

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self.on_closed is not None:
            self.on_closed(self)

    def close(self) -> None:
        """Close the connection (used when the relay stops)."""
        if self.transport is not None:
            self.transport.close()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, problem = await self._read_data()
        if problem is not None or content is None:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(problem or TEMPORARY_FAILURE)
            return
        self.envelope.content = self.envelope.original_content = content
        del content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def _read_data(self) -> tuple[bytes | None, str | None]:
        """Read DATA up to the lone dot: (message, None) or (None, error reply).

        Like aiosmtpd, an oversized message or line is read to its end before
        the error is answered (RFC 5321 4.2.5), but nothing of it is kept.
        """
        buffer: io.BytesIO | None = io.BytesIO()
        limit = self.data_size_limit
        size = 0
        problem: str | None = None
        in_long_line = False
        while True:
            try:
                line: bytes = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                await self._reader.read(overrun.consumed)
                problem = problem or "500 5.5.2 Line too long (RFC 5321 allows 1000 bytes)"
                buffer = None
                in_long_line = True
                continue
            if in_long_line:
                in_long_line = False
                continue
            if line == b".\r\n":
                break
            size += len(line)
            if limit and size > limit and problem is None:
                problem = "552 5.3.4 Message size exceeds the relay's limit"
                buffer = None
            if buffer is not None:
                buffer.write(line[1:] if line[:1] == b"." else line)
        if buffer is None:
            return None, problem
        # getvalue() hands over the buffer itself (no copy) when nothing else uses it.
        return buffer.getvalue(), None
