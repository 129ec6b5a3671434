"""Faults, each bounded in time, and nothing lost (docs/promises.md: "No mail lost", "No event
lost or doubled").

Only public surfaces: ``mailbeacon server serve`` and ``mailbeacon agent`` as real
processes (killed with SIGKILL where the fault says so), SMTP in and out, pixel hits
over HTTP from a recipient address, the stream as a second subscriber, and
``mailbeacon activity --json --all`` for what the agent kept. The long variants run
with ``MAILBEACON_SOAK=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import smtplib
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.faults import (
    CuttingProxy,
    Hammer,
    html_mail,
    pixel_of,
    send_all_async,
    tag_of,
)
from tests.e2e.harness import (
    NotificationLog,
    Rep,
    ServerProcess,
    need_programs,
    need_root,
    notified_event_ids,
    read_stream,
)
from tests.helpers.agent_process import AgentProcess
from tests.helpers.smtp import SmtpSink

RECIPIENTS = 10


@dataclass
class Stack:
    """A tracking server process, a rep's agent process and the upstream sink."""

    server: ServerProcess
    user: dict[str, Any]
    rep: Rep
    sink: SmtpSink
    agent: AgentProcess
    notes: NotificationLog

    async def restart_agent(self) -> None:
        """A fresh agent process on the same profile (after a kill)."""
        await self.notes.close()
        self.agent = self.rep.agent(self.user["enrollment_key"], self.sink.port)
        await self.agent.start()
        self.notes = NotificationLog(self.agent)


@contextlib.asynccontextmanager
async def running_stack(
    tmp_path: Path, server: ServerProcess | None = None, sink: SmtpSink | None = None
) -> AsyncIterator[Stack]:
    """Server, sink and agent up; all stopped (bounded) at the end."""
    server = server or ServerProcess(tmp_path / "server")
    await server.astart()
    sink = sink or SmtpSink()
    sink.start()
    rep = Rep(tmp_path / "rep")
    agent: AgentProcess | None = None
    stack: Stack | None = None
    try:
        user = server.add_user("rep")
        agent = rep.agent(user["enrollment_key"], sink.port)
        await agent.start()
        stack = Stack(server, user, rep, sink, agent, NotificationLog(agent))
        yield stack
    finally:
        if stack is not None:
            agent = stack.agent
        if agent is not None and agent.proc is not None and agent.proc.returncode is None:
            await agent.stop()
        if stack is not None:
            await stack.notes.close()
        sink.stop()
        server.stop()


async def tracked_pixels(stack: Stack, count: int = RECIPIENTS) -> list[str]:
    """Send ``count`` one-recipient emails; the pixel URL of each as delivered."""
    await send_all_async(
        stack.rep, [html_mail(n, f"r{n}@client.example") for n in range(count)]
    )
    delivered = await stack.sink.until(count, within=30)
    return [pixel_of(d) for d in delivered]


