"""A real SMTP sink for tests: aiosmtpd on a free loopback port, in its own thread.

    with SmtpSink() as sink:                       # or sink.start() / sink.stop()
        ... deliver to 127.0.0.1:sink.port ...
        got = sink.wait_for(3, timeout=10)   # blocks; async: await sink.until(3, within=10)
        got[0].mail_from, got[0].rcpt_tos, got[0].data, got[0].message_id

    sink.fail("451 4.3.0 Try later", times=2)      # next 2 DATA answered 451, then OK again
    sink.fail("421 4.3.2 Shutting down", stage="MAIL")   # every MAIL until sink.fail_clear()
    sink.refuse("bad@y.example", "550 5.1.1 No such user")
    sink.handler.data_delay = 0.02                 # a slow upstream
    SmtpSink(user="u", password="p")               # requires AUTH (PLAIN/LOGIN, no TLS needed)
    SmtpSink(tls=TestTLS.make(tmp_path), starttls=True | implicit_tls=True)

Waiting never sleeps: it blocks on a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class ReceivedEnvelope:
    """One message as the sink got it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()

    @property
    def message_id(self) -> str | None:
        """The Message-ID header, if any."""
        value = BytesHeaderParser().parsebytes(self.data).get("Message-ID")
        return str(value).strip() if value is not None else None


@dataclass
class _Failure:
    reply: str
    stage: str
    times: int | None  # None: until cleared


@dataclass
class SinkHandler:
    """aiosmtpd handler that stores envelopes and can be told to refuse."""

    user: str | None = None
    password: str | None = None
    received: list[ReceivedEnvelope] = field(default_factory=list)
    failed_logins: int = 0
    transactions: int = 0
    ehlos: int = 0  # one per plain session (two with STARTTLS)
    data_delay: float = 0.0  # a slow server: seconds before answering each DATA
    failures: list[_Failure] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _failing(self, stage: str) -> str | None:
        with self.cond:
            for failure in self.failures:
                if failure.stage != stage:
                    continue
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure.reply
        return None

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        )
        if not ok:
            with self.cond:
                self.failed_logins += 1
        return AuthResult(success=ok, handled=False)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        with self.cond:
            self.ehlos += 1
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.user is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        failing = self._failing("MAIL")
        if failing:
            return failing
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.cond:
            refused = self.refused.get(address.lower())
        if refused:
            return refused
        failing = self._failing("RCPT")
        if failing:
            return failing
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.cond:
            self.transactions += 1
        failing = self._failing("DATA")
        if failing:
            return failing
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # simulated slowness, not synchronisation
        assert envelope.mail_from is not None
        content = envelope.original_content
        assert isinstance(content, bytes)
        got = ReceivedEnvelope(
            envelope.mail_from, tuple(envelope.rcpt_tos), content, tuple(envelope.mail_options)
        )
        with self.cond:
            self.received.append(got)
            self.cond.notify_all()
        return "250 2.0.0 OK stored"


class _FreePortController(Controller):
    """aiosmtpd's Controller, allowed to bind port 0 and report the port it got."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class TestTLS:
    """A throwaway CA-less self-signed certificate for 127.0.0.1 / localhost."""

    __test__ = False  # not a pytest test class

    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> TestTLS:
        """Write a fresh certificate and key into ``folder``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "sink-cert.pem", folder / "sink-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cls(cert_path, key_path)

    def server_context(self) -> ssl.SSLContext:
        """The sink's side."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))


class SmtpSink:
    """A running aiosmtpd sink on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str | None = None,
        password: str | None = None,
        tls: TestTLS | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        data_size_limit: int = 64 * 1024 * 1024,
    ) -> None:
        self.handler = SinkHandler(user=user, password=password)
        kwargs: dict[str, Any] = {
            "data_size_limit": data_size_limit,
            "authenticator": self.handler.authenticate,
            "auth_require_tls": starttls,
            "server_hostname": "sink.localhost",
        }
        if tls is not None and starttls:
            kwargs["tls_context"] = tls.server_context()
            kwargs["require_starttls"] = True
        ssl_context = tls.server_context() if tls is not None and implicit_tls else None
        self._controller = _FreePortController(
            self.handler, hostname=host, port=port, ssl_context=ssl_context, **kwargs
        )
        self.host = host
        self._running = False

    @property
    def port(self) -> int:
        """The port the sink listens on."""
        return int(self._controller.port)

    def start(self) -> SmtpSink:
        """Start the sink thread; returns self."""
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop the sink and free its port (again: no-op)."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def received(self) -> list[ReceivedEnvelope]:
        """A snapshot of what arrived so far."""
        with self.handler.cond:
            return list(self.handler.received)

    def fail(self, reply: str, *, times: int | None = None, stage: str = "DATA") -> None:
        """Answer ``reply`` at MAIL, RCPT or DATA, ``times`` times (None: until cleared)."""
        assert stage in {"MAIL", "RCPT", "DATA"}
        with self.handler.cond:
            self.handler.failures.append(_Failure(reply, stage, times))

    def fail_clear(self) -> None:
        """Stop failing."""
        with self.handler.cond:
            self.handler.failures.clear()

    def refuse(self, recipient: str, reply: str = "550 5.1.1 No such user") -> None:
        """Refuse one recipient at RCPT."""
        with self.handler.cond:
            self.handler.refused[recipient.lower()] = reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedEnvelope]:
        """Block until at least ``count`` messages arrived; AssertionError on timeout."""
        with self.handler.cond:
            arrived = self.handler.cond.wait_for(
                lambda: len(self.handler.received) >= count, timeout
            )
            got = list(self.handler.received)
        assert arrived, f"sink got {len(got)} of {count} messages within {timeout}s"
        return got

    async def until(self, count: int, within: float = 10.0) -> list[ReceivedEnvelope]:
        """``wait_for`` for async tests (waits in a worker thread)."""
        return await asyncio.to_thread(self.wait_for, count, within)

    def messages_by_id(self) -> dict[str, list[ReceivedEnvelope]]:
        """Received messages grouped by Message-ID (to spot duplicates)."""
        grouped: dict[str, list[ReceivedEnvelope]] = {}
        for got in self.received:
            grouped.setdefault(got.message_id or "", []).append(got)
        return grouped
