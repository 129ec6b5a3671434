"""The operator's files in packaging/server/, run for real (no systemd, no container engine).

* ``mailbeacon-server.service``: its ``ExecStart`` line is run as written, with temporary
  paths for ``/var/lib/mailbeacon`` and ``${CREDENTIALS_DIRECTORY}``; the unit passes
  ``systemd-analyze verify`` and an offline security review.
* ``nginx.conf`` and ``Caddyfile``: the real proxy, on loopback with a test certificate,
  in front of that server. A recipient on 127.0.0.9 is recorded as 127.0.0.9 (not as the
  proxy), a forged ``X-Forwarded-For`` changes nothing, and the rep's agent streaming
  through the proxy from 127.0.0.8 makes hits from 127.0.0.8 the rep's own ("self").
* ``Containerfile``: what the image runs (entry point, CMD, HEALTHCHECK), outside a
  container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from mailbeacon.cli import build_parser
from mailbeacon.core.enrollment import Enrollment
from tests.helpers import certs, programs
from tests.helpers.agent_process import REPO
from tests.helpers.net import free_port
from tests.helpers.server import CHROME, new_mail

SERVER_DIR = REPO / "packaging" / "server"
UNIT = SERVER_DIR / "mailbeacon-server.service"
DOMAIN = "track.example.com"
RECIPIENT = "127.0.0.9"
REP = "127.0.0.8"  # the rep's machine, where the agent streams from
WAIT = 15.0  # seconds for a process to start or answer
SECRET = "0f" * 32
INSTALLED = "/opt/mailbeacon/bin/mailbeacon"  # where the unit expects the program




need_programs = programs.require


# ------------------------------------------------------------------ the unit's command


def unit_directive(unit: Path, key: str) -> list[str]:
    """Every value of ``key=`` in the unit file (continuation lines joined)."""
    text = unit.read_text(encoding="utf-8").replace("\\\n", " ")
    prefix = f"{key}="
    return [line[len(prefix) :].strip() for line in text.splitlines() if line.startswith(prefix)]


def exec_start(state_dir: Path, credentials: Path, port: int) -> list[str]:
    """The unit's ExecStart, with the test's paths and port in place of the real ones."""
    (line,) = unit_directive(UNIT, "ExecStart")
    line = line.replace("${CREDENTIALS_DIRECTORY}", str(credentials))
    line = line.replace("/var/lib/mailbeacon", str(state_dir))
    line = line.replace("127.0.0.1:8025", f"127.0.0.1:{port}")
    argv = shlex.split(line)
    assert argv[0] == INSTALLED
    return [sys.executable, "-m", "mailbeacon", *argv[1:]]


def server_env() -> dict[str, str]:
    """This environment less any server secret: the secret comes from the file only."""
    env = {k: v for k, v in os.environ.items() if k != "MAILBEACON_SERVER_SECRET"}
    env["PYTHONPATH"] = str(REPO / "app")
    return env


@dataclass
class Server:
    """A running ``mailbeacon server serve``."""

    proc: asyncio.subprocess.Process
    port: int
    db: Path
    secret_file: Path
    stderr: list[str]


@contextlib.asynccontextmanager
async def serving(argv: list[str], port: int, db: Path, secret_file: Path) -> AsyncIterator[Server]:
    """Run ``argv`` until it says it listens; SIGTERM afterwards must end it with 0."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stderr=asyncio.subprocess.PIPE, env=server_env(), cwd=db.parent
    )
    assert proc.stderr is not None
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(WAIT):
            while True:
                raw = await proc.stderr.readline()
                assert raw, "server exited:\n" + "".join(lines)
                lines.append(raw.decode())
                if "listening on" in lines[-1]:
                    break
        drain = asyncio.create_task(_drain(proc.stderr, lines))
        yield Server(proc, port, db, secret_file, lines)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            code = await proc.wait()
        await drain
        assert code == 0, "".join(lines)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if drain is not None and not drain.done():
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    async for raw in stream:
        lines.append(raw.decode())


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, Path]:
    """(state directory, credentials directory with the secret)."""
    state_dir, credentials = tmp_path / "state", tmp_path / "credentials"
    state_dir.mkdir()
    credentials.mkdir(mode=0o700)
    (credentials / "secret").write_text(SECRET + "\n")
    return state_dir, credentials


@pytest.fixture
async def unit_server(state: tuple[Path, Path]) -> AsyncIterator[Server]:
    """The server as the systemd unit starts it."""
    state_dir, credentials = state
    port = free_port()
    argv = exec_start(state_dir, credentials, port)
    async with serving(argv, port, state_dir / "server.db", credentials / "secret") as server:
        yield server