def server_events(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events (not revisions) among stream messages."""
    return [m for m in messages if m.get("type") in ("open", "click")]


async def stored_on_server(stack: Stack, answered: list[int]) -> list[dict[str, Any]]:
    """Every event the server stored, read as a second subscriber from the start, once
    every answered hit (by its User-Agent tag) has come by."""
    missing = set(answered)

    def complete(messages: list[dict[str, Any]]) -> bool:
        if messages:
            tag = tag_of(messages[-1].get("user_agent", ""))
            if tag is not None:
                missing.discard(tag)
        return not missing

    try:
        messages = await read_stream(stack.server.url, stack.user["api_token"], complete, 60)
    except AssertionError as exc:
        raise AssertionError(f"answered hits never stored: {sorted(missing)[:50]}; {exc}") from None
    return server_events(messages)


async def agent_has_exactly(stack: Stack, ids: set[int], within: float = 90.0) -> None:
    """``activity --json --all`` lists each of the server's event ids exactly once."""
    rows = await stack.rep.activity_until(
        lambda rows: ids <= {row["event"] for row in rows}, within
    )
    seen = Counter(row["event"] for row in rows if row["event"] is not None)
    doubled = {event: n for event, n in seen.items() if n > 1}
    assert not doubled, f"events stored twice by the agent: {doubled}"
    assert set(seen) == ids, f"unknown events: {set(seen) - ids}"


def no_event_notified_twice(lines: list[dict[str, Any]]) -> None:
    """No server event is in two notifications (single or summary)."""
    ids = Counter(notified_event_ids(lines))
    doubled = {event: n for event, n in ids.items() if n > 1}
    assert not doubled, f"notified twice: {doubled}"


# ---------------------------------------------------------------- (a) server killed


async def _server_kills(tmp_path: Path, hits: int, kills: int, within: float) -> None:
    """``hits`` pixel hits; the server is SIGKILLed and restarted ``kills`` times while
    they run. Every answered hit is stored, the agent holds every event once."""
    async with running_stack(tmp_path) as stack:
        pixels = await tracked_pixels(stack)
        hammer = Hammer(lambda n: pixels[n % len(pixels)], hits)
        async with asyncio.timeout(within):
            hammer.start()
            for k in range(kills):
                await hammer.until_answered(hits * (k + 1) // (kills + 1))
                hammer.up.clear()
                stack.server.kill()
                await stack.server.astart()
                hammer.up.set()
            await hammer.done()
        assert sorted(hammer.answered) == list(range(hits))
        assert hammer.failures > 0, "the kills did not interrupt any hit"

        events = await stored_on_server(stack, hammer.answered)
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids))
        per_message = Counter(e["message"] for e in events)
        answered_per_pixel = Counter(n % len(pixels) for n in hammer.answered)
        assert len(per_message) == len(pixels)
        # A hit committed just before a kill but never answered is retried: one more.
        assert sorted(per_message.values()) >= sorted(answered_per_pixel.values())
        assert len(ids) - hits <= hammer.failures

        await agent_has_exactly(stack, set(ids))
        no_event_notified_twice(stack.notes.lines)


async def test_server_killed_during_pixel_hits_every_answered_hit_stored_once(
    tmp_path: Path,
) -> None:
    """The tracking server is SIGKILLed twice during 2,000 pixel hits and restarted;
    the recipients' clients retry what failed. Every answered hit is stored (the server
    answers only after the commit), and the agent ends up with every stored event once."""
    await _server_kills(tmp_path, hits=2_000, kills=2, within=90)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_server_killed_during_pixel_hits_soak(tmp_path: Path) -> None:
    """As above: 10,000 hits, 8 kills."""
    await _server_kills(tmp_path, hits=10_000, kills=8, within=400)


# ---------------------------------------------------------------- (b) stream cut

# After a healthy session ends, how soon the agent must be back (its first backoff is
# 0.1-0.2 s; a second is plenty on a busy machine).
RECONNECT_S = 2.0


async def _stream_cuts(tmp_path: Path, hits: int, cuts: int, reconnect_within: float) -> None:
    """``hits`` pixel hits in ``cuts + 1`` rounds; in each round but the last, the TCP
    proxy between agent and server resets the stream while events are flowing. The
    agent must reconnect within ``reconnect_within`` and, in the end, hold every server
    event exactly once."""
    server = ServerProcess(tmp_path / "server")
    async with CuttingProxy("127.0.0.1", server.port) as proxy:
        server.public_url = f"http://127.0.0.1:{proxy.port}"  # the agent streams via it
        async with running_stack(tmp_path, server) as stack:
            pixels = [
                p.replace(server.public_url, server.url, 1) for p in await tracked_pixels(stack)
            ]
            hammer = Hammer(lambda n: pixels[n % len(pixels)], hits, workers=8, allowed=0)
            per_round = hits // (cuts + 1)
            hammer.start()
            for k in range(cuts):
                await hammer.release(per_round * (k + 1))
                await proxy.cut_when_streaming()
                try:
                    await proxy.until_accepted(k + 2, within=reconnect_within)
                except TimeoutError:
                    raise AssertionError(
                        f"cut {k + 1}: the agent was not back within {reconnect_within}s"
                    ) from None
            await hammer.release(hits)
            async with asyncio.timeout(120):
                await hammer.done()
            assert proxy.cuts == cuts

            events = await stored_on_server(stack, hammer.answered)
            assert len(events) == hits  # the server itself was never disturbed
            await agent_has_exactly(stack, {e["id"] for e in events})
            no_event_notified_twice(stack.notes.lines)


