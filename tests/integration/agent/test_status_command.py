"""``mailbeacon status --json`` against the real ``mailbeacon agent`` process (issue 20):
sending not set up, failing (the upstream a closed port, mail waiting), ok (a real SMTP
sink), tracking never reachable on 127.0.0.1, and the settings alone once the agent is
gone. Then ``delivery_delayed``: told once when a real sink is down with mail waiting,
and once again when it is back."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.profile import Profile
from tests.helpers.agent_listener import Listener, relay_runtime
from tests.helpers.agent_process import RELAY_PASSWORD, AgentProcess, run_cli
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink

LOOPBACK_SENTENCE = "127.0.0.1 is this computer"

Status = dict[str, Any]


def profile_at(tmp_path: Path, upstream: str = "") -> Path:
    """A profile whose embedded server takes a free port (tests run side by side)."""
    root = tmp_path / "agent"
    settings = Settings()
    settings.set("server.listen", "127.0.0.1:0")
    settings.set("upstream.url", upstream)
    settings.save(Profile.at(root).config_file)
    return root


async def agent(tmp_path: Path, relay_port: int, *upstream: str, saved: str = ""
                ) -> AgentProcess:
    return await AgentProcess(
        profile_at(tmp_path, saved), tmp_path / "keyring.json",
        "--smtp-listen", f"127.0.0.1:{relay_port}", "--relay-password", RELAY_PASSWORD,
        *upstream,
    ).start()


async def status(tmp_path: Path) -> Status:
    code, out, err = await run_cli(tmp_path / "agent", tmp_path / "keyring.json",
                                   "status", "--json")
    assert code in (0, 1), err
    data: Status = json.loads(out)
    return data


async def status_until(tmp_path: Path, test: Callable[[Status], bool], within: float = 20.0
                       ) -> Status:
    """The status once ``test`` holds (the agent writes it as things change)."""
    last: Status = {}
    try:
        async with asyncio.timeout(within):
            while True:
                last = await status(tmp_path)
                if test(last):
                    return last
    except TimeoutError:
        raise AssertionError(f"status never matched; last: {last}") from None


async def send(relay_port: int, count: int) -> None:
    def run() -> None:
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
            client.login("mailbeacon", RELAY_PASSWORD)
            for n in range(count):
                message = EmailMessage()
                message["From"] = "rep@rep.example"
                message["To"] = f"r{n}@client.example"
                message["Subject"] = f"Message {n}"
                message.set_content("Hello")
                client.send_message(message)

    await asyncio.to_thread(run)


def closed_port() -> int:
    return free_port()  # nothing listens there: every connection is refused


async def test_not_configured_then_stale_after_kill(tmp_path: Path) -> None:
    relay_port = free_port()
    process = await agent(tmp_path, relay_port)
    try:
        await send(relay_port, 1)
        data = await status_until(
            tmp_path, lambda s: s["agent_running"] and s["sending"]["waiting"] == 1
        )
        assert data["sending"]["state"] == "not_configured"
        assert "No outgoing mail server" in data["sending"]["detail"]
        assert data["tracking"]["reachable"] == "no"
        assert LOOPBACK_SENTENCE in data["tracking"]["detail"]
        assert data["tracking"]["public_url"].startswith("http://127.0.0.1:")
        assert data["paused_until"] is None
        data = await status_until(tmp_path, lambda s: s["stream"]["state"] == "connected")
    finally:
        await process.kill()
    # A killed agent leaves its file: its pid is dead, so the settings speak instead.
    assert (tmp_path / "agent" / "data" / "status.json").exists()
    data = await status(tmp_path)
    assert data["agent_running"] is False
    assert data["sending"] == {
        "state": "not_configured", "waiting": 1, "server": "",
        "detail": "No outgoing mail server is set up: set up your email account. "
        "1 email waits in the outbox.",
    }
    assert data["stream"]["state"] == "offline"


async def test_failing_with_mail_waiting_then_clean_stop(tmp_path: Path) -> None:
    relay_port, upstream_port = free_port(), closed_port()
    # In the settings this time, so that they can speak once the agent is gone.
    process = await agent(tmp_path, relay_port, saved=f"smtp://127.0.0.1:{upstream_port}")
    try:
        await send(relay_port, 2)
        data = await status_until(
            tmp_path, lambda s: s["sending"]["state"] == "failing"
            and s["sending"]["waiting"] == 2
        )
        assert data["agent_running"] is True
        assert data["sending"]["server"] == f"127.0.0.1:{upstream_port}"
        assert "is not taking mail" in data["sending"]["detail"]
        told = await process.notification(within=10)
        assert told["type"] == "delivery_delayed"
        assert f"127.0.0.1:{upstream_port}" in told["title"]
        assert "in the outbox" in told["body"]  # 1 or 2: the first may fail alone
    finally:
        assert await process.stop() == 0
    assert not (tmp_path / "agent" / "data" / "status.json").exists()
    data = await status(tmp_path)
    assert data["agent_running"] is False
    assert data["sending"]["state"] == "failing"
    assert data["sending"]["waiting"] == 2
    assert "not running" in data["sending"]["detail"]


async def test_ok_with_a_real_sink(tmp_path: Path) -> None:
    relay_port = free_port()
    with SmtpSink() as sink:
        process = await agent(tmp_path, relay_port, "--upstream", f"smtp://127.0.0.1:{sink.port}")
        try:
            await send(relay_port, 1)
            await sink.until(1)
            data = await status_until(
                tmp_path, lambda s: s["sending"]["waiting"] == 0
                and s["stream"]["state"] == "connected"
            )
            assert data["sending"]["state"] == "ok"
            assert data["tracking"]["reachable"] == "no"  # 127.0.0.1: never "yes"
            code, out, _err = await run_cli(tmp_path / "agent", tmp_path / "keyring.json",
                                            "status")
            assert code == 1  # tracking is not reachable by recipients
            assert out.startswith("Tracking is not reachable by recipients")
        finally:
            await process.stop()


async def test_delivery_delayed_once_per_outage_and_once_on_recovery(tmp_path: Path) -> None:
    relay_port, upstream_port = free_port(), free_port()
    listener = Listener()
    runtime = relay_runtime(
        Profile.at(profile_at(tmp_path)), relay_port, f"smtp://127.0.0.1:{upstream_port}",
        listener,
    )
    await runtime.start()
    try:
        assert runtime.outbox is not None
        await send(relay_port, 3)  # the sink is down: all three wait
        await listener.until(lambda: len(listener.delayed()) == 1)
        [down] = listener.delayed()
        assert down.title == (
            f"Emails are waiting: 127.0.0.1:{upstream_port} is not taking mail"
        )
        # The first try may fail before the last of the three is queued: the body
        # counts what waited then (its plural forms are the wording tests' business).
        assert re.search(r"(1 email waits|[23] emails wait) in the outbox", down.body), down.body
        assert "Connection refused" in down.body or "refused" in down.body.lower()
        # Still down: more tries, more mail, no second notification.
        await send(relay_port, 1)
        runtime.outbox.retry_now()
        await listener.until(
            lambda: listener.statuses[-1].report is not None
            and listener.statuses[-1].report.sending.waiting == 4
        )
        assert len(listener.delayed()) == 1

        with SmtpSink(port=upstream_port) as sink:
            runtime.outbox.retry_now()  # the rep's "Retry now" (the backoff is 30 s)
            await sink.until(4)
            await listener.until(lambda: len(listener.delayed()) == 2)
        up = listener.delayed()[1]
        assert up.title == "Delivered 4 waiting emails"
        assert up.body == f"127.0.0.1:{upstream_port} is taking mail again."
        report = listener.statuses[-1].report
        assert report is not None and report.sending.state == "ok"
    finally:
        await runtime.stop()