async def add_user(server: Server, name: str) -> Enrollment:
    """``mailbeacon server add-user`` as the operator runs it (same db, same secret)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "server", "add-user", name,
        "--db", str(server.db), "--secret-file", str(server.secret_file), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=server_env(),
    )  # fmt: skip
    async with asyncio.timeout(WAIT):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return Enrollment.decode(json.loads(out)["enrollment_key"])


# ------------------------------------------------------------------ TLS and the proxies


@dataclass(frozen=True)
class Cert:
    """A self-signed certificate for the tracking domain; also the test's CA."""

    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for the tracking domain."""
    made, key = certs.self_signed(tmp_path_factory.mktemp("tls"), DOMAIN, dns=(DOMAIN,), ips=())
    return Cert(made, key)


def nginx_config(work: Path, cert: Cert, listen: int, upstream: int) -> Path:
    """packaging/server/nginx.conf on loopback ports, inside a minimal main config."""
    site = (SERVER_DIR / "nginx.conf").read_text(encoding="utf-8")
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{listen} ssl;",
        "listen [::]:443 ssl;": "",
        "listen 80;": f"listen 127.0.0.1:{free_port()};",
        "listen [::]:80;": "",
        f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem": str(cert.cert),
        f"/etc/letsencrypt/live/{DOMAIN}/privkey.pem": str(cert.key),
        "server 127.0.0.1:8025;": f"server 127.0.0.1:{upstream};",
    }
    for old, new in replacements.items():
        assert old in site, f"nginx.conf no longer has {old!r}: update this test"
        site = site.replace(old, new)
    (work / "site.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = work / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
        f"error_log {work}/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;\n"
        f"  fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi;\n"
        f"  scgi_temp_path {work}/scgi;\n  include {work}/site.conf;\n}}\n"
    )
    return main


def caddy_config(work: Path, cert: Cert, listen: int, upstream: int) -> Path:
    """packaging/server/Caddyfile on a loopback port with the test certificate."""
    site = (SERVER_DIR / "Caddyfile").read_text(encoding="utf-8")
    replacements = {
        f"{DOMAIN} {{": (
            f"https://{DOMAIN}:{listen} {{\n\tbind 127.0.0.1\n\ttls {cert.cert} {cert.key}"
        ),
        "reverse_proxy 127.0.0.1:8025": f"reverse_proxy 127.0.0.1:{upstream}",
    }
    for old, new in replacements.items():
        assert old in site, f"Caddyfile no longer has {old!r}: update this test"
        site = site.replace(old, new)
    # The test's own options: no admin endpoint, no certificate automation, no SNI
    # needed, state in the test folder.
    options = (
        f"{{\n\tadmin off\n\tauto_https off\n"
        f"\tdefault_sni {DOMAIN}\n\tstorage file_system {work}/data\n}}\n\n"
    )
    path = work / "Caddyfile"
    path.write_text(options + site)
    return path


@contextlib.asynccontextmanager
async def proxy(kind: str, work: Path, cert: Cert, upstream: int) -> AsyncIterator[int]:
    """The real nginx or Caddy in front of ``upstream``; yields its TLS port."""
    need_programs("nginx" if kind == "nginx" else "caddy")
    work.mkdir()  # noqa: ASYNC240 - a test's own folder, once
    listen = free_port()
    env = dict(os.environ, HOME=str(work), XDG_DATA_HOME=str(work), XDG_CONFIG_HOME=str(work))
    if kind == "nginx":
        nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
        assert nginx is not None
        argv = [nginx, "-c", str(nginx_config(work, cert, listen, upstream)), "-p", str(work)]
    else:
        argv = ["caddy", "run", "--adapter", "caddyfile",
                "--config", str(caddy_config(work, cert, listen, upstream))]  # fmt: skip
    log = (work / "proxy.log").open("wb")
    proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log, env=env)
    try:
        await _wait_for_tls(listen, cert, proc, work / "proxy.log")
        yield listen
    finally:
        if proc.returncode is None:
            proc.terminate()
            async with asyncio.timeout(WAIT):
                await proc.wait()
        log.close()


async def _wait_for_tls(port: int, cert: Cert, proc: asyncio.subprocess.Process, log: Path) -> None:
    """Until a TLS handshake with the proxy succeeds (bounded)."""
    async with asyncio.timeout(WAIT):
        while True:
            if proc.returncode is not None:
                text = log.read_text(errors="replace")  # noqa: ASYNC240 - failing anyway
                raise AssertionError("proxy exited:\n" + text)
            try:
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=cert.context(), server_hostname=DOMAIN
                )
            except (ConnectionError, OSError, ssl.SSLError):
                await asyncio.sleep(0.05)  # polling a port that is not open yet
                continue
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
                await writer.wait_closed()
            return


def through(port: int, cert: Cert, local_address: str) -> httpx.AsyncClient:
    """A browser-like client on ``local_address`` that reaches the tracking domain via the
    proxy on ``port`` (SNI and Host say the domain; the socket goes to 127.0.0.1)."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=local_address, verify=cert.context()),
        base_url=f"https://127.0.0.1:{port}",
        headers={"Host": DOMAIN, "User-Agent": CHROME},
        timeout=WAIT,
    )