async def test_stream_cut_twenty_times_misses_and_doubles_nothing(tmp_path: Path) -> None:
    """20 cuts during 2,000 events: after each the agent is back within 2 s (a session
    that carried events was healthy, so no growing backoff), and in the end ``activity``
    holds every server event exactly once."""
    await _stream_cuts(tmp_path, hits=2_000, cuts=20, reconnect_within=RECONNECT_S)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_stream_cut_twenty_times_during_5000_events_soak(tmp_path: Path) -> None:
    """As above, during 5,000 events."""
    await _stream_cuts(tmp_path, hits=5_000, cuts=20, reconnect_within=RECONNECT_S)


# ---------------------------------------------------------------- (c) upstream 421


async def _upstream_421(tmp_path: Path, refusals: int, within: float) -> None:
    async with running_stack(tmp_path) as stack:
        stack.sink.fail("421 4.3.2 Service shutting down, try later", times=refusals)
        messages = [html_mail(n, f"r{n}@client.example") for n in range(5)]
        await send_all_async(stack.rep, messages)  # all 250: queued durably
        await stack.sink.until(len(messages), within=within)
        by_id = stack.sink.messages_by_id()
        assert sorted(by_id) == sorted(str(m["Message-ID"]) for m in messages)
        assert all(len(copies) == 1 for copies in by_id.values()), by_id
        assert stack.sink.handler.transactions == len(messages) + refusals
        assert stack.agent.proc is not None and stack.agent.proc.returncode is None


@pytest.mark.slow
async def test_upstream_421_then_accepting_delivers_everything_once(tmp_path: Path) -> None:
    """The upstream answers 421 (a connection-level "try later"); the outbox backs off
    (the first retry is ~30 s later: real life, no shortcut from outside) and then
    delivers every queued message exactly once.

    A soak: half a minute of waiting kept the CI run near its 20-minute limit. In CI
    the same refusals are retried and delivered once through the real outbox and a
    real sink with a short backoff
    (tests/integration/agent/sending/test_outbox.py::test_temporary_refusals_are_retried_and_delivered_once)."""
    await _upstream_421(tmp_path, refusals=1, within=60)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_upstream_421_for_a_while_soak(tmp_path: Path) -> None:
    """As above, with three 421s in a row (backoff ~30 + 60 + 120 s)."""
    await _upstream_421(tmp_path, refusals=3, within=400)


# ---------------------------------------------------------------- (d) agent killed


async def test_agent_killed_mid_delivery_loses_nothing_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """The agent is SIGKILLed while the upstream is still receiving a message's DATA
    (the sink is slow); restarted, it delivers every accepted message exactly once.

    The killed transaction never got its 250, so the sink discards it (aiosmtpd drops a
    transaction whose connection is lost) and it is sent again: not a duplicate.
    The remaining window, which SMTP itself cannot close: killed after the upstream's
    250 to DATA but before the outbox renamed the item to ``sent/`` (one rename and an
    fsync, about a millisecond) -> the upstream has it and it is sent once more on
    restart. This test kills outside that window, deterministically.
    """
    count = 20
    sink = SmtpSink()
    sink.handler.data_delay = 0.3  # a slow upstream: delivery takes a while
    in_data = asyncio.Event()
    loop = asyncio.get_running_loop()
    original = sink.handler.handle_DATA

    async def watched_data(server: Any, session: Any, envelope: Any) -> str:
        if len(sink.received) >= 5:
            loop.call_soon_threadsafe(in_data.set)
        return await original(server, session, envelope)

    sink.handler.handle_DATA = watched_data  # type: ignore[method-assign]
    async with running_stack(tmp_path, sink=sink) as stack:
        messages = [html_mail(n, f"r{n}@client.example") for n in range(count)]
        await send_all_async(stack.rep, messages)
        async with asyncio.timeout(30):
            await in_data.wait()  # the 6th message is on the wire right now
        await stack.agent.kill()
        before = len(stack.sink.received)
        await stack.restart_agent()
        await stack.sink.until(count, within=60)
        by_id = stack.sink.messages_by_id()
        assert sorted(by_id) == sorted(str(m["Message-ID"]) for m in messages)
        doubled = {k: len(v) for k, v in by_id.items() if len(v) > 1}
        assert not doubled, f"sent twice: {doubled} (killed with {before} delivered)"
        assert stack.sink.handler.transactions > count  # one DATA was cut and re-sent


