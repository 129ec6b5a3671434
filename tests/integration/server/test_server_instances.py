"""Several instances, one stream: two ``server serve`` processes on one PostgreSQL,
behind nginx on loopback (balancer.py), as a team runs them.

Real parts only: PostgreSQL started by the tests, the server as child processes, nginx
balancing round robin, recipients and the rep's agent (a WebSocket subscriber) on
their own loopback addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import PostgresUrl
from tests.helpers.postgres import running_cluster
from tests.helpers.server import (
    WAIT,
    add_user_process,
    new_mail,
    query,
    recipient,
    served_at,
    serving_process,
)
from tests.integration.server.balancer import Balancer, running_balancer

pytestmark = pytest.mark.needs_program("nginx")

PROXIED = ("--trusted-proxy", "127.0.0.1/32")
AGENT = "127.0.0.1"  # the rep's machine; recipients are on 127.0.0.9
SPREAD_HITS = 40
KILL_AFTER = 150
SENDERS = 8
MAX_PER_SENDER = 400


@contextlib.asynccontextmanager
async def _team(tmp_path: Path, url: str) -> AsyncIterator[tuple[Enrollment, list[Any], Balancer]]:
    """A rep, two instances on one database, nginx in front: (rep at nginx's URL,
    [instance processes], balancer)."""
    profile, db = tmp_path / "profile", PostgresUrl(url)
    rep = await add_user_process(profile, db, "alice")
    async with (
        serving_process(profile, db, *PROXIED) as (one, one_url),
        serving_process(profile, db, *PROXIED) as (two, two_url),
    ):
        ports = [int(u.rsplit(":", 1)[1]) for u in (one_url, two_url)]
        with running_balancer(tmp_path / "nginx", ports) as balancer:
            yield served_at(rep, balancer.url), [(one, one_url), (two, two_url)], balancer


class Progress:
    """Something arrived (an event, an answer): what the test waits on, never a sleep."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def tick(self) -> None:
        self._changed.set()

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(3 * WAIT):
            while not check():
                self._changed.clear()
                await self._changed.wait()


async def _collect(
    url: str, token: str, after: int, into: list[dict[str, Any]], progress: Progress
) -> None:
    """Stream events into ``into`` until the connection ends."""
    with contextlib.suppress(ConnectionClosed, OSError):
        async with connect(
            url.replace("http://", "ws://") + f"/v1/stream?after={after}",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=WAIT,
        ) as websocket:
            async for raw in websocket:
                message = json.loads(raw)
                if message["type"] != "revise":
                    into.append(message)
                    progress.tick()


async def test_hits_spread_over_both_instances_reach_a_subscriber_on_either(
    tmp_path: Path, postgres_url: str
) -> None:
    async with _team(tmp_path, postgres_url) as (alice, instances, balancer):
        seen: list[list[dict[str, Any]]] = [[], []]
        progress = Progress()
        subscribers = [
            asyncio.create_task(_collect(url, alice.api_token, 0, into, progress))
            for (_, url), into in zip(instances, seen, strict=True)
        ]
        mails = [new_mail(alice) for _ in range(SPREAD_HITS)]
        async with recipient() as client:
            for mail in mails:
                assert (await client.get(mail.pixel())).status_code == 200
        sent = {mail.message for mail in mails}
        for into in seen:
            await progress.until(lambda into=into: {e["message"] for e in into} >= sent)
        for task in subscribers:
            task.cancel()
        await asyncio.gather(*subscribers, return_exceptions=True)
    for into in seen:
        messages = [e["message"] for e in into]
        assert sorted(messages) == sorted(sent)  # each once
        ids = [e["id"] for e in into]
        assert ids == sorted(ids)
    # Each instance answered some of the hits (round robin), and each subscriber got
    # the other instance's too.
    assert len(set(balancer.upstreams())) == 2


async def test_a_killed_instance_loses_no_answered_hit_and_the_agent_resumes_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    async with _team(tmp_path, postgres_url) as (alice, instances, _balancer):
        received: list[dict[str, Any]] = []
        progress = Progress()
        victim, victim_url = instances[0]
        # The agent is connected to the instance that will be killed.
        subscriber = asyncio.create_task(
            _collect(victim_url, alice.api_token, 0, received, progress)
        )
        answered: list[str] = []
        enough = asyncio.Event()
        stop = asyncio.Event()

        async def send() -> None:
            async with recipient(limits=httpx.Limits(max_keepalive_connections=0)) as client:
                for _ in range(MAX_PER_SENDER):
                    if stop.is_set():
                        return
                    mail = new_mail(alice)
                    with contextlib.suppress(httpx.TransportError):
                        response = await client.get(mail.pixel())
                        if response.status_code == 200:
                            answered.append(mail.message)
                            progress.tick()
                    if len(answered) >= KILL_AFTER:
                        enough.set()

        senders = [asyncio.create_task(send()) for _ in range(SENDERS)]
        async with asyncio.timeout(6 * WAIT):
            await enough.wait()
        victim.send_signal(signal.SIGKILL)  # mid-traffic
        await victim.wait()
        async with asyncio.timeout(WAIT):
            await subscriber  # its connection ended with the instance
        target = len(answered) + KILL_AFTER  # as many again on the survivor
        await progress.until(lambda: len(answered) >= target)
        stop.set()
        await asyncio.gather(*senders)
        # The agent reconnects through nginx (to the survivor) after the last event it
        # has, as the agent does.
        last = max((e["id"] for e in received), default=0)
        subscriber = asyncio.create_task(
            _collect(alice.server_url, alice.api_token, last, received, progress)
        )
        wanted = set(answered)
        await progress.until(lambda: {e["message"] for e in received} >= wanted)
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)

    messages = [e["message"] for e in received]
    assert set(answered) <= set(messages), "an answered hit was lost"
    assert len(messages) == len(set(messages)), "a hit was streamed twice"
    ids = [e["id"] for e in received]
    assert ids == sorted(ids)


