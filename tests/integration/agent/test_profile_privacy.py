"""A profile's folders and databases are the rep's alone, from the moment they exist
(issue 14: secrets and logged mail bodies in world-readable files; docs/promises.md,
"Isolation")."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.agent_process import AgentProcess
from tests.helpers.net import free_port

RELAY_PASSWORD = "relay-secret-for-tests"


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual desktop umask (022), which would make new files world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def run_agent_once(profile: Path, keyring: Path) -> None:
    agent = await AgentProcess(
        profile, keyring, "--smtp-listen", f"127.0.0.1:{free_port()}",
        "--relay-password", RELAY_PASSWORD,
    ).start()  # fmt: skip
    await agent.stop()


@pytest.mark.usefixtures("lax_umask")
async def test_a_new_profile_is_created_private(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    await run_agent_once(profile, tmp_path / "keyring.json")
    data = profile / "data"
    assert mode(profile) == 0o700 and mode(data) == 0o700
    databases = [data / "records.db", data / "server.db"]
    extras = [
        sidecar
        for db in databases
        for sidecar in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
        if sidecar.exists()
    ]
    for path in [*databases, *extras]:
        assert mode(path) == 0o600, path
    for path in data.rglob("*"):
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"


@pytest.mark.usefixtures("lax_umask")
async def test_an_older_installation_is_tightened_on_start(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    data = profile / "data"
    data.mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    (data / "records.db").touch(mode=0o644)
    (data / "records.db").chmod(0o644)
    await run_agent_once(profile, tmp_path / "keyring.json")
    assert mode(data) == 0o700
    assert mode(data / "records.db") == 0o600
