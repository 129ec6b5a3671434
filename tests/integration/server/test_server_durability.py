"""Neither kill -9 nor SIGTERM of ``mailbeacon server serve`` under load loses an answered
hit (docs/promises.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import Database, ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    WAIT,
    add_user_process,
    new_mail,
    query,
    recipient,
    served_at,
    serving_process,
)

WORKERS = 32
KILL_AFTER = 300  # answered hits before the kill
MAX_PER_WORKER = 2000


@contextlib.asynccontextmanager
async def _serving(
    profile: Path, db: Database
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    async with serving_process(profile, db) as (process, url):
        yield process, int(url.rsplit(":", 1)[1])


def _at(enrollment: Enrollment, port: int) -> Enrollment:
    return Enrollment(
        f"http://127.0.0.1:{port}", enrollment.user_id, enrollment.api_token, enrollment.signing_key
    )


async def _stream(port: int, token: str, after: int, into: list[dict[str, Any]]) -> None:
    """Collect events until the connection ends."""
    with contextlib.suppress(ConnectionClosed, OSError):
        async with connect(
            f"ws://127.0.0.1:{port}/v1/stream?after={after}",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=WAIT,
        ) as websocket:
            async for raw in websocket:
                message = json.loads(raw)
                if message["type"] != "revise":
                    into.append(message)


async def test_every_answered_hit_survives_kill_9_and_ids_continue(
    tmp_path: Path, database: Database
) -> None:
    profile, db = tmp_path / "profile", database
    user = await add_user_process(profile, db)
    answered: list[str] = []
    streamed: list[dict[str, Any]] = []
    enough = asyncio.Event()

    async with _serving(profile, db) as (process, port):
        alice = _at(user, port)

        async def hit_until_refused() -> None:
            async with recipient() as client:
                for _ in range(MAX_PER_WORKER):
                    mail = new_mail(alice)
                    try:
                        response = await client.get(mail.pixel())
                    except httpx.TransportError:
                        return  # the server is gone
                    if response.status_code == 200:
                        answered.append(mail.message)
                    if len(answered) >= KILL_AFTER:
                        enough.set()

        subscriber = asyncio.create_task(_stream(port, alice.api_token, 0, streamed))
        senders = [asyncio.create_task(hit_until_refused()) for _ in range(WORKERS)]
        async with asyncio.timeout(6 * WAIT):
            await enough.wait()
        process.kill()  # SIGKILL, mid-traffic
        async with asyncio.timeout(3 * WAIT):
            await asyncio.gather(*senders, subscriber)

    assert len(answered) >= KILL_AFTER
    after_restart: list[dict[str, Any]] = []
    async with _serving(profile, db) as (_, port):
        alice = _at(user, port)
        sentinel = new_mail(alice)
        async with recipient() as client:
            assert (await client.get(sentinel.pixel())).status_code == 200
        async with connect(
            f"ws://127.0.0.1:{port}/v1/stream?after=0",
            additional_headers={"Authorization": f"Bearer {alice.api_token}"},
            open_timeout=WAIT,
        ) as websocket:
            async with asyncio.timeout(3 * WAIT):
                while not after_restart or after_restart[-1]["message"] != sentinel.message:
                    message = json.loads(await websocket.recv())
                    if message["type"] != "revise":
                        after_restart.append(message)

    stored = [event["message"] for event in after_restart]
    assert set(answered) <= set(stored), "an answered hit was lost"
    assert {event["message"] for event in streamed} <= set(stored)
    assert len(stored) == len(set(stored)), "a hit was stored twice"
    ids = [event["id"] for event in after_restart]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ids[-1] > max(event["id"] for event in after_restart[:-1])


async def test_stop_finishes_and_commits_the_hits_in_flight(database: Database) -> None:
    db = database
    server = TrackingServer(ServerConfig(db_path=db, host="127.0.0.1", port=0))
    await server.start()
    alice = await server.add_user("alice")
    mails = [new_mail(alice) for _ in range(64)]
    async with recipient(limits=httpx.Limits(max_connections=64)) as client:
        requests = [asyncio.create_task(client.get(mail.pixel())) for mail in mails]
        async with asyncio.timeout(WAIT):
            await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
        await server.stop()  # while the rest are in flight
        outcomes = await asyncio.gather(*requests, return_exceptions=True)
    answered = {
        mail.message
        for mail, outcome in zip(mails, outcomes, strict=True)
        if isinstance(outcome, httpx.Response) and outcome.status_code == 200
    }
    for outcome in outcomes:
        assert isinstance(outcome, httpx.Response | httpx.TransportError), outcome
        assert not isinstance(outcome, httpx.Response) or outcome.status_code == 200
    stored = {row[0] for row in query(db, "SELECT message FROM events")}
    assert answered and answered <= stored


async def test_sigterm_mid_traffic_stores_every_answered_hit_and_exits_cleanly(
    tmp_path: Path, database: Database
) -> None:
    profile, db = tmp_path / "profile", database
    user = await add_user_process(profile, db)
    answered: list[str] = []
    failures: list[BaseException] = []
    enough = asyncio.Event()

    async with serving_process(profile, db) as (process, url):
        alice = served_at(user, url)

        async def hit_until_refused() -> None:
            async with recipient() as client:
                for _ in range(MAX_PER_WORKER):
                    mail = new_mail(alice)
                    try:
                        response = await client.get(mail.pixel())
                    except httpx.TransportError:
                        return  # the server has stopped taking requests
                    if response.status_code != 200:
                        failures.append(AssertionError(response.status_code))
                        return
                    answered.append(mail.message)
                    if len(answered) >= KILL_AFTER:
                        enough.set()

        senders = [asyncio.create_task(hit_until_refused()) for _ in range(WORKERS)]
        async with asyncio.timeout(6 * WAIT):
            await enough.wait()
        process.send_signal(signal.SIGTERM)  # with requests in flight
        async with asyncio.timeout(3 * WAIT):
            await asyncio.gather(*senders)
            code = await process.wait()
        assert process.stderr is not None
        errors = (await process.stderr.read()).decode()

    assert code == 0, errors
    assert "Traceback" not in errors
    assert failures == []
    stored = [row[0] for row in query(db, "SELECT message FROM events")]
    assert set(answered) <= set(stored), "an answered hit was lost"
    assert len(stored) == len(set(stored)), "a hit was stored twice"
