"""The last resort of discovery: knock on the usual mail servers of a domain.

``smtp.<domain>`` and ``mail.<domain>`` on 465 (TLS) and 587 (STARTTLS),
``imap.<domain>`` and ``mail.<domain>`` on 993 (TLS) and 143 (STARTTLS): every
candidate at once, each connect bounded, the whole probe bounded. A candidate counts
only when it greets as the right protocol and its certificate is valid for the name
(for STARTTLS ports after the upgrade): a server the rep's mail client would refuse is
no answer. Implicit TLS wins over STARTTLS (RFC 8314), then the order listed.

Host names are looked up through discovery's resolver (:func:`first_address`), so
tests decide where ``smtp.example.test`` is; the ports are constructor arguments
for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import dns.asyncresolver
import dns.exception

from mailbeacon.agent.account.model import Security, ServerSetting

log = logging.getLogger(__name__)
T = TypeVar("T")

Ports = tuple[tuple[int, Security], ...]
SMTP_PORTS: Ports = ((465, Security.TLS), (587, Security.STARTTLS))
IMAP_PORTS: Ports = ((993, Security.TLS), (143, Security.STARTTLS))
SMTP_HOSTS = ("smtp", "mail")
IMAP_HOSTS = ("imap", "mail")
CLOSE_SECONDS = 0.5
MAX_LINES = 64  # an EHLO or CAPABILITY answer longer than this is not a mail server's


async def first_address(
    resolver: dns.asyncresolver.Resolver, name: str, budget: float
) -> str | None:
    """The first IPv4 (else IPv6) address of ``name`` within ``budget`` seconds; None when
    it has none (or the name server does not answer in time)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(name))
    loop = asyncio.get_running_loop()
    end = loop.time() + budget
    for rdtype in ("A", "AAAA"):
        left = end - loop.time()
        if left <= 0:
            return None
        try:
            answer = await resolver.resolve(name, rdtype, lifetime=left)
        except dns.exception.DNSException as error:
            log.debug("no %s record for %s: %s", rdtype, name, error)
            continue
        for record in answer:
            return str(record.address)
    return None


@dataclass(frozen=True, slots=True)
class Probed:
    """The servers that answered: SMTP always, IMAP when one did."""

    smtp: ServerSetting
    imap: ServerSetting | None


@dataclass(frozen=True, slots=True)
class _Candidate:
    protocol: str  # "smtp" or "imap"
    setting: ServerSetting


