"""The PostgreSQL deployment files in packaging/server/ work as written.

* ``mailbeacon-server-postgresql.service`` with ``mailbeacon-server.env``: verified
  and reviewed by ``systemd-analyze`` (no systemd runs on the test machines).
* ``Caddyfile.instances``: the real Caddy, run with that file, in front of two real
  instances on one real PostgreSQL: hits go to both, ``/healthz`` answers.
* ``compose.postgresql.yaml`` is not run (no container engine here); what it passes
  to the server is checked against the server's options.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mailbeacon.server.config import PostgresUrl
from tests.helpers import programs
from tests.helpers.net import free_port
from tests.helpers.server import WAIT, new_mail, next_event, running_server, subscribed

SERVER_DIR = Path(__file__).resolve().parents[3] / "packaging" / "server"
UNIT = SERVER_DIR / "mailbeacon-server-postgresql.service"
ENV = SERVER_DIR / "mailbeacon-server.env"
INSTALLED = "/opt/mailbeacon/bin/mailbeacon"


@pytest.mark.needs_program("systemd-analyze")
def test_the_postgresql_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    env = tmp_path / "server.env"
    env.write_text(ENV.read_text(encoding="utf-8"))
    program = Path(sys.executable).with_name("mailbeacon")
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text(encoding="utf-8")
        .replace(INSTALLED, str(program))
        .replace("/etc/mailbeacon/server.env", str(env))
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert level is not None, security.stdout + security.stderr
    assert float(level.group(1)) <= 2.0, level.group(0)


def test_the_environment_file_names_every_variable_the_unit_uses() -> None:
    used = set(re.findall(r"\$\{(MAILBEACON_\w+)\}", UNIT.read_text(encoding="utf-8")))
    given = {
        line.split("=", 1)[0]
        for line in ENV.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert used == given
    assert "postgresql://" in ENV.read_text(encoding="utf-8")


def test_the_compose_file_passes_options_serve_knows() -> None:
    text = (SERVER_DIR / "compose.postgresql.yaml").read_text(encoding="utf-8")
    options = set(re.findall(r"^\s+- (--[a-z-]+)", text, flags=re.MULTILINE))
    assert options == {"--listen", "--db", "--public-url", "--trusted-proxy", "--pool-size"}
    help_text = subprocess.run(
        [sys.executable, "-m", "mailbeacon", "server", "serve", "--help"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    for option in options:
        assert option in help_text
    for service in ("postgres:", "mailbeacon-a:", "mailbeacon-b:", "caddy:"):
        assert f"\n  {service}\n" in text
    assert "pg_isready" in text and "Caddyfile.instances" in text


async def test_caddy_with_the_instances_file_balances_two_instances(
    tmp_path: Path, postgres_url: str
) -> None:
    binary = programs.path_of("caddy")
    db = PostgresUrl(postgres_url)
    async with running_server(db) as one, running_server(db) as two:
        alice = await one.add_user("alice")
        port = free_port()
        env = dict(
            os.environ,
            HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
            XDG_CONFIG_HOME=str(tmp_path / "config"),
            MAILBEACON_SITE=f"http://127.0.0.1:{port}",
            MAILBEACON_UPSTREAMS=f"127.0.0.1:{one.port} 127.0.0.1:{two.port}",
        )  # fmt: skip
        argv = [
            binary,
            "run",
            "--adapter",
            "caddyfile",
            "--config",
            str(SERVER_DIR / "Caddyfile.instances"),
        ]
        with (tmp_path / "caddy.log").open("wb") as log:
            caddy = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=WAIT) as client:
                health = await _when_up(client, f"{base}/healthz", caddy)
                assert health.json() == {"status": "ok", "database": "ok"}
                async with subscribed(two, alice.api_token) as stream:
                    for _ in range(4):
                        mail = new_mail(alice)
                        url = mail.pixel().replace(alice.server_url, base)
                        assert (await client.get(url)).status_code == 200
                        assert (await next_event(stream))["message"] == mail.message
        finally:
            caddy.terminate()
            async with asyncio.timeout(10):
                await caddy.wait()


async def _when_up(
    client: httpx.AsyncClient, url: str, caddy: asyncio.subprocess.Process
) -> httpx.Response:
    """The first answer from Caddy (it has no readiness signal: polled, bounded)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return await client.get(url)
        except httpx.TransportError:
            if time.monotonic() > deadline or caddy.returncode is not None:
                raise
        await asyncio.sleep(0.1)
