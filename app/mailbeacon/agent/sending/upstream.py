"""The upstream SMTP server the outbox delivers to (the rep's real mail provider).

``--upstream`` URLs:

* ``smtps://host[:465]`` — TLS from the first byte;
* ``smtp+starttls://host[:587]`` — plain connect, then STARTTLS (required);
* ``smtp://host[:25]`` — no TLS at all: only to this machine (loopback), unless
  the rep explicitly allowed it (``upstream.allow_plain``), because the
  password and every message would cross the network in the clear.

User and password come from an injected credentials source (the agent passes
the keyring or ``MAILBEACON_UPSTREAM_USER``/``_PASSWORD``); a user name in the
URL is used when the source has none. Passwords never go in URLs. The URL itself
is parsed in :mod:`mailbeacon.agent.settings.mail_urls`.

Credentials with a bearer source log in with an OAuth access token instead
(SASL OAUTHBEARER or XOAUTH2, :mod:`mailbeacon.core.sasl`): a refused token is
invalidated and a fresh one tried once; a sign-in the provider no longer
accepts keeps mail waiting in the outbox until the rep signs in again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiosmtplib

from mailbeacon.agent.account.bearer import BearerSource, SignInRequired
from mailbeacon.agent.sending.outbox_items import (
    DeliveryError,
    MessageBytes,
    MessageSource,
    SendResult,
)
from mailbeacon.agent.settings.mail_urls import (
    UpstreamURL,
)
from mailbeacon.core import sasl
from mailbeacon.core.language import Phrase, mark

__all__ = [
    "Credentials",
    "CredentialsSource",
    "DotStuffer",
    "Upstream",
    "UpstreamCheck",
]

log = logging.getLogger(__name__)

_AUTH_CODES = frozenset({530, 534, 535, 538})
_MAX_COMMAND_LINE = 512  # RFC 5321 4.5.3.1.4; a longer AUTH sends its response after 334
_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Upstream login; the password never shows in repr or logs.

    With ``bearer`` the login is by access token (its ``user`` is the login
    name) and ``password`` is not used.
    """

    user: str
    password: str = field(default="", repr=False)
    bearer: BearerSource | None = field(default=None, repr=False, compare=False)


CredentialsSource = Callable[[], Credentials | None]