# ---------------------------------------------------------------- (e) disk full


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; the filler file."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(100_000):  # bounded: the tmpfs is a few MB
            try:
                os.write(fd, b"\0" * 1024)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    finally:
        os.close(fd)
    return filler


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "2m") -> Any:
    """``path`` as a tiny tmpfs; always unmounted."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def _send_one(rep: Rep, n: int) -> tuple[int, bytes]:
    """One message; the relay's reply to DATA (or to the first failing command)."""
    message = html_mail(n, f"d{n}@client.example")
    message.add_attachment(os.urandom(50_000), maintype="application", subtype="pdf",
                           filename=f"offer-{n}.pdf")
    try:
        with smtplib.SMTP("127.0.0.1", rep.relay_port, timeout=30) as client:
            client.login("mailbeacon", rep.relay_password)
            client.send_message(message)
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        return exc.smtp_code, error if isinstance(error, bytes) else error.encode()
    return 250, b""


@dataclass
class DiskFull:
    """What the disk-full scenario left behind."""

    replies_when_full: list[tuple[int, bytes]]
    delivered: list[tuple[str, ...]]
    records: dict[str, tuple[int, str]]  # recipient -> (exit code, `record --json` output)
    queued_left: int


async def _disk_full(tmp_path: Path) -> DiskFull:
    """One message through, the data folder filled, two messages refused, space freed,
    one more through; then every record read by a fresh process."""
    need_root("mounting a tmpfs as the profile's data folder")
    need_programs("mount", "umount")
    data = Rep(tmp_path / "rep").profile / "data"
    with small_tmpfs(data):
        async with running_stack(tmp_path) as stack:
            assert stack.rep.profile / "data" == data
            code, reply = await asyncio.to_thread(_send_one, stack.rep, 1)
            assert code == 250, reply
            await stack.sink.until(1)

            filler = await asyncio.to_thread(_fill, data)
            full = [await asyncio.to_thread(_send_one, stack.rep, n) for n in (2, 3)]
            assert stack.agent.proc is not None and stack.agent.proc.returncode is None
            assert len(stack.sink.received) == 1

            filler.unlink()
            code, reply = await asyncio.to_thread(_send_one, stack.rep, 4)
            assert code == 250, reply
            got = await stack.sink.until(2)
        # Stopped cleanly; a fresh process reads everything the full disk left behind.
        records = {}
        for n in (1, 2, 3, 4):
            code, out, _err = await stack.rep.cli("record", f"d{n}@client.example", "--json")
            records[f"d{n}@client.example"] = (code, out)
        queued = len(list((data / "outbox" / "queue").glob("*.eml")))
    return DiskFull(full, [g.rcpt_tos for g in got], records, queued)


async def test_profile_disk_full_answers_451_and_corrupts_nothing(tmp_path: Path) -> None:
    """The profile's data folder is a 2 MB tmpfs, filled up: the relay answers 451 (try
    later), never 250, for mail it cannot queue, and keeps no trace of it (no contact's
    timeline says it was sent); the agent keeps running; once space is free a new
    message goes through and the earlier records still read fine."""
    outcome = await _disk_full(tmp_path)
    assert [code for code, _reply in outcome.replies_when_full] == [451, 451], outcome
    assert outcome.delivered == [("d1@client.example",), ("d4@client.example",)]
    for rcpt in ("d1@client.example", "d4@client.example"):
        code, out = outcome.records[rcpt]
        assert code == 0, out
        assert [e["kind"] for e in json.loads(out)["timeline"]] == ["sent"]
    for rcpt in ("d2@client.example", "d3@client.example"):
        code, out = outcome.records[rcpt]
        assert code == 1, f"{rcpt} has a record of mail that was refused:\n{out[:600]}"
    assert outcome.queued_left == 0
