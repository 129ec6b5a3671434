"""``mailbeacon server add-user`` and ``server serve`` (docs/interfaces.md)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from mailbeacon.cli import main
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import load_secret
from tests.helpers.net import free_port
from tests.helpers.server import (
    WAIT,
    new_mail,
    next_event,
    recipient,
    running_server,
    subscribed,
)


def _cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--profile", str(tmp_path / "profile"), "server", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _served_at(enrollment: Enrollment, port: int) -> Enrollment:
    """The same user, reached at a test port."""
    return Enrollment(
        f"http://127.0.0.1:{port}", enrollment.user_id, enrollment.api_token, enrollment.signing_key
    )


def test_add_user_prints_one_line_the_enrollment_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    code, out, err = _cli(capsys, tmp_path, "add-user", "Alice Rep", "--db", db)
    assert code == 0
    assert out.count("\n") == 1
    enrollment = Enrollment.decode(out.strip())
    assert enrollment.user_id == 1
    assert enrollment.server_url == "http://127.0.0.1:8025"
    assert len(enrollment.signing_key) == 32 and len(enrollment.api_token) >= 32
    assert "--public-url" in err  # says where the URL came from
    code, out, _ = _cli(capsys, tmp_path, "add-user", "Bob", "--db", db)
    assert Enrollment.decode(out.strip()).user_id == 2


def test_add_user_json_fields_match_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(
        capsys,
        tmp_path,
        "add-user",
        "alice",
        "--db",
        str(tmp_path / "server.db"),
        "--public-url",
        "https://t.example.com/",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"enrollment_key", "user_id", "api_token"}
    enrollment = Enrollment.decode(data["enrollment_key"])
    assert (enrollment.user_id, enrollment.api_token) == (data["user_id"], data["api_token"])
    assert enrollment.server_url == "https://t.example.com"


def test_the_default_database_lives_in_the_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _cli(capsys, tmp_path, "add-user", "alice")
    assert code == 0
    assert (tmp_path / "profile" / "data" / "server.db").is_file()


@pytest.mark.parametrize("command", ["add-user alice", "serve --listen 127.0.0.1:0"])
def test_an_unreachable_postgresql_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    url = f"postgresql://mb:hunter2@127.0.0.1:{free_port()}/mailbeacon"
    code, _, err = _cli(capsys, tmp_path, *command.split(), "--db", url)
    assert code == 1
    assert "could not connect to postgresql://127.0.0.1:" in err
    assert "hunter2" not in err  # the password is never shown


@pytest.mark.parametrize("secret_file", ["missing.txt", "."], ids=["missing", "a directory"])
def test_an_unreadable_secret_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secret_file: str
) -> None:
    path = tmp_path / secret_file
    code, _, err = _cli(
        capsys, tmp_path, "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db"),
        "--secret-file", str(path),
    )
    assert code != 0
    assert f"cannot read the secret file {path}" in err
    assert "Traceback" not in err


def test_a_port_in_use_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = _cli(
            capsys, tmp_path, "serve", "--listen", f"127.0.0.1:{port}", "--db",
            str(tmp_path / "s.db"),
        )
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_an_unusable_database_path_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for command in (["add-user", "alice"], ["serve", "--listen", "127.0.0.1:0"]):
        code, _, err = _cli(capsys, tmp_path, *command, "--db", str(blocker / "server.db"))
        assert code == 1, command
        assert "could not open the database" in err
        assert "Traceback" not in err


def test_a_bad_listen_address_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(capsys, tmp_path, "serve", "--listen", "localhost", "--db", "x.db")
    assert code == 2
    assert "HOST:PORT" in err


async def test_a_key_from_add_user_works_against_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "server.db"
    _, out, _ = _cli(capsys, tmp_path, "add-user", "alice", "--db", str(db))
    async with running_server(db) as server:
        alice = _served_at(Enrollment.decode(out.strip()), server.port)
        mail = new_mail(alice)
        async with subscribed(server, alice.api_token) as stream, recipient() as client:
            await client.get(mail.pixel())
            assert (await next_event(stream))["message"] == mail.message


async def test_add_user_takes_the_url_the_server_was_last_served_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "server.db"
    async with running_server(db, public_url="https://track.example.com"):
        pass
    _, out, _ = _cli(capsys, tmp_path, "add-user", "alice", "--db", str(db))
    assert Enrollment.decode(out.strip()).server_url == "https://track.example.com"
    _, out, _ = _cli(
        capsys, tmp_path, "add-user", "bob", "--db", str(db), "--public-url", "http://other:1"
    )
    assert Enrollment.decode(out.strip()).server_url == "http://other:1"


async def test_a_secret_file_is_used_and_add_user_must_be_given_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "server.db"
    secret_file = tmp_path / "secret"
    secret_file.write_text("0123456789abcdef0123456789abcdef\n")
    secret = load_secret(secret_file)
    async with running_server(db, secret=secret):
        pass
    code, _, err = _cli(capsys, tmp_path, "add-user", "alice", "--db", str(db))
    assert code == 2
    assert "different server secret" in err
    code, out, _ = _cli(
        capsys, tmp_path, "add-user", "alice", "--db", str(db), "--secret-file", str(secret_file)
    )
    assert code == 0
    async with running_server(db, secret=secret) as server:
        alice = _served_at(Enrollment.decode(out.strip()), server.port)
        mail = new_mail(alice)
        async with subscribed(server, alice.api_token) as stream, recipient() as client:
            await client.get(mail.pixel())
            assert (await next_event(stream))["message"] == mail.message


def test_a_too_short_secret_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("short")
    with pytest.raises(ValueError, match="shorter than"):
        load_secret(secret_file)


def test_the_secret_can_come_from_the_environment() -> None:
    assert load_secret(None, {"MAILBEACON_SERVER_SECRET": "s" * 32}) == b"s" * 32
    assert load_secret(None, {}) is None


async def test_serve_runs_until_sigterm_and_records_its_public_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "server.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(tmp_path / "profile"),
        "server", "serve", "--listen", "127.0.0.1:0", "--db", str(db),
        "--public-url", "https://mb.example.org",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        async with asyncio.timeout(3 * WAIT):
            line = (await process.stderr.readline()).decode()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ", 1)[1].split(" ", 1)[0]
        async with recipient() as client:
            assert (await client.get(f"{url}/healthz")).json() == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(3 * WAIT):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    _, out, _ = _cli(capsys, tmp_path, "add-user", "alice", "--db", str(db))
    assert Enrollment.decode(out.strip()).server_url == "https://mb.example.org"
