"""The embedded server keeps one user per profile and its secret in the keyring
(issue 14: without a keyring every start enrolled a new user; the secret sat in a
world-readable server.db)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mailbeacon.server.sqlite_store import SqliteStore
from tests.helpers.agent_process import AgentProcess
from tests.helpers.net import free_port

RELAY_PASSWORD = "relay-secret-for-tests"
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


async def run_agent_once(profile: Path, keyring: Path, env: dict[str, str] | None = None) -> None:
    agent = await AgentProcess(
        profile, keyring, "--smtp-listen", f"127.0.0.1:{free_port()}",
        "--relay-password", RELAY_PASSWORD, env=env,
    ).start()  # fmt: skip
    await agent.stop()


def users(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return [(int(row[0]), str(row[1])) for row in conn.execute("SELECT id, name FROM users")]


def meta(db: Path, key: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


async def test_without_a_keyring_every_start_is_the_same_user(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    for _ in range(3):
        await run_agent_once(profile, tmp_path / "keyring.json", NO_KEYRING)
    assert users(profile / "data" / "server.db") == [(1, "rep")]


async def test_the_secret_lives_in_the_keyring_and_an_old_one_moves_there(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "profile"
    db = profile / "data" / "server.db"
    store = SqliteStore(db)  # an older installation: the secret in its database
    store.set_meta("secret", "ab" * 32)
    store.close()
    await run_agent_once(profile, tmp_path / "keyring.json")
    kept = json.loads((tmp_path / "keyring.json").read_text())
    [secret] = [value for key, value in kept.items() if key.endswith("server_secret")]
    assert secret == "ab" * 32  # the same secret: mail already sent still verifies
    assert meta(db, "secret") is None

    fresh = tmp_path / "fresh"
    await run_agent_once(fresh, tmp_path / "keyring2.json")
    assert meta(fresh / "data" / "server.db", "secret") is None
    assert "server_secret" in (tmp_path / "keyring2.json").read_text()


async def test_a_damaged_server_database_is_a_sentence_and_exit_1(tmp_path: Path) -> None:
    from tests.helpers.agent_process import run_cli

    data = tmp_path / "profile" / "data"
    data.mkdir(parents=True)
    (data / "server.db").write_bytes(b"not a database at all " * 200)
    code, _out, err = await run_cli(
        tmp_path / "profile", tmp_path / "keyring.json",
        "agent", "--smtp-listen", f"127.0.0.1:{free_port()}", "--relay-password", RELAY_PASSWORD,
    )  # fmt: skip
    assert code == 1
    assert "is damaged" in err and "Restore it from a backup" in err
    assert "Traceback" not in err
