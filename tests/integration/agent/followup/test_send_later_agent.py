"""Send later through the real ``mailbeacon agent`` process and the real command line:
across a restart, across a time that passed while the agent was stopped, and
``schedule list|cancel|send-now`` acting on the running agent (issue 17)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import AgentProcess, run_cli, send_through_relay
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink

RELAY_PASSWORD = "relay-secret"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def later(to: str, subject: str, at: float) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "rep@example.net"
    message["To"] = to
    message["Subject"] = subject
    message["X-MailBeacon-Send-At"] = datetime.fromtimestamp(at, UTC).isoformat()
    message.add_alternative("<p>Our offer</p>", subtype="html")
    return message


async def _until_wall_clock(at: float) -> None:
    """Let the real time pass ``at`` while the agent is stopped (what the test is about)."""
    await asyncio.sleep(max(0.0, at - time.time()) + 0.05)


async def test_send_later_across_a_restart_a_stopped_agent_and_the_command_line(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = (await server.add_user("rep")).encode()
    relay_port = free_port()
    profile, keyring = tmp_path / "agent", tmp_path / "keyring.json"

    def agent() -> AgentProcess:
        return AgentProcess(
            profile, keyring, "--enroll", enrollment,
            "--smtp-listen", f"127.0.0.1:{relay_port}",
            "--upstream", f"smtp://127.0.0.1:{sink.port}", "--relay-password", RELAY_PASSWORD,
        )  # fmt: skip

    running = await agent().start()
    far = time.time() + 3600
    for to, subject, at in (
        ("c@client.example", "Cancelled", far),
        ("d@client.example", "Sent now", far + 1),
    ):
        await asyncio.to_thread(send_through_relay, relay_port, later(to, subject, at))
    code, out, _ = await run_cli(profile, keyring, "schedule", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [item["subject"] for item in listed] == ["Cancelled", "Sent now"]
    assert all(item["send_at"].endswith("Z") and item["state"] == "waiting" for item in listed)
    ids = {item["subject"]: item["id"] for item in listed}
    assert (await run_cli(profile, keyring, "schedule", "cancel", str(ids["Cancelled"])))[0] == 0
    assert (await run_cli(profile, keyring, "schedule", "send-now", str(ids["Sent now"])))[0] == 0
    [now] = await sink.until(1, within=10)  # the running agent took the change up
    assert now.rcpt_tos == ("d@client.example",)
    assert b"X-MailBeacon" not in now.data
    code, _, err = await run_cli(profile, keyring, "schedule", "cancel", str(ids["Sent now"]))
    assert code == 1 and "is waiting" in err

    soon = time.time() + 3
    for to, subject in (("a@client.example", "Across a restart"),
                        ("b@client.example", "While stopped")):  # fmt: skip
        await asyncio.to_thread(send_through_relay, relay_port, later(to, subject, soon))
    await running.stop()  # the restart: the two "soon" ones fall due while it is down
    await _until_wall_clock(soon + 0.5)
    running = await agent().start()
    try:
        got = await sink.until(3, within=15)
        assert sorted(g.rcpt_tos[0] for g in got[1:]) == ["a@client.example", "b@client.example"]
        late = [await running.notification(within=10) for _ in range(2)]
        assert sorted(n["title"] for n in late) == [
            "Sent late: “Across a restart”",
            "Sent late: “While stopped”",
        ]
        assert all(n["type"] == "sent_late" and n["email_id"] for n in late)
        code, out, _ = await run_cli(profile, keyring, "schedule", "list", "--json")
        assert json.loads(out) == []
    finally:
        await running.stop()
    running = await agent().start()  # and once more: nothing goes twice
    try:
        await running.wait_log("outbox: 0 message(s) waiting")
    finally:
        await running.stop()
    assert len(sink.handler.received) == 3  # the cancelled one never went