class Probe:
    """Connects to a domain's likely mail servers; see the module docstring."""

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        *,
        ssl_context: ssl.SSLContext | None = None,
        smtp_ports: Ports = SMTP_PORTS,
        imap_ports: Ports = IMAP_PORTS,
        connect_timeout: float = 2.5,
    ) -> None:
        self._resolver = resolver
        self._ssl = ssl_context or ssl.create_default_context()
        self._smtp_ports = smtp_ports
        self._imap_ports = imap_ports
        self._connect_timeout = connect_timeout

    def candidates(self, domain: str) -> list[tuple[str, ServerSetting]]:
        """``(protocol, server)`` pairs in order of preference."""
        found = []
        for protocol, hosts, ports in (
            ("smtp", SMTP_HOSTS, self._smtp_ports),
            ("imap", IMAP_HOSTS, self._imap_ports),
        ):
            for port, security in sorted(ports, key=lambda p: p[1] is not Security.TLS):
                for prefix in hosts:
                    found.append((protocol, ServerSetting(f"{prefix}.{domain}", port, security)))
        return found

    async def find(self, domain: str, budget: float) -> Probed | None:
        """The best SMTP (and IMAP) server of ``domain`` that answers within ``budget`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + budget
        candidates = [_Candidate(p, s) for p, s in self.candidates(domain)]
        hosts = sorted({c.setting.host for c in candidates})
        addresses = await _bounded_all(
            [first_address(self._resolver, host, budget) for host in hosts], budget
        )
        where = dict(zip(hosts, addresses, strict=True))
        budget = min(self._connect_timeout, max(end - loop.time(), 0.0))
        answers = await _bounded_all(
            [self._check(c, where.get(c.setting.host)) for c in candidates], budget
        )
        good = [c for c, ok in zip(candidates, answers, strict=True) if ok]
        smtp = next((c.setting for c in good if c.protocol == "smtp"), None)
        imap = next((c.setting for c in good if c.protocol == "imap"), None)
        return Probed(smtp, imap) if smtp is not None else None

    async def _check(self, candidate: _Candidate, address: str | None) -> bool:
        if address is None:
            return False
        setting = candidate.setting
        talk = _smtp if candidate.protocol == "smtp" else _imap
        try:
            await talk(address, setting, self._ssl)
        except (OSError, ssl.SSLError, EOFError, ValueError, asyncio.IncompleteReadError) as error:
            log.debug("probe %s:%s: %s", setting.host, setting.port, error)
            return False
        log.info("probe: %s answers on %s:%s", candidate.protocol, setting.host, setting.port)
        return True


async def _bounded_all(calls: list[Awaitable[T]], budget: float) -> list[T | None]:
    """Each call's result, None for those not done within ``budget`` seconds.

    The calls still running then are cancelled and awaited, also when the caller itself
    is cancelled: no connection outlives the probe.
    """
    tasks = [asyncio.ensure_future(call) for call in calls]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, timeout=budget)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [None if t.cancelled() or t.exception() else t.result() for t in tasks]


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(address: str, setting: ServerSetting, context: ssl.SSLContext) -> Streams:
    if setting.security is Security.TLS:
        return await asyncio.open_connection(
            address, setting.port, ssl=context, server_hostname=setting.host
        )
    return await asyncio.open_connection(address, setting.port)


async def _line(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    if not line:
        raise EOFError("the server closed the connection")
    return line.decode("ascii", "replace").rstrip("\r\n")


async def _smtp_reply(reader: asyncio.StreamReader, code: str) -> list[str]:
    """The lines of one (multi-line) SMTP reply; ValueError unless its code is ``code``."""
    lines: list[str] = []
    for _ in range(MAX_LINES):
        line = await _line(reader)
        if not line.startswith(code):
            raise ValueError(f"expected {code}, got {line[:80]!r}")
        lines.append(line[4:])
        if line[3:4] != "-":
            return lines
    raise ValueError("reply too long")


async def _imap_until(reader: asyncio.StreamReader, tag: str) -> list[str]:
    """The lines up to the tagged answer ``tag``; ValueError unless it is OK."""
    lines: list[str] = []
    for _ in range(MAX_LINES):
        line = await _line(reader)
        if line.startswith(f"{tag} "):
            if not line.startswith(f"{tag} OK"):
                raise ValueError(f"{tag} refused: {line[:80]!r}")
            return lines
        lines.append(line)
    raise ValueError("answer too long")


async def _smtp(address: str, setting: ServerSetting, context: ssl.SSLContext) -> None:
    """Greeting (and, on a STARTTLS port, EHLO, STARTTLS and the upgrade), then QUIT."""
    reader, writer = await _open(address, setting, context)
    try:
        await _smtp_reply(reader, "220")
        if setting.security is Security.STARTTLS:
            writer.write(b"EHLO mailbeacon.invalid\r\n")
            features = await _smtp_reply(reader, "250")
            if not any(f.upper().startswith("STARTTLS") for f in features):
                raise ValueError("STARTTLS not offered")
            writer.write(b"STARTTLS\r\n")
            await _smtp_reply(reader, "220")
            await writer.start_tls(context, server_hostname=setting.host)
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        await _close(writer)


async def _imap(address: str, setting: ServerSetting, context: ssl.SSLContext) -> None:
    """Greeting (and, on a STARTTLS port, CAPABILITY, STARTTLS and the upgrade), then LOGOUT."""
    reader, writer = await _open(address, setting, context)
    try:
        greeting = await _line(reader)
        if not greeting.startswith(("* OK", "* PREAUTH")):
            raise ValueError(f"not an IMAP greeting: {greeting[:80]!r}")
        if setting.security is Security.STARTTLS:
            writer.write(b"a1 CAPABILITY\r\n")
            capabilities = " ".join(await _imap_until(reader, "a1")).upper().split()
            if "STARTTLS" not in capabilities:
                raise ValueError("STARTTLS not offered")
            writer.write(b"a2 STARTTLS\r\n")
            await _imap_until(reader, "a2")
            await writer.start_tls(context, server_hostname=setting.host)
        writer.write(b"a3 LOGOUT\r\n")
        await writer.drain()
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close politely, but never wait long: a silent peer would hold a TLS close."""
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await writer.wait_closed()
    except (OSError, ssl.SSLError, TimeoutError):
        writer.transport.abort()