OUTAGE_SECONDS = 10.0


async def test_postgresql_down_for_ten_seconds_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """PostgreSQL stops (``pg_ctl stop -m fast``: every connection cut) for 10 s while
    recipients keep hitting both instances through nginx: every hit answered before,
    during and after is in PostgreSQL exactly once afterwards, the rep's agent gets
    each once, and the servers recover by themselves (the outage spool, spool.py)."""
    with running_cluster() as cluster:
        url = cluster.new_database()
        profile, db = tmp_path / "profile", PostgresUrl(url)
        rep = await add_user_process(profile, db, "alice")
        spools = [("--spool-dir", str(tmp_path / f"spool{n}")) for n in (1, 2)]
        logs: tuple[list[str], list[str]] = ([], [])
        async with (
            serving_process(profile, db, *PROXIED, *spools[0], log=logs[0]) as (_, one_url),
            serving_process(profile, db, *PROXIED, *spools[1], log=logs[1]) as (_, two_url),
        ):
            ports = [int(u.rsplit(":", 1)[1]) for u in (one_url, two_url)]
            with running_balancer(tmp_path / "nginx", ports) as balancer:
                alice = served_at(rep, balancer.url)
                received: list[dict[str, Any]] = []
                progress = Progress()
                subscriber = asyncio.create_task(
                    _collect(alice.server_url, alice.api_token, 0, received, progress)
                )
                answered: list[str] = []
                failed: list[int] = []
                stop = asyncio.Event()

                async def send() -> None:
                    async with recipient() as client:
                        for _ in range(MAX_PER_SENDER * 10):
                            if stop.is_set():
                                return
                            mail = new_mail(alice)
                            response = await client.get(mail.pixel())
                            if response.status_code == 200:
                                answered.append(mail.message)
                                progress.tick()
                            else:
                                failed.append(response.status_code)
                            await asyncio.sleep(0.01)  # ~100 hits/s per sender

                senders = [asyncio.create_task(send()) for _ in range(2)]
                await progress.until(lambda: len(answered) >= 50)
                await asyncio.to_thread(cluster.stop, "fast")
                down_from = len(answered)
                async with httpx.AsyncClient(timeout=WAIT) as probe:
                    health = (await probe.get(f"{one_url}/healthz")).json()
                    required = await probe.get(f"{one_url}/healthz?database=required")
                assert health == {"status": "ok", "database": "unreachable"}
                assert required.status_code == 503
                await asyncio.sleep(OUTAGE_SECONDS)  # the outage, with traffic going on
                during = len(answered) - down_from
                await asyncio.to_thread(cluster.start)
                back_from = len(answered)
                await progress.until(lambda: len(answered) >= back_from + 100)
                stop.set()
                await asyncio.gather(*senders)
                wanted = set(answered)
                try:
                    await progress.until(lambda: {e["message"] for e in received} >= wanted)
                except TimeoutError:
                    missing = wanted - {e["message"] for e in received}
                    pytest.fail(
                        f"{len(missing)} of {len(wanted)} answered hits never streamed"
                        f" (subscriber {'gone' if subscriber.done() else 'connected'},"
                        f" {len(received)} received; spool files left:"
                        f" {[p.name for n in (1, 2) for p in (tmp_path / f'spool{n}').glob('*')]})"
                        "\n--- first instance ---\n" + "\n".join(logs[0][-40:])
                        + "\n--- second instance ---\n" + "\n".join(logs[1][-40:])
                    )
                async with httpx.AsyncClient(timeout=WAIT) as probe:
                    for base in (one_url, two_url):
                        health = (await probe.get(f"{base}/healthz")).json()
                        assert health == {"status": "ok", "database": "ok"}
                subscriber.cancel()
                await asyncio.gather(subscriber, return_exceptions=True)
        stored = query(db, "SELECT message, count(*) FROM events GROUP BY message")
        spooled_left = [p for n in (1, 2) for p in (tmp_path / f"spool{n}").glob("*.jsonl")]

    assert failed == []  # recipients were answered all along
    assert during > 100  # hits answered while PostgreSQL was down
    counts = dict(stored)
    assert set(answered) <= set(counts), "an answered hit is not in PostgreSQL"
    assert all(count == 1 for count in counts.values()), "a hit was stored twice"
    messages = [e["message"] for e in received]
    assert set(answered) <= set(messages)
    assert len(messages) == len(set(messages)), "a hit was streamed twice"
    assert spooled_left == []  # replayed, and the spool files gone
    for log in logs:  # what the operator reads: the outage, said in one line each
        said = [line for line in log if "the database does not answer (" in line]
        assert said, log
        assert not any(line.startswith("Traceback") for line in log), "\n".join(log)
        assert not any("(\t" in line or "( " in line for line in said), said
