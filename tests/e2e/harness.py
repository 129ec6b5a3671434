"""Real processes for the end-to-end suite (issue 6).

Everything here reaches MailBeacon only through its public surfaces: the ``mailbeacon``
command (``server serve``, ``server add-user``, ``agent``, ``activity``, ``record``,
``config``), SMTP, HTTP and the WebSocket stream. The other side of each surface is a
program nobody on the team wrote where one exists (swaks, Chromium, aiosmtpd, httpx,
websockets, the kernel's network namespaces).

Waiting never sleeps: it blocks on a process's output, a socket or a condition, with a
timeout. Every loop is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.helpers import programs
from tests.helpers.agent_process import REPO, AgentProcess, run_cli, subprocess_env
from tests.helpers.net import free_port

OUT = REPO / "tests" / "e2e" / "out"
SOAK_ENV = "MAILBEACON_SOAK"
RELAY_USER = "mailbeacon"
# A recipient's mail viewer, not a bot: crawler lists rightly call HeadlessChrome one.
CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
THUNDERBIRD_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
RECIPIENT_IP = "127.0.0.9"  # recipients are another host than the rep (127.0.0.1)


# ---------------------------------------------------------------- environment


in_ci = programs.in_ci
need_programs = programs.require
need_root = programs.require_root


def soak() -> bool:
    """True when the long variants should run (``MAILBEACON_SOAK=1``)."""
    return os.environ.get(SOAK_ENV) == "1"


def mailbeacon(profile: Path, *args: str) -> list[str]:
    """The argv of one ``mailbeacon`` command on ``profile``."""
    return [sys.executable, "-m", "mailbeacon", "--profile", str(profile), *args]


# ---------------------------------------------------------------- the tracking server


class ServerProcess:
    """``mailbeacon server serve`` as a real process; can be killed and restarted."""

    READY = "MailBeacon tracking server listening on"

    def __init__(
        self,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port or free_port(host)
        self.public_url = public_url or f"http://{host}:{self.port}"
        self.db = workdir / "server.db"
        self.profile = workdir / "server-profile"
        self.keyring_file = workdir / "server-keyring.json"
        self.log: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://{self.host}:{self.port}"

    def start(self, within: float = 30.0) -> ServerProcess:
        """Start it and wait until it says it listens."""
        self._ready.clear()
        self._proc = subprocess.Popen(
            mailbeacon(
                self.profile, "--log-level", "INFO", "server", "serve",
                "--listen", f"{self.host}:{self.port}", "--db", str(self.db),
                "--public-url", self.public_url,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=subprocess_env(self.keyring_file),
            cwd=REPO,
        )
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()
        if not self._ready.wait(within) or self._proc.poll() is not None:
            self.kill()
            raise AssertionError("tracking server did not start:\n" + self.log_text())
        return self

    async def astart(self, within: float = 30.0) -> ServerProcess:
        """``start`` for async tests."""
        return await asyncio.to_thread(self.start, within)

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            self.log.append(line)
            if self.READY in line:
                self._ready.set()
        self._ready.set()

    def log_text(self) -> str:
        """Everything it wrote to stderr so far."""
        return "".join(self.log)

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no final commit."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        self._finish(proc)

    def stop(self) -> int:
        """SIGTERM and a bounded wait for a clean exit; the exit code."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        self._finish(proc)
        return proc.returncode

    def _finish(self, proc: subprocess.Popen[bytes]) -> None:
        if self._reader is not None:
            self._reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()

    def add_user(self, name: str = "rep") -> dict[str, Any]:
        """``server add-user NAME --json``: enrollment_key, user_id, api_token."""
        done = subprocess.run(
            mailbeacon(
                self.profile, "server", "add-user", name, "--db", str(self.db),
                "--public-url", self.public_url, "--json",
            ),
            capture_output=True,
            env=subprocess_env(self.keyring_file),
            cwd=REPO,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        user: dict[str, Any] = json.loads(done.stdout)
        return user

    async def healthy(self, client: httpx.AsyncClient | None = None) -> bool:
        """True if ``/healthz`` answers 200 now."""
        async with contextlib.AsyncExitStack() as stack:
            if client is None:
                client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            try:
                return (await client.get(f"{self.url}/healthz")).status_code == 200
            except httpx.TransportError:
                return False


def ws_url(http_url: str, after: int | str) -> str:
    """The stream's WebSocket URL on a server's HTTP base URL."""
    return http_url.replace("http://", "ws://", 1).rstrip("/") + f"/v1/stream?after={after}"


async def read_stream(
    http_url: str,
    api_token: str,
    done: Callable[[list[dict[str, Any]]], bool],
    within: float = 30.0,
    after: int = 0,
) -> list[dict[str, Any]]:
    """Subscribe as a second client and collect messages until ``done(messages)``."""
    messages: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {api_token}"}
    try:
        async with asyncio.timeout(within):
            async with connect(ws_url(http_url, after), additional_headers=headers,
                               proxy=None, max_size=2**20) as ws:
                if done(messages):
                    return messages
                async for raw in ws:
                    messages.append(json.loads(raw))
                    if done(messages):
                        return messages
    except TimeoutError:
        kinds = Counter(m.get("type") for m in messages)
        raise AssertionError(
            f"stream gave {len(messages)} message(s) ({dict(kinds)}) within {within}s, "
            f"not what was expected; the last: {messages[-3:]}"
        ) from None
    raise AssertionError(f"stream closed after {len(messages)} message(s)")


# ---------------------------------------------------------------- the agent


@dataclass
class Rep:
    """One rep's agent profile: folder, keyring file, relay port and password."""

    root: Path
    relay_password: str = "relay-Pa55-e2e"
    relay_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def profile(self) -> Path:
        """The ``--profile`` folder."""
        return self.root / "profile"

    @property
    def keyring(self) -> Path:
        """The file keyring the agent's subprocesses use."""
        return self.root / "keyring.json"

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """Run one mailbeacon command on this profile."""
        return await run_cli(self.profile, self.keyring, *args)

    async def cli_json(self, *args: str) -> Any:
        """Run a ``--json`` command; its parsed output."""
        code, out, err = await self.cli(*args)
        assert code == 0, f"mailbeacon {' '.join(args)} failed ({code}): {err}"
        return json.loads(out)

    async def configure(self, **settings: str) -> None:
        """``config set`` each ``section__key=value`` (``tracking__settle_seconds="0"``)."""
        for name, value in settings.items():
            key = name.replace("__", ".")
            code, _out, err = await self.cli("config", "set", key, value)
            assert code == 0, err

    def agent(self, enrollment_key: str, upstream_port: int, *extra: str) -> AgentProcess:
        """The headless agent (not started) relaying to a sink on ``upstream_port``."""
        return AgentProcess(
            self.profile, self.keyring,
            "--enroll", enrollment_key,
            "--smtp-listen", f"127.0.0.1:{self.relay_port}",
            "--upstream", f"smtp://127.0.0.1:{upstream_port}",
            "--relay-password", self.relay_password,
            *extra,
        )

    async def activity(self) -> list[dict[str, Any]]:
        """``activity --json --all``."""
        rows: list[dict[str, Any]] = await self.cli_json("activity", "--json", "--all")
        return rows

    async def activity_until(
        self, done: Callable[[list[dict[str, Any]]], bool], within: float = 60.0
    ) -> list[dict[str, Any]]:
        """``activity --json --all`` again and again until ``done(rows)`` (bounded)."""
        deadline = time.monotonic() + within
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:  # each pass runs a process: no sleep needed
            rows = await self.activity()
            if done(rows):
                return rows
        raise AssertionError(f"activity never got there within {within}s: {len(rows)} rows")


class SyncAgent:
    """``mailbeacon agent`` for synchronous tests (hypothesis): Popen, stderr read in a
    thread, notifications (stdout) kept as raw lines."""

    READY = "mailbeacon agent: relay on"

    def __init__(self, rep: Rep, enrollment_key: str, upstream_port: int) -> None:
        self.rep = rep
        self.argv = mailbeacon(
            rep.profile, "--log-level", "INFO", "agent", "--notify", "jsonl",
            "--enroll", enrollment_key, "--smtp-listen", f"127.0.0.1:{rep.relay_port}",
            "--upstream", f"smtp://127.0.0.1:{upstream_port}",
            "--relay-password", rep.relay_password,
        )
        self.log: list[str] = []
        self.stdout: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, within: float = 30.0) -> SyncAgent:
        """Start it and wait until its relay listens."""
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=subprocess_env(self.rep.keyring), cwd=REPO,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        for stream, sink, ready in ((self._proc.stderr, self.log, True),
                                    (self._proc.stdout, self.stdout, False)):
            thread = threading.Thread(target=self._read, args=(stream, sink, ready), daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._ready.wait(within) or self._proc.poll() is not None:
            self.stop()
            raise AssertionError("agent did not start:\n" + "".join(self.log))
        return self

    def _read(self, stream: Any, sink: list[str], ready: bool) -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            sink.append(line)
            if ready and self.READY in line:
                self._ready.set()
        if ready:
            self._ready.set()

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int:
        """SIGTERM and a bounded wait; the exit code."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        for thread in self._threads:
            thread.join(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode


class NotificationLog:
    """Reads a running agent's ``--notify jsonl`` lines in the background."""

    def __init__(self, agent: AgentProcess) -> None:
        assert agent.proc is not None and agent.proc.stdout is not None
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(agent.proc.stdout))

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        async for raw in stdout:
            async with self._changed:
                self.lines.append(json.loads(raw))
                self._changed.notify_all()

    async def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], within: float = 10.0
    ) -> list[dict[str, Any]]:
        """Until ``done(lines)``; AssertionError after ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                async with self._changed:
                    await self._changed.wait_for(lambda: done(self.lines))
        except TimeoutError:
            raise AssertionError(f"notifications so far: {self.lines}") from None
        return list(self.lines)

    async def close(self) -> None:
        """Stop reading (the agent has exited or is about to)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def notified_event_ids(lines: list[dict[str, Any]]) -> list[int]:
    """Every server event id a notification (single or summary) stood for."""
    ids: list[int] = []
    for line in lines:
        ids.extend(line.get("events") or ([line["event"]] if line.get("event") else []))
    return ids


