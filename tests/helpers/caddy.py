"""A real Caddy serving static folders over HTTPS with its own internal CA (``tls internal``).

Each site is a host name and a folder, or a :class:`Proxy` in front of a server of
the test's (optionally with a certificate of its own, on a port of its own); Caddy
binds one loopback address (port 443 by default: a client that looks the name up
gets no port from DNS) and issues itself a certificate per name from a CA it
creates in the test folder. Clients pin that CA (:meth:`Caddy.context`), never the
system's. HOME and the XDG folders point into the test folder so nothing outside it
is touched; no admin endpoint, no HTTP→HTTPS redirect listener on port 80, no
attempt to install the CA into a trust store.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import programs

START_SECONDS = 20.0


@dataclass(frozen=True)
class Caddy:
    """A running Caddy: where it listens and the CA its certificates chain to."""

    work: Path
    address: str
    port: int

    @property
    def root_ca(self) -> Path:
        """The root certificate of Caddy's internal CA."""
        return self.work / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def context(self) -> ssl.SSLContext:
        """A client context that trusts Caddy's CA and nothing else."""
        return ssl.create_default_context(cafile=str(self.root_ca))


@dataclass(frozen=True)
class Proxy:
    """A site passing every request to ``upstream`` (``host:port``).

    ``cert`` (``(cert.pem, key.pem)``) replaces the internal CA's certificate, served
    whatever name the client asks for (host name ``""``); such a site needs a ``port``
    of its own, as the TLS policies of one port are shared by its sites.
    """

    upstream: str
    cert: tuple[Path, Path] | None = None
    port: int | None = None


def caddyfile(sites: Mapping[str, Path | Proxy], address: str, port: int) -> str:
    """The configuration: global options, then one site per host name."""
    options = (
        "{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n"
        "\tservers {\n\t\tprotocols h1 h2\n\t}\n}\n"
    )
    return "\n".join([options, *(_site(host, site, address, port) for host, site in sites.items())])


def _site(host: str, site: Path | Proxy, address: str, port: int) -> str:
    if isinstance(site, Path):
        return (
            f"https://{host}:{port} {{\n\tbind {address}\n\ttls internal\n"
            f"\troot * {site}\n\tfile_server\n}}\n"
        )
    tls = f"tls {site.cert[0]} {site.cert[1]}" if site.cert else "tls internal"
    return (
        f"https://{host}:{site.port or port} {{\n\tbind {address}\n\t{tls}\n"
        f"\treverse_proxy {site.upstream}\n}}\n"
    )


@contextlib.contextmanager
def running_caddy(
    work: Path, sites: Mapping[str, Path | Proxy], address: str = "127.0.0.20", port: int = 443
) -> Iterator[Caddy]:
    """Caddy serving ``sites`` (host name → folder or proxy) for the block; output in
    ``work``. The first site must use the internal CA: start-up waits for its TLS."""
    binary = programs.path_of("caddy")
    work.mkdir(parents=True, exist_ok=True)
    server = Caddy(work, address, port)
    config = work / "Caddyfile"
    config.write_text(caddyfile(sites, address, port))
    env = dict(
        os.environ,
        HOME=str(work),
        XDG_DATA_HOME=str(work / "data"),
        XDG_CONFIG_HOME=str(work / "config"),
    )
    log = work / "caddy.log"
    argv = [binary, "run", "--adapter", "caddyfile", "--config", str(config)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        _wait_serving(server, next(iter(sites)), proc, log)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_serving(server: Caddy, host: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until a TLS handshake for ``host`` verifies against Caddy's CA, bounded."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("caddy exited:\n" + log.read_text(errors="replace"))
        try:
            context = server.context()
            with (
                socket.create_connection((server.address, server.port), timeout=1.0) as sock,
                context.wrap_socket(sock, server_hostname=host),
            ):
                return
        except (OSError, ssl.SSLError):
            # The CA file appears and the listener binds a moment after start: poll.
            time.sleep(0.05)
    raise AssertionError("caddy did not serve TLS:\n" + log.read_text(errors="replace"))
