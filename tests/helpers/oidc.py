"""A real OpenID Connect provider on loopback: the certified ``oidc-provider`` (npm).

The provider script and its locked dependencies live in ``tests/helpers/oidc_provider``;
``npm ci`` installs them once (from the npm registry) into that folder's
``node_modules`` (git-ignored). Each :func:`running_provider` is a fresh process with
its own in-memory tokens: the issuer is ``http://127.0.0.1:<port>``, the public client
is ``mailbeacon`` (PKCE, loopback redirect, device grant, refresh, revocation) and
Dovecot introspects tokens as ``dovecot`` / ``dovecot-secret``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import programs
from tests.helpers.net import free_port

FOLDER = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "mailbeacon"
INTROSPECTION_CLIENT = ("dovecot", "dovecot-secret")
USER = "alice@example.test"
PASSWORD = "alice-pw"
START_SECONDS = 30.0


@dataclass
class Provider:
    """A running provider: its issuer URL, port and sign-in users."""

    issuer: str
    port: int
    users: Mapping[str, str]
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def introspection_url(self) -> str:
        """The introspection endpoint with Dovecot's client credentials in it."""
        user, secret = INTROSPECTION_CLIENT
        return f"http://{user}:{secret}@127.0.0.1:{self.port}/token/introspection"


def install() -> None:
    """``npm ci`` once per checkout (a lock file keeps parallel runs from racing)."""
    programs.require("node", "npm")
    marker = FOLDER / "node_modules" / ".mailbeacon-installed"
    lock = FOLDER.parent / ".oidc_provider.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if marker.exists():
            return
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=FOLDER, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        marker.touch()


@contextlib.contextmanager
def running_provider(
    access_token_ttl: int = 300, users: Mapping[str, str] | None = None, port: int | None = None
) -> Iterator[Provider]:
    """Start the provider on a loopback port (free, or ``port``); stop it at the end.

    Tokens live in the provider's memory: starting it again on the same port is a
    provider that revoked every sign-in at once.
    """
    install()
    users = dict(users or {USER: PASSWORD})
    port = port or free_port()
    env = {
        **os.environ,
        "OP_PORT": str(port),
        "ACCESS_TOKEN_TTL": str(access_token_ttl),
        "OP_USERS": json.dumps(users),
        "NODE_NO_WARNINGS": "1",
    }
    process = subprocess.Popen(
        ["node", "provider.mjs"], cwd=FOLDER, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        issuer = _wait_ready(process)
        # Keep reading what it prints, so a full pipe never stalls the provider.
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        yield Provider(issuer, port, users, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _drain(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    with contextlib.suppress(ValueError, OSError):
        for _line in process.stdout:
            pass


def _wait_ready(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_SECONDS
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode(errors="replace").strip()
        if line.startswith("READY "):
            return line.split(" ", 1)[1]
        if not line and process.poll() is not None:
            break
        seen.append(line)
    raise RuntimeError(f"the OpenID provider did not start: {' | '.join(seen[-5:])}")
