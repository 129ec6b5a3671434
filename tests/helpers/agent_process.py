"""Run ``mailbeacon agent`` (or any mailbeacon command) as a real process in tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.helpers import paths

REPO = paths.REPO


def subprocess_env(keyring_file: Path) -> dict[str, str]:
    """Environment for a subprocess: a file keyring of the test's, never the real one."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND="tests.helpers.keyring_file_backend.FileKeyring",
        MAILBEACON_TEST_KEYRING_FILE=str(keyring_file),
    )
    return env


async def run_cli(profile: Path, keyring_file: Path, *args: str) -> tuple[int, str, str]:
    """Run one mailbeacon command to completion; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(profile), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(keyring_file), cwd=REPO,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


class AgentProcess:
    """A running ``mailbeacon agent --notify jsonl``; reads its notifications."""

    def __init__(
        self, profile: Path, keyring_file: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.profile = profile
        self.keyring_file = keyring_file
        self.args = args
        self.extra_env = env or {}
        self._log_changed = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_lines: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, within: float = 30.0) -> AgentProcess:
        """Start it and wait until its relay listens."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mailbeacon", "--profile", str(self.profile),
            "--log-level", "INFO", "agent", "--notify", "jsonl", *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**subprocess_env(self.keyring_file), **self.extra_env}, cwd=REPO,
        )
        self._stderr_task = asyncio.create_task(self._read_stderr())
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError:
            raise AssertionError("agent did not start:\n" + "".join(self.stderr_lines)) from None
        return self

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.stderr_lines.append(line)
            self._log_changed.set()
            if "mailbeacon agent: relay on" in line:
                self._ready.set()
        self._ready.set()

    async def notification(self, within: float = 5.0) -> dict[str, Any]:
        """The next notification line."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            async with asyncio.timeout(within):
                line = await self.proc.stdout.readline()
        except TimeoutError:
            raise AssertionError(
                f"no notification within {within}s; agent log:\n" + "".join(self.stderr_lines)
            ) from None
        assert line, "agent exited:\n" + "".join(self.stderr_lines)
        data: dict[str, Any] = json.loads(line)
        return data

    async def wait_log(self, text: str, within: float = 10.0) -> str:
        """The first log line containing ``text`` (waiting for it if need be)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self._log_changed.clear()
                    for line in self.stderr_lines:
                        if text in line:
                            return line
                    await self._log_changed.wait()
        except TimeoutError:
            log = "".join(self.stderr_lines)
            raise AssertionError(f"no log line with {text!r}:\n{log}") from None

    async def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._finish()

    async def stop(self) -> int:
        """SIGTERM and wait (bounded) for a clean exit."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._finish()
        return self.proc.returncode or 0

    async def _finish(self) -> None:
        if self._stderr_task is not None:
            await asyncio.gather(self._stderr_task, return_exceptions=True)


RELAY_PASSWORD = "relay-secret"


def agent_with_imap(
    tmp_path: Path, enrollment: str, relay_port: int, upstream_port: int, imap_port: int,
    user: str, password: str,
) -> AgentProcess:
    """``mailbeacon agent`` relaying to ``upstream_port`` and watching ``user``'s inbox."""
    return AgentProcess(
        tmp_path / "agent", tmp_path / "keyring.json",
        "--enroll", enrollment,
        "--smtp-listen", f"127.0.0.1:{relay_port}",
        "--upstream", f"smtp://127.0.0.1:{upstream_port}",
        "--relay-password", RELAY_PASSWORD,
        "--imap", f"imap://{quote(user, safe='')}@127.0.0.1:{imap_port}",
        env={"MAILBEACON_IMAP_PASSWORD": password},
    )  # fmt: skip


def offer_q4() -> EmailMessage:
    """The tracked one-to-one email the agent journeys send."""
    message = EmailMessage()
    message["From"] = "rep@example.net"
    message["To"] = "Alicja Nowak <alicja@client.example>"
    message["Subject"] = "Oferta Q4"
    message["Message-ID"] = "<oferta-q4@example.net>"
    message.add_alternative("<p>Our offer</p>", subtype="html")
    return message


def send_through_relay(relay_port: int, message: EmailMessage) -> None:
    """A mail client's submission to the agent's relay (blocking)."""
    with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
        client.login("mailbeacon", RELAY_PASSWORD)
        client.send_message(message)
