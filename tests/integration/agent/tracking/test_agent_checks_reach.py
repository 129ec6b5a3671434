"""The running agent checks a public tracking address by itself: `mailbeacon status`
says what it found (here: the name leads to a private address) instead of "unknown"
until the rep presses "Test tracking" — the real agent, a real name server (dnsmasq)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.profile import Profile
from tests.helpers.agent_process import AgentProcess
from tests.helpers.dnsmasq import Zone, running_dnsmasq
from tests.helpers.net import free_port
from tests.integration.agent.test_status_command import RELAY_PASSWORD, status_until

pytestmark = pytest.mark.needs_program("dnsmasq")

PUBLIC = "https://track.example.test"


def profile_with_public_url(tmp_path: Path) -> Path:
    """The embedded server, its emails pointing at a public name."""
    root = tmp_path / "agent"
    settings = Settings()
    settings.set("server.listen", "127.0.0.1:0")
    settings.set("server.public_url", PUBLIC)
    settings.save(Profile.at(root).config_file)
    return root


async def test_the_agent_finds_out_by_itself_that_recipients_cannot_reach_tracking(
    tmp_path: Path,
) -> None:
    zone = Zone(hosts={"track.example.test": "10.0.0.5"})
    with running_dnsmasq(zone, tmp_path / "dnsmasq.log") as nameserver:
        process = await AgentProcess(
            profile_with_public_url(tmp_path), tmp_path / "keyring.json",
            "--smtp-listen", f"127.0.0.1:{free_port()}", "--relay-password", RELAY_PASSWORD,
            env={"MAILBEACON_NAMESERVER": nameserver.env},
        ).start()
        try:
            data = await status_until(
                tmp_path, lambda s: s["tracking"]["reachable"] != "unknown"
            )
        finally:
            assert await process.stop() == 0

    tracking = data["tracking"]
    assert tracking["public_url"] == PUBLIC
    assert tracking["reachable"] == "no"
    assert "Recipients cannot reach tracking" in tracking["detail"]
    assert "10.0.0.5" in tracking["detail"]
