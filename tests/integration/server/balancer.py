"""nginx as a load balancer in front of several tracking server instances, on loopback.

Round robin over the instances, WebSocket upgrades passed on ``/v1/stream``, the
client's address in ``X-Forwarded-For`` (serve them with ``--trusted-proxy
127.0.0.1/32``). A request is never re-sent to another instance
(``proxy_next_upstream off``): an instance killed with a hit in flight may have
stored it, and the hit answered by another would then be stored twice; the recipient
instead gets one 502, the hit counts as not answered. An instance that fails once is
left alone for ``fail_timeout``. Each request's instance is logged (``upstreams.log``)
so a test can see the hits were spread.

``as_shipped=True`` configures it as packaging/server/nginx.conf does (what the
benchmark measures): idle connections to the instances kept open and reused
(``keepalive``), the stream in a location of its own, and no access log (a write per
request). The tests' default opens a connection per request, so a killed instance
is found out at the next request, and logs each request's instance.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import programs
from tests.helpers.net import free_port

START_SECONDS = 10.0


@dataclass(frozen=True)
class Balancer:
    """A running nginx: where it listens, and its log of which instance served what."""

    port: int
    log: Path

    @property
    def url(self) -> str:
        """The base URL recipients and agents use."""
        return f"http://127.0.0.1:{self.port}"

    def upstreams(self) -> list[str]:
        """The instance (``127.0.0.1:PORT``) of each request so far, in order."""
        if not self.log.exists():
            return []
        return [line.strip() for line in self.log.read_text().splitlines() if line.strip()]


def nginx_conf(work: Path, port: int, instances: list[int], as_shipped: bool = False) -> str:
    """The configuration: one upstream group, one server."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    servers = "".join(
        f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;\n" for p in instances
    )
    if as_shipped:
        servers += "    keepalive 32;\n"
    log = "  access_log off;\n" if as_shipped else f"  access_log {work}/upstreams.log upstream;\n"
    stream = _location("/v1/stream", "$http_connection") if as_shipped else ""
    # Kept connections need an empty Connection header (nginx's default is close).
    pixels = _location("/", '""' if as_shipped else "$http_connection")
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
        f"error_log {work}/error.log;\nevents {{ worker_connections 1024; }}\n"
        "http {\n"
        "  log_format upstream '$upstream_addr';\n"
        f"{log}"
        f"  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;\n"
        f"  fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi;\n"
        f"  scgi_temp_path {work}/scgi;\n"
        f"  upstream mailbeacon {{\n{servers}  }}\n"
        "  server {\n"
        f"    listen 127.0.0.1:{port};\n"
        f"{stream}{pixels}"
        "  }\n"
        "}\n"
    )


def _location(path: str, connection: str) -> str:
    return (
        f"    location {path} {{\n"
        "      proxy_pass http://mailbeacon;\n"
        "      proxy_next_upstream off;\n"
        "      proxy_http_version 1.1;\n"
        "      proxy_set_header Host $host;\n"
        "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "      proxy_set_header Upgrade $http_upgrade;\n"
        f"      proxy_set_header Connection {connection};\n"
        "      proxy_read_timeout 1h;\n"
        "    }\n"
    )


@contextlib.contextmanager
def running_balancer(
    work: Path, instances: list[int], as_shipped: bool = False
) -> Iterator[Balancer]:
    """nginx balancing over ``instances`` (ports on 127.0.0.1) for the block."""
    binary = programs.path_of("nginx")
    work.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(work, "root")
    port = free_port()
    (work / "nginx.conf").write_text(nginx_conf(work, port, instances, as_shipped))
    with (work / "nginx.out").open("wb") as out:
        process = subprocess.Popen(
            [binary, "-c", str(work / "nginx.conf"), "-p", str(work)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        _wait_for(port, process, work / "nginx.out")
        yield Balancer(port, work / "upstreams.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(port: int, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {output.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")
