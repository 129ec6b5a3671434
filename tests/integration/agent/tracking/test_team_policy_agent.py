"""The team's policy reaches the real ``mailbeacon agent`` and its relay obeys it:
a connected agent within 2 s of the change; an agent that was away (stopped, or its
server down) before its first send after coming back; enforced settings overlay the
rep's own, which return when the enforcement is lifted."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.settings.team import TeamPolicyFile, overlay
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.core.profile import Profile
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.stores import open_store
from mailbeacon.server.team import clear_policy_item, set_policy_item
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import AgentProcess
from tests.helpers.net import free_port
from tests.helpers.smtp import ReceivedEnvelope, SmtpSink

RELAY_PASSWORD = "relay-secret-for-tests"
WITHIN = 2.0  # seconds a connected agent has to obey a change


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def offer(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "rep@example.net"
    message["To"] = "alicja@client.example"
    message["Subject"] = f"Offer {n}"
    message.set_content("Our offer: https://example.com/offer\n")
    message.add_alternative(
        '<p>Our <a href="https://example.com/offer">offer</a>.</p>', subtype="html"
    )
    return message


@asynccontextmanager
async def serving(db: Path, port: int) -> AsyncIterator[TrackingServer]:
    """The real server on a fixed port (the agent's enrollment names it), restartable."""
    server = TrackingServer(ServerConfig(db_path=db, host="127.0.0.1", port=port))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def change(db: Path, key: str, value: str | None, enforce: bool = True) -> None:
    store = open_store(db)
    try:
        if value is None:
            clear_policy_item(store, key, iso_utc(time.time()))
        else:
            set_policy_item(store, key, value, enforce, iso_utc(time.time()))
    finally:
        store.close()


async def send(relay_port: int, sink: SmtpSink, n: int) -> ReceivedEnvelope:
    def run() -> None:
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
            client.login("mailbeacon", RELAY_PASSWORD)
            client.send_message(offer(n))

    await asyncio.to_thread(run)
    received = await sink.until(n, within=20)
    return received[n - 1]


def tracked(got: ReceivedEnvelope) -> tuple[bool, bool]:
    """(pixel, rewritten link) in what left the rep's machine."""
    return b"/o/" in got.data, b"/c/" in got.data


def agent_at(tmp_path: Path, key: str, relay_port: int, sink: SmtpSink) -> AgentProcess:
    return AgentProcess(
        tmp_path / "agent", tmp_path / "keyring.json",
        "--enroll", key, "--smtp-listen", f"127.0.0.1:{relay_port}",
        "--upstream", f"smtp://127.0.0.1:{sink.port}", "--relay-password", RELAY_PASSWORD,
    )  # fmt: skip


async def test_a_connected_agent_obeys_within_two_seconds_and_an_absent_one_on_return(
    tmp_path: Path, sink: SmtpSink
) -> None:
    db = tmp_path / "server.db"
    port = free_port()
    relay_port = free_port()
    async with serving(db, port) as server:
        key = (await server.add_user("alice")).encode()
        agent = await agent_at(tmp_path, key, relay_port, sink).start()
        try:
            assert tracked(await send(relay_port, sink, 1)) == (True, True)
            await agent.wait_log("stream from database")
            changed = time.monotonic()
            change(db, "tracking.enabled", "false")
            await agent.wait_log("team policy version 1", within=WITHIN)
            assert time.monotonic() - changed < WITHIN
            # Whatever the rep's default and the message's own control say.
            assert tracked(await send(relay_port, sink, 2)) == (False, False)
            change(db, "tracking.enabled", "true")
            await agent.wait_log("team policy version 2", within=WITHIN)
            change(db, "tracking.clicks", "false")
            await agent.wait_log("team policy version 3", within=WITHIN)
            assert tracked(await send(relay_port, sink, 3)) == (True, False)
        finally:
            await agent.stop()
        # Away while the team changes its mind: the first send after the agent's return
        # already follows the change (read before the relay opens).
        change(db, "tracking.enabled", "false")
    async with serving(db, port):
        agent = await agent_at(tmp_path, key, relay_port, sink).start()
        try:
            assert tracked(await send(relay_port, sink, 4)) == (False, False)
        finally:
            await agent.stop()


async def test_an_agent_cut_off_from_its_server_obeys_the_change_made_meanwhile(
    tmp_path: Path, sink: SmtpSink
) -> None:
    db = tmp_path / "server.db"
    port = free_port()
    relay_port = free_port()
    async with serving(db, port) as server:
        key = (await server.add_user("alice")).encode()
    agent = await agent_at(tmp_path, key, relay_port, sink).start()
    try:
        async with serving(db, port):
            await agent.wait_log("stream from database", within=20)
        change(db, "tracking.enabled", "false")  # the server is down; the agent runs on
        async with serving(db, port):
            await agent.wait_log("team policy version 1", within=20)
            assert tracked(await send(relay_port, sink, 1)) == (False, False)
    finally:
        await agent.stop()


def test_enforced_settings_overlay_the_reps_own_which_return_when_lifted(
    tmp_path: Path,
) -> None:
    profile = Profile.at(tmp_path / "p")
    own = Settings()
    own.set("defaults.log", "false")
    own.set("privacy.enabled", "false")
    own.save(profile.config_file)
    team = TeamPolicyFile.load(profile.config_dir, profile.config_file)
    policy = TeamPolicy().with_item("privacy.enabled", "true", enforce=True)
    policy = policy.with_item("defaults.log", "true", enforce=False)
    assert team.apply(policy, "https://t.example")
    saved = Settings.load(profile.config_file)
    assert saved.defaults.log is True  # a team default is written once into the settings
    assert saved.privacy.enabled is False  # an enforced one never is
    assert overlay(saved, team.policy).privacy.enabled is True
    saved.set("defaults.log", "false")  # the rep may change a default...
    saved.save(profile.config_file)
    lifted = policy.without("privacy.enabled")
    assert team.apply(lifted, "https://t.example")
    again = Settings.load(profile.config_file)
    assert again.defaults.log is False  # ...and it stands while the default is unchanged
    assert overlay(again, team.policy).privacy.enabled is False  # the rep's own again
    assert not team.apply(lifted, "https://t.example")  # nothing newer
    reloaded = TeamPolicyFile.load(profile.config_dir, profile.config_file)
    assert reloaded.policy == lifted


async def test_replies_and_sends_reach_the_team_report_and_links_use_the_team_domain(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from mailbeacon.agent.records.store import RecordsStore
    from mailbeacon.agent.tracking.team import TeamSync, TeamUrls
    from mailbeacon.core.tokens import new_message_key
    from mailbeacon.core.urls import TrackingUrls
    from mailbeacon.server.team import team_report
    from tests.helpers.records import event, sent_email

    db = tmp_path / "server.db"
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    async with serving(db, free_port()) as server:
        enrollment = await server.add_user("alice")
        profile = Profile.at(tmp_path / "rep")
        records = RecordsStore.for_profile(profile)
        try:
            sent = sent_email("client@client.example", sent_at=now)
            email_id = records.record_sent(sent)
            reply = event("reply", at=now, server_id=None, local_key="reply:<r1>",
                          email_id=email_id, contact="client@client.example")  # fmt: skip
            records.add_event(reply)
            team = TeamSync(profile.config_dir, profile.config_file, time.time)
            team.connect(enrollment.server_url, enrollment.api_token)
            team.tracked(sent.message_key)
            await team.stop()  # the send's report went
            assert team.report_replies(records) == 1
            await team.stop()
            assert team.report_replies(records) == 0  # nothing new since
        finally:
            records.close()
        store = open_store(db)
        try:
            [week] = team_report(store, "2000-01-01T00:00:00Z")
        finally:
            store.close()
        assert (week.rep, week.tracked, week.replies) == ("alice", 1, 1)

        change(db, "server.public_url", "https://track.team.example", enforce=True)
        assert await team.fetch()
        urls = TeamUrls(enrollment, time.time, lambda: team.policy.value("server.public_url"))
        key = new_message_key()
        assert urls.pixel(key, None).startswith("https://track.team.example/o/")
        plain = TrackingUrls(enrollment, time.time)
        assert plain.pixel(key, None).startswith(enrollment.server_url)
