"""A remote tracking server over plain http is refused unless it is on this machine or
the rep allowed it: the agent's API token would cross the network in clear (issue 14)."""

from __future__ import annotations

from pathlib import Path

from mailbeacon.core.enrollment import Enrollment
from tests.helpers.agent_process import run_cli
from tests.helpers.net import free_port

# 0.0.0.0 is not a loopback name, yet a connection to it never leaves this machine.
KEY = Enrollment("http://0.0.0.0:1", 7, "api-token-for-tests", b"k" * 32).encode()


async def test_an_http_server_elsewhere_is_refused_with_the_way_out(tmp_path: Path) -> None:
    code, _out, err = await run_cli(
        tmp_path / "profile", tmp_path / "keyring.json",
        "agent", "--enroll", KEY, "--smtp-listen", f"127.0.0.1:{free_port()}",
        "--relay-password", "relay-secret-for-tests",
    )  # fmt: skip
    assert code != 0
    assert "not encrypted" in err and "server.allow_plain" in err
    assert "Traceback" not in err