# ---------------------------------------------------------------- recipients and mail


def recipient_client(ip: str = RECIPIENT_IP, user_agent: str = THUNDERBIRD_UA,
                     timeout: float = 30.0, **kwargs: Any) -> httpx.AsyncClient:
    """A recipient's viewer on another loopback address than the rep's."""
    transport = httpx.AsyncHTTPTransport(local_address=ip, retries=0)
    return httpx.AsyncClient(transport=transport, headers={"User-Agent": user_agent},
                             timeout=timeout, **kwargs)


def html_of(raw: bytes) -> str:
    """The text of a delivered message's HTML part."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("html",))
    assert body is not None, "no HTML part reached the upstream"
    return str(body.get_content())


async def swaks(*args: str, within: float = 60.0) -> str:
    """Run swaks; its transcript (AssertionError if it failed)."""
    proc = await asyncio.create_subprocess_exec(
        "swaks", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(within):
        out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


# ---------------------------------------------------------------- a recipient's own host


@dataclass(frozen=True)
class Netns:
    """A network namespace joined to this host by a veth pair: 10.231.N.1 <-> .2."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    def cmd(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _taken_subnets() -> set[int]:
    out = subprocess.run(
        ["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return {int(part.split(".")[2]) for part in out.split() if part.startswith("10.231.")}


@contextlib.contextmanager
def recipient_namespace() -> Iterator[Netns]:
    """Create a fresh namespace (N picked per run to avoid clashes); always removed."""
    taken = _taken_subnets()
    choices = [n for n in range(1, 255) if n not in taken]
    rng = random.Random(os.getpid() ^ time.time_ns())
    n = rng.choice(choices)
    tag = f"{n}x{os.getpid() % 10000}"
    ns = Netns(f"mbrcpt{tag}", f"mb{tag}h", f"mb{tag}r", f"10.231.{n}.1", f"10.231.{n}.2")
    created_ns = created_link = False
    try:
        _ip("netns", "add", ns.name)
        created_ns = True
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        created_link = True
        _ip("link", "set", ns.ns_if, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("netns", "exec", ns.name, "ip", "addr", "add", f"{ns.ns_ip}/24", "dev", ns.ns_if)
        _ip("netns", "exec", ns.name, "ip", "link", "set", ns.ns_if, "up")
        _ip("netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        if created_link:
            subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True,
                           timeout=30, check=False)
        if created_ns:
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True,
                           timeout=30, check=False)


@dataclass(frozen=True)
class BrowserRun:
    """One headless Chromium run: when it was launched, what it printed."""

    launched: float
    finished: float
    dom: str
    log: str


async def chromium_dump_dom(ns: Netns, url: str, within: float = 60.0) -> BrowserRun:
    """Chromium inside ``ns`` loads ``url`` as a recipient's viewer and prints the DOM."""
    with tempfile.TemporaryDirectory(prefix="mb-chromium-") as profile_dir:
        argv = ns.cmd(
            "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic", f"--user-data-dir={profile_dir}",
            f"--user-agent={CHROME_UA}", "--dump-dom", url,
        )
        launched = time.time()
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": profile_dir},
        )
        try:
            async with asyncio.timeout(within):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"chromium did not finish loading {url} in {within}s") from None
        finished = time.time()
    log = err.decode(errors="replace")
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}):\n{log[-3000:]}"
    return BrowserRun(launched, finished, out.decode(errors="replace"), log)


# ---------------------------------------------------------------- a tiny landing page


@dataclass
class LandingPage:
    """A minimal HTTP server: the original target of a tracked link."""

    host: str
    marker: str
    port: int = 0
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (at, peer, path)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://{self.host}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        path = parts[1] if len(parts) > 1 else ""
        peer = writer.get_extra_info("peername")[0]
        self.requests.append((time.time(), peer, path))
        body = (
            f"<!doctype html><html><head><title>Offer</title></head>"
            f"<body><h1 id='landed'>{self.marker}</h1></body></html>"
        ).encode()
        status = b"200 OK" if path.startswith("/offer") else b"404 Not Found"
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> LandingPage:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@contextlib.asynccontextmanager
async def stopped_at_end(agent: AgentProcess) -> AsyncIterator[AgentProcess]:
    """Start ``agent`` and always stop it (SIGTERM, bounded) when the block ends."""
    await agent.start()
    try:
        yield agent
    finally:
        if agent.proc is not None and agent.proc.returncode is None:
            await agent.stop()