async def fetch(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    """GET the path of a tracking URL through the proxy."""
    path = httpx.URL(url).raw_path.decode("ascii")
    return await client.get(path, headers=headers, extensions={"sni_hostname": DOMAIN})


@contextlib.asynccontextmanager
async def stream(port: int, cert: Cert, token: str) -> AsyncIterator[ClientConnection]:
    """The rep's agent subscribed through the proxy, from the rep's machine."""
    async with connect(
        f"wss://{DOMAIN}:{port}/v1/stream?after=0",
        host="127.0.0.1",
        port=port,
        ssl=cert.context(),
        local_addr=(REP, 0),
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=WAIT,
    ) as websocket:
        yield websocket


async def next_event(websocket: ClientConnection) -> dict[str, object]:
    """The next stream message that is an event (revisions skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            message: dict[str, object] = json.loads(await websocket.recv())
            if message["type"] != "revise":
                return message


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
async def test_the_unit_behind_the_proxy_records_the_recipients_address(
    kind: str, unit_server: Server, cert: Cert, tmp_path: Path
) -> None:
    enrollment = await add_user(unit_server, "Alice Rep")
    assert enrollment.server_url == f"https://{DOMAIN}"  # the unit's --public-url
    async with (
        proxy(kind, tmp_path / kind, cert, unit_server.port) as port,
        through(port, cert, RECIPIENT) as recipient,
        through(port, cert, REP) as rep,
    ):
        health = await recipient.get("/healthz", extensions={"sni_hostname": DOMAIN})
        assert (health.status_code, health.json()) == (200, {"status": "ok"})

        async with stream(port, cert, enrollment.api_token) as websocket:
            # The recipient opens; a forged header claims to be the rep's machine.
            opened = await fetch(
                recipient, new_mail(enrollment).pixel(), **{"X-Forwarded-For": REP}
            )
            assert (opened.status_code, opened.headers["content-type"]) == (200, "image/gif")
            event = await next_event(websocket)
            assert (event["type"], event["ip"], event["verdict"]) == ("open", RECIPIENT, "human")

            # The rep opens their own email from the machine the agent streams from.
            assert (await fetch(rep, new_mail(enrollment).pixel())).status_code == 200
            event = await next_event(websocket)
            assert (event["ip"], event["verdict"]) == (REP, "self")


@pytest.mark.parametrize(
    ("make_secret", "expected"),
    [
        (lambda p: None, "No such file or directory"),
        (lambda p: p.mkdir(), "Is a directory"),
        (lambda p: p.write_text("short\n"), "openssl rand"),
        (lambda p: p.write_bytes(b"\xff\xfe" * 40), "cannot read the secret file"),
    ],
    ids=["missing", "directory", "too-short", "not-text"],
)
async def test_a_bad_secret_file_stops_the_unit_with_a_clear_message(
    tmp_path: Path, make_secret: Callable[[Path], object], expected: str
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    make_secret(credentials / "secret")
    argv = exec_start(tmp_path, credentials, free_port())
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=server_env()
    )
    async with asyncio.timeout(WAIT):
        _, err = await proc.communicate()
    message = err.decode()
    assert proc.returncode == 2
    assert message.startswith("mailbeacon server: ")
    assert expected in message and "Traceback" not in message
    assert message.count("\n") == 1  # one line, for the journal
    assert not (tmp_path / "server.db").exists()


def test_the_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    need_programs("systemd-analyze")
    unit = tmp_path / UNIT.name
    # systemd-analyze checks that the program exists: point it at this venv's.
    program = Path(sys.executable).with_name("mailbeacon")
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED, str(program)))
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert security.returncode == 0, security.stdout + security.stderr
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert level is not None, security.stdout
    assert float(level.group(1)) <= 2.0, level.group(0)  # "OK" or "SAFE"
    assert unit_directive(UNIT, "DynamicUser") == ["yes"]
    assert unit_directive(UNIT, "StateDirectory") == ["mailbeacon"]
    assert unit_directive(UNIT, "LoadCredential") == ["secret:/etc/mailbeacon/secret"]


# ------------------------------------------------------------------ the container image


def containerfile() -> dict[str, list[str]]:
    """Instructions of the final stage: name -> arguments, in order."""
    text = (SERVER_DIR / "Containerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)
    found: dict[str, list[str]] = {}
    for line in stages[-1].splitlines()[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, rest = line.strip().partition(" ")
            found.setdefault(name.upper(), []).append(rest.strip())
    return found


def test_the_image_runs_as_a_user_with_the_database_on_a_volume() -> None:
    image = containerfile()
    user = image["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    assert json.loads(image["VOLUME"][0]) == ["/var/lib/mailbeacon"]
    assert image["STOPSIGNAL"] == ["SIGTERM"]
    assert "/healthz" in image["HEALTHCHECK"][0]
    cmd = json.loads(image["CMD"][0])
    args = build_parser().parse_args(["server", "serve", *cmd])
    assert Path(args.db).parent == Path("/var/lib/mailbeacon")


def _healthcheck(port: int) -> list[str]:
    check = containerfile()["HEALTHCHECK"][0]
    argv: list[str] = json.loads(check[check.index("CMD") + 3 :].strip())
    assert argv[0] == "python"
    return [sys.executable, *(a.replace("8025", str(port)) for a in argv[1:])]


def _entrypoint_env(secret_file: Path | None, extra: dict[str, str]) -> dict[str, str]:
    env = server_env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    if secret_file is not None:
        env["MAILBEACON_SECRET_FILE"] = str(secret_file)
    return {**env, **extra}


async def test_the_image_entrypoint_serves_with_the_secret_file_and_passes_its_healthcheck(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    port = free_port()
    db = tmp_path / "server.db"
    cmd = json.loads(containerfile()["CMD"][0])
    argv = [str(SERVER_DIR / "container-entrypoint.sh"),
            *(a.replace("/var/lib/mailbeacon", str(tmp_path)) for a in cmd)]  # fmt: skip
    argv = [a.replace("0.0.0.0:8025", f"127.0.0.1:{port}") for a in argv]
    proc = await asyncio.create_subprocess_exec(
        *argv, stderr=asyncio.subprocess.PIPE, env=_entrypoint_env(secret, {}), cwd=tmp_path
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(WAIT):
            line = (await proc.stderr.readline()).decode()
        assert "listening on" in line, line
        check = await asyncio.create_subprocess_exec(*_healthcheck(port))
        async with asyncio.timeout(WAIT):
            assert await check.wait() == 0
        # add-user with the same secret file works; the fingerprint matches.
        server = Server(proc, port, db, secret, [])
        assert (await add_user(server, "Bob")).user_id == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            assert await proc.wait() == 0


async def test_the_image_entrypoint_refuses_a_named_secret_file_that_is_missing(
    tmp_path: Path,
) -> None:
    entry = str(SERVER_DIR / "container-entrypoint.sh")
    proc = await asyncio.create_subprocess_exec(
        entry, "--listen", f"127.0.0.1:{free_port()}", "--db", str(tmp_path / "s.db"),
        stderr=asyncio.subprocess.PIPE, env=_entrypoint_env(tmp_path / "nope", {}),
    )  # fmt: skip
    async with asyncio.timeout(WAIT):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "MAILBEACON_SECRET_FILE" in err.decode() and "does not exist" in err.decode()


@pytest.fixture
def no_run_secrets() -> Iterator[None]:
    """The entry point's default secret path must not exist on this machine."""
    if Path("/run/secrets/mailbeacon").exists():
        pytest.skip("/run/secrets/mailbeacon exists on this machine")
    yield


async def test_the_image_entrypoint_takes_the_secret_from_the_environment(
    tmp_path: Path, no_run_secrets: None
) -> None:
    port = free_port()
    env = {k: v for k, v in _entrypoint_env(None, {}).items() if k != "MAILBEACON_SECRET_FILE"}
    env["MAILBEACON_SERVER_SECRET"] = "short"
    proc = await asyncio.create_subprocess_exec(
        str(SERVER_DIR / "container-entrypoint.sh"), "--listen", f"127.0.0.1:{port}",
        "--db", str(tmp_path / "s.db"), stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    async with asyncio.timeout(WAIT):
        _, err = await proc.communicate()
    # The environment's secret is the one used: too short, so the server refuses it.
    assert proc.returncode == 2
    assert "MAILBEACON_SERVER_SECRET" in err.decode()
