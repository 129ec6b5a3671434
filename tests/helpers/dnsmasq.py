"""A real dnsmasq on a loopback port answering only the records a test gives it.

Everything else is NXDOMAIN (``--local=/#/``, no upstream, no ``/etc/hosts``), so
discovery under test never leaves the machine. :func:`silent_nameserver` is the
opposite: a UDP port that is bound (no "port unreachable") and never answers, as a
dead name server looks to a client.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.message
import dns.query

from tests.helpers import programs
from tests.helpers.net import free_port

START_SECONDS = 10.0


@dataclass(frozen=True)
class Srv:
    """One SRV record; ``target=None`` is the "." target (service not offered)."""

    name: str  # "_submission._tcp.example.test"
    target: str | None = None
    port: int = 0
    priority: int = 0
    weight: int = 0

    def option(self) -> str:
        """The ``--srv-host`` option for this record."""
        if self.target is None:
            return f"--srv-host={self.name}"
        return f"--srv-host={self.name},{self.target},{self.port},{self.priority},{self.weight}"


@dataclass(frozen=True)
class Zone:
    """The records to serve: MX ``(domain, host, preference)``, SRV, and ``name → IP``."""

    mx: Sequence[tuple[str, str, int]] = ()
    srv: Sequence[Srv] = ()
    hosts: Mapping[str, str] = field(default_factory=dict)

    def options(self) -> list[str]:
        """dnsmasq's command-line options for the records."""
        return [
            *(f"--mx-host={domain},{host},{pref}" for domain, host, pref in self.mx),
            *(record.option() for record in self.srv),
            *(f"--host-record={name},{ip}" for name, ip in self.hosts.items()),
        ]


@dataclass(frozen=True)
class Nameserver:
    """Where a name server listens (a real dnsmasq, or a silent port)."""

    address: str
    port: int

    @property
    def env(self) -> str:
        """The ``MAILBEACON_NAMESERVER`` value pointing at it."""
        return f"{self.address}:{self.port}"

    def resolver(self, lifetime: float = 1.0) -> dns.asyncresolver.Resolver:
        """A dnspython resolver asking only this server."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [self.address]
        resolver.port = self.port
        resolver.timeout = lifetime
        resolver.lifetime = lifetime
        return resolver


@contextlib.contextmanager
def running_dnsmasq(zone: Zone, log: Path) -> Iterator[Nameserver]:
    """dnsmasq on 127.0.0.1 serving ``zone`` for the block; its output goes to ``log``."""
    binary = programs.path_of("dnsmasq")
    server = Nameserver("127.0.0.1", free_port())
    argv = [
        binary, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
        f"--port={server.port}", f"--listen-address={server.address}", "--bind-interfaces",
        "--no-resolv", "--no-hosts", "--no-poll", "--local=/#/", "--log-facility=-",
        *zone.options(),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        _wait_answering(server, proc, log)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_answering(server: Nameserver, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until dnsmasq answers a query (NXDOMAIN counts), bounded."""
    query = dns.message.make_query("ready.invalid", "A")
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("dnsmasq exited:\n" + log.read_text(errors="replace"))
        try:
            dns.query.udp(query, server.address, port=server.port, timeout=0.2)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.02)  # bounded retry while dnsmasq binds; nothing to wait on
    raise AssertionError("dnsmasq did not answer:\n" + log.read_text(errors="replace"))


@contextlib.contextmanager
def silent_nameserver(address: str = "127.0.0.1") -> Iterator[Nameserver]:
    """A bound UDP port that swallows every query: a dead name server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        yield Nameserver(address, int(sock.getsockname()[1]))