@dataclass(frozen=True, slots=True)
class UpstreamCheck:
    """Result of "Test upstream": ok, and a sentence for the rep."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class _Mail:
    """One message to send: its envelope and its bytes."""

    mail_from: str
    recipients: Sequence[str]
    message: MessageSource


class Upstream:
    """Sends to the upstream server over one reused, authenticated connection."""

    def __init__(
        self,
        url: UpstreamURL,
        credentials: CredentialsSource,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 60.0,
        local_hostname: str | None = None,
        idle_close: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._credentials = credentials
        self._tls_context = tls_context
        self._timeout = timeout
        self._local_hostname = local_hostname or socket.gethostname() or "localhost"
        self._idle_close = idle_close
        self._clock = clock
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()

    @property
    def url(self) -> UpstreamURL:
        """Where this sends to."""
        return self._url

    async def test_connection(self) -> UpstreamCheck:
        """Connect and log in once, for the settings dialog's "Test upstream"."""
        try:
            client = await self._connect()
        except DeliveryError as error:
            return UpstreamCheck(False, error.reply)
        await _goodbye(client)
        return UpstreamCheck(
            True, Phrase(mark("Connected to {server} and logged in."), server=str(self._url))
        )

    async def send(
        self, mail_from: str, recipients: Sequence[str], message: MessageSource | bytes
    ) -> SendResult:
        """Send one message; DeliveryError when no recipient took it."""
        source = MessageBytes(message) if isinstance(message, bytes) else message
        mail = _Mail(mail_from, recipients, source)
        async with self._lock:
            reused = self._client is not None and self._fresh()
            client = await self._client_for_send()
            try:
                return await self._transaction(client, mail)
            except aiosmtplib.SMTPServerDisconnected:
                await self._drop()
                if not reused:
                    raise DeliveryError(self._closed(), connection=True) from None
            # A reused connection the server had closed while idle: once more, fresh.
            client = await self._client_for_send()
            try:
                return await self._transaction(client, mail)
            except aiosmtplib.SMTPServerDisconnected:
                await self._drop()
                raise DeliveryError(self._closed(), connection=True) from None

    async def close(self) -> None:
        """Say goodbye to the upstream, if connected."""
        async with self._lock:
            client, self._client = self._client, None
            if client is None:
                return
            await _goodbye(client)

    def _closed(self) -> str:
        return Phrase(mark("{server} closed the connection"), server=str(self._url))

    def _fresh(self) -> bool:
        return self._clock() - self._last_used < self._idle_close

    async def _client_for_send(self) -> aiosmtplib.SMTP:
        if self._client is not None and not (self._client.is_connected and self._fresh()):
            await self._drop()
        if self._client is None:
            self._client = await self._connect()
        return self._client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _discard(client)

    async def _transaction(self, client: aiosmtplib.SMTP, mail: _Mail) -> SendResult:
        """MAIL, RCPT, DATA; maps the upstream's answers to SendResult or DeliveryError."""
        try:
            result = await self._envelope_and_data(client, mail)
        except aiosmtplib.SMTPServerDisconnected:
            raise
        except aiosmtplib.SMTPResponseException as error:
            await self._reset(client, error.code)
            # "Log in first" is our configuration, not the message: keep it and retry.
            login_problem = error.code in _AUTH_CODES
            raise DeliveryError(
                _refused(error.code, error.message, login_problem),
                code=error.code,
                permanent=error.code >= 500 and not login_problem,
                connection=error.code == 421 or login_problem,
            ) from error
        except aiosmtplib.SMTPNotSupported as error:
            await self._reset(client, None)
            raise DeliveryError(
                Phrase(
                    mark("{server} cannot take this message: {error}"),
                    server=str(self._url),
                    error=getattr(error, "message", None) or str(error),
                ),
                permanent=True,
            ) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self._drop()
            raise DeliveryError(
                Phrase(
                    mark("Sending to {server} failed: {error}"),
                    server=str(self._url),
                    error=str(error) or type(error).__name__,
                ),
                connection=True,
            ) from error
        self._last_used = self._clock()
        return result

    async def _envelope_and_data(self, client: aiosmtplib.SMTP, mail: _Mail) -> SendResult:
        mail_from, recipients, message = mail.mail_from, mail.recipients, mail.message
        utf8 = not all(a.isascii() for a in (mail_from, *recipients))
        encoding = "utf-8" if utf8 else "ascii"
        if utf8 and not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                Phrase(mark("the server does not accept non-ASCII addresses (SMTPUTF8)"))
            )
        options = ["SMTPUTF8"] if utf8 else []
        if client.supports_extension("size"):
            options.append(f"SIZE={message.size}")
        if message.eight_bit and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        await client.mail(mail_from, options=options, encoding=encoding)
        refused: dict[str, tuple[int, str]] = {}
        for recipient in recipients:
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as error:
                refused[recipient] = (error.code, error.message)
        if len(refused) == len(recipients):
            await self._reset(client, None)
            return SendResult(refused, "")
        return SendResult(refused, await self._data(client, message))

    async def _data(self, client: aiosmtplib.SMTP, message: MessageSource) -> str:
        """DATA, streamed from the message source: memory stays at one chunk.

        aiosmtplib's own data() wants the whole message and copies it several
        times (line endings, dot-stuffing, terminator, transport buffer); for a
        25 MB attachment that is ~200 MB. We use its session for everything
        else and write the body ourselves with its flow control.
        """
        protocol = client.protocol
        drain = getattr(protocol, "_drain_helper", None)
        if protocol is None or drain is None:
            return (await client.data(await message.read())).message  # older aiosmtplib
        start = await client.execute_command(b"DATA")
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        stuffer = DotStuffer()
        async for chunk in message.chunks():
            protocol.write(stuffer.feed(chunk))
            async with asyncio.timeout(self._timeout):
                await drain()
        protocol.write(stuffer.finish())
        end = await client.execute_command(b".")
        if end.code != 250:
            raise aiosmtplib.SMTPDataError(end.code, end.message)
        return end.message

    async def _reset(self, client: aiosmtplib.SMTP, code: int | None) -> None:
        """Clear the half-done transaction so the connection can be reused."""
        if code == 421 or not client.is_connected:
            await self._drop()
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self._drop()

    async def _connect(self) -> aiosmtplib.SMTP:
        """An open, authenticated connection; DeliveryError(connection=True) if not."""
        url = self._url
        where = f"{url.host}:{url.port}"
        client = aiosmtplib.SMTP(
            hostname=url.host,
            port=url.port,
            use_tls=url.security == "tls",
            start_tls=url.security == "starttls",
            tls_context=self._tls_context if url.security != "plain" else None,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
            # Extensions (SIZE, 8BITMIME, SMTPUTF8, AUTH) are known only after EHLO.
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            await self._login(client)
        except (aiosmtplib.SMTPException, OSError, DeliveryError) as error:
            await _discard(client)
            if isinstance(error, DeliveryError):
                raise
            raise self._explain(where, error) from error
        self._last_used = self._clock()
        return client

    def _explain(self, where: str, error: Exception) -> DeliveryError:
        """A failed connection or login, in words the rep can act on."""
        code = error.code if isinstance(error, aiosmtplib.SMTPResponseException) else None
        if isinstance(error, aiosmtplib.SMTPAuthenticationError):
            message: str = Phrase(
                mark(
                    "{where} refused the user name or password ({code} {reply}). Check the "
                    "upstream user and password in the settings."
                ),
                where=where,
                code=error.code,
                reply=error.message,
            )
        elif isinstance(error, ssl.SSLError | ssl.CertificateError):
            message = _tls_problem(where, error)
        elif isinstance(error, aiosmtplib.SMTPReadTimeoutError):
            message = Phrase(
                mark("{where} did not answer within {seconds}s."),
                where=where,
                seconds=f"{self._timeout:g}",
            )
        elif isinstance(error, aiosmtplib.SMTPConnectError | OSError):
            message = _connect_problem(where, error)
        elif isinstance(error, aiosmtplib.SMTPResponseException):
            message = Phrase(
                mark("{where} refused the session: {code} {reply}"),
                where=where,
                code=error.code,
                reply=error.message,
            )
        else:
            message = self._session_problem(where, error)
        return DeliveryError(message, code=code, connection=True)

    def _session_problem(self, where: str, error: Exception) -> str:
        if self._url.security == "starttls" and "starttls" in str(error).lower():
            return Phrase(
                mark(
                    "{where} does not offer STARTTLS. Check the port, or use smtps:// if the "
                    "server expects TLS from the start (usually port 465)."
                ),
                where=where,
            )
        return Phrase(mark("The session with {where} failed: {error}"), where=where, error=error)

    async def _login(self, client: aiosmtplib.SMTP) -> None:
        creds = self._credentials()
        if creds is not None and creds.bearer is not None:
            await _TokenLogin(client, creds.bearer, self._url, self._timeout).run()
            return
        user = creds.user if creds and creds.user else self._url.user
        if creds is None or not creds.password:
            if user:
                raise DeliveryError(
                    Phrase(
                        mark(
                            "No upstream password for {user}: set it in the settings (it is "
                            "kept in the keyring) or MAILBEACON_UPSTREAM_PASSWORD."
                        ),
                        user=repr(user),
                    ),
                    connection=True,
                )
            return
        if not client.supports_extension("auth"):
            where = f"{self._url.host}:{self._url.port}"
            no_login = (
                mark(
                    "{where} does not offer a login (SMTP AUTH) before STARTTLS; use "
                    "smtp+starttls:// or smtps://."
                )
                if self._url.security == "plain"
                else mark("{where} does not offer a login (SMTP AUTH).")
            )
            raise DeliveryError(Phrase(no_login, where=where), connection=True)
        await client.login(user or "", creds.password)


class _TokenLogin:
    """SMTP AUTH with an access token (RFC 4954 + RFC 7628); one retry with a fresh token.

    aiosmtplib has XOAUTH2 only, without OAUTHBEARER or the error challenge, so
    the exchange is spoken here over its ``execute_command``.
    """

    def __init__(
        self, client: aiosmtplib.SMTP, source: BearerSource, url: UpstreamURL, timeout: float
    ) -> None:
        self._client = client
        self._source = source
        self._url = url
        self._where = f"{url.host}:{url.port}"
        self._timeout = timeout

    async def run(self) -> None:
        """Log in, or raise DeliveryError(connection=True): mail waits, never bounces."""
        user = self._source.user
        mechanism = sasl.choose_mechanism(self._client.server_auth_methods)
        if not self._client.supports_extension("auth") or mechanism is None:
            raise DeliveryError(
                Phrase(
                    mark(
                        "{where} does not offer a sign-in with a token (XOAUTH2 or "
                        "OAUTHBEARER); use a password for this server instead."
                    ),
                    where=self._where,
                ),
                connection=True,
            )
        last = sasl.BearerRefusal("")
        for attempt in (1, 2):
            token = await self._token()
            refusal = await self._exchange(mechanism, user, token)
            if refusal is None:
                return
            last = refusal
            # An expired or revoked token: the source fetches a fresh one next time.
            self._source.invalidate(token)
            log.warning(
                "%s refused the %s token for %s (attempt %d of 2): %s",
                self._where, mechanism, user, attempt, refusal.describe(),
            )  # fmt: skip
        raise DeliveryError(
            Phrase(
                mark(
                    "{where} refused the sign-in for {user} ({reason}). Sign in again with the "
                    "account {user} in the settings; mail waits in the outbox meanwhile."
                ),
                where=self._where,
                user=user,
                reason=last.describe(),
            ),
            code=535,
            connection=True,
        )

    async def _token(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._source.token()
        except SignInRequired as error:
            raise DeliveryError(sign_in_again(self._source.user, error), connection=True) from None
        except TimeoutError:
            raise DeliveryError(
                Phrase(
                    mark(
                        "No sign-in token for {user} within {seconds}s (the sign-in provider "
                        "did not answer); mail waits in the outbox."
                    ),
                    user=self._source.user,
                    seconds=f"{self._timeout:g}",
                ),
                connection=True,
            ) from None

    async def _exchange(
        self, mechanism: sasl.Mechanism, user: str, token: str
    ) -> sasl.BearerRefusal | None:
        """One AUTH exchange; None when logged in, else what the server said."""
        try:
            initial = sasl.initial_response(mechanism, user, token, self._url.host, self._url.port)
        except ValueError as error:
            raise DeliveryError(
                Phrase(
                    mark(
                        "The sign-in for {user} cannot be used ({error}); sign in again in the "
                        "settings."
                    ),
                    user=user,
                    error=error,
                ),
                connection=True,
            ) from None
        response = sasl.encode(initial)
        command = (b"AUTH", mechanism.encode(), response.encode())
        if sum(len(word) + 1 for word in command) + 1 > _MAX_COMMAND_LINE:
            reply = await self._client.execute_command(b"AUTH", mechanism.encode())
            if reply.code == 334:
                reply = await self._client.execute_command(response.encode())
        else:
            reply = await self._client.execute_command(*command)
        refusal = sasl.BearerRefusal("")
        if reply.code == 334:  # the error challenge: answer it, the server then fails
            refusal = sasl.parse_refusal(reply.message)
            reply = await self._client.execute_command(
                sasl.encode(sasl.error_reply(mechanism)).encode()
            )
        if reply.code == 235:
            return None
        if reply.code == 535:
            return refusal
        raise DeliveryError(
            Phrase(
                mark(
                    "{where} could not check the sign-in for {user} just now ({code} {reply}); "
                    "sending is retried later."
                ),
                where=self._where,
                user=user,
                code=reply.code,
                reply=reply.message,
            ),
            code=reply.code,
            connection=True,
        )


def sign_in_again(user: str, error: SignInRequired) -> str:
    """What the rep reads when the provider no longer accepts the saved sign-in."""
    if error.reason:
        return Phrase(
            mark(
                "Sign in again with the account {user} in the settings: the saved sign-in is "
                "no longer accepted ({reason}). Mail waits in the outbox until then."
            ),
            user=user,
            reason=error.reason,  # the why alone: this sentence already says sign in again
        )
    return Phrase(
        mark(
            "Sign in again with the account {user} in the settings: the saved sign-in is "
            "no longer accepted. Mail waits in the outbox until then."
        ),
        user=user,
    )


async def _discard(client: aiosmtplib.SMTP) -> None:
    """Drop a connection now, and let its socket really close.

    abort(), not close(): a TLS close() first runs a shutdown exchange with the
    server that can take many loop iterations (up to 30 s), and a socket whose
    loop stopped meanwhile lingers until garbage collection. After QUIT or an
    error there is nothing left to say. asyncio closes the socket on the next
    loop iteration, hence the one yield.
    """
    transport = client.transport
    client.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    await asyncio.sleep(0)


async def _goodbye(client: aiosmtplib.SMTP) -> None:
    """QUIT politely if the server still listens, then drop the connection."""
    transport = client.transport
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit(timeout=5)
    client.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    await asyncio.sleep(0)


def _refused(code: int, reply: str, login_problem: bool) -> str:
    """The upstream's refusal as it came; with what to check when it asks for a login."""
    if not login_problem:
        return f"{code} {reply}"
    return Phrase(
        mark("{code} {reply} (check the upstream user and password)"), code=code, reply=reply
    )


def _tls_problem(where: str, error: Exception) -> str:
    reason = getattr(error, "verify_message", None) or getattr(error, "reason", None) or error
    return Phrase(
        mark(
            "TLS with {where} failed ({reason}). Check the port and scheme (smtps:// for 465, "
            "smtp+starttls:// for 587) and that the server's certificate is valid for this "
            "name."
        ),
        where=where,
        reason=reason,
    )


def _connect_problem(where: str, error: Exception) -> str:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return Phrase(
                mark("The upstream server name in {where} cannot be found (DNS)."), where=where
            )
        if isinstance(cause, ConnectionRefusedError):
            return Phrase(
                mark("Cannot reach {where}: connection refused (nothing listens on that port)."),
                where=where,
            )
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return _tls_problem(where, cause)
        cause = cause.__cause__ or cause.__context__
    return Phrase(mark("Cannot reach {where}: {error}."), where=where, error=error)


class DotStuffer:
    """Turns message bytes into DATA content, piece by piece (RFC 5321 4.5.2).

    Bare CR and LF become CRLF, a dot starting a line is doubled, and
    ``finish()`` ends the content with CRLF (the caller then sends the lone
    dot). Pieces may split a CRLF or a line anywhere.
    """

    def __init__(self) -> None:
        self._line_start = True
        self._held_cr = False

    def feed(self, chunk: bytes) -> bytes:
        """DATA bytes for the next piece of the message."""
        if self._held_cr:
            chunk = b"\r" + chunk
        # A trailing CR may be the first half of a CRLF: wait for the next piece.
        self._held_cr = chunk.endswith(b"\r")
        if self._held_cr:
            chunk = chunk[:-1]
        if not chunk:
            return b""
        out = _LINE_ENDINGS.sub(b"\r\n", chunk).replace(b"\n.", b"\n..")
        if self._line_start and out.startswith(b"."):
            out = b"." + out
        self._line_start = out.endswith(b"\n")
        return out

    def finish(self) -> bytes:
        """The end of the content: a held CR as a line end, and a final CRLF if missing."""
        if self._held_cr:
            self._held_cr = False
            self._line_start = True
            return b"\r\n"
        return b"" if self._line_start else b"\r\n"
