"""The ``self`` verdict (docs/rules.md rule 5): an address is the rep's only while an
agent of the rep is connected from it and for a short window after; the reason says
which rule fired. Real server, real WebSocket agents, recipients on 127.0.0.x."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.addresses import DEFAULT_WINDOW
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.fakes import FakeClock
from tests.helpers.server import (
    claim_url,
    new_mail,
    next_event,
    recipient,
    subscribed,
)

AGENT = "127.0.0.7"  # the rep's machine (a guest Wi-Fi, a conference network)
WATCHER = "127.0.0.1"  # where the test reads the verdicts from


@asynccontextmanager
async def clocked_server(db: Path, clock: Callable[[], float], **options: Any
                         ) -> AsyncIterator[TrackingServer]:
    server = TrackingServer(ServerConfig(db_path=db, host="127.0.0.1", port=0, **options),
                            clock=clock)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def disconnections(server: TrackingServer) -> asyncio.Event:
    """Set once the server has counted an agent's stream as closed."""
    addresses = server._state.addresses
    left = asyncio.Event()
    original = addresses.disconnected

    def disconnected(user_id: int, ip: str, now: float) -> None:
        original(user_id, ip, now)
        left.set()

    addresses.disconnected = disconnected  # type: ignore[method-assign]
    return left


async def open_from(rep: Enrollment, address: str, watcher: ClientConnection,
                    **headers: str) -> dict[str, Any]:
    """A recipient at ``address`` opens a fresh email; returns the stored event."""
    async with recipient(address, headers=headers) as client:
        assert (await client.get(new_mail(rep).pixel())).status_code == 200
    return await next_event(watcher)


async def test_an_address_is_the_reps_only_while_connected_and_shortly_after(
    tmp_path: Path,
) -> None:
    clock = FakeClock(time.time())
    async with clocked_server(tmp_path / "server.db", clock) as server:
        rep = await server.add_user("alice")
        left = disconnections(server)
        async with subscribed(server, rep.api_token, local_address=WATCHER) as watcher:
            async with subscribed(server, rep.api_token, local_address=AGENT):
                live = await open_from(rep, AGENT, watcher)
                other = await open_from(rep, "127.0.0.9", watcher)
            async with asyncio.timeout(5):
                await left.wait()
            gone_at = datetime.fromtimestamp(clock(), UTC).strftime("%H:%M")
            clock.advance(DEFAULT_WINDOW - 60)
            within = await open_from(rep, AGENT, watcher)
            clock.advance(120)  # the window has passed: a person at that address again
            after = await open_from(rep, AGENT, watcher)
    assert (live["verdict"], live["reason"]) == ("self", "the rep's address (agent connected)")
    assert other["verdict"] == "human"
    assert (within["verdict"], within["reason"]) == (
        "self", f"the rep's address (agent connected until {gone_at} UTC)"
    )
    assert after["verdict"] == "human", after["reason"]
    assert DEFAULT_WINDOW == 15 * 60


async def test_a_claimed_browser_says_so(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    async with clocked_server(tmp_path / "server.db", clock) as server:
        rep = await server.add_user("alice")
        async with recipient("127.0.0.9") as browser:
            claimed = await browser.get(claim_url(rep))
            cookie = claimed.headers["set-cookie"].split(";", 1)[0]
        async with subscribed(server, rep.api_token, local_address=WATCHER) as watcher:
            hit = await open_from(rep, "127.0.0.9", watcher, Cookie=cookie)
    assert (hit["verdict"], hit["reason"]) == ("self", "the rep's browser (claimed)")


async def test_behind_a_local_tunnel_the_forwarded_address_decides(tmp_path: Path) -> None:
    """The embedded server's own agent streams from 127.0.0.1, and so does a local TLS
    proxy or tunnel: with it trusted, its hits are judged by X-Forwarded-For; a
    loopback peer that is neither the proxy nor the agent is judged as itself."""
    clock = FakeClock(time.time())
    proxy = (ipaddress.ip_network("127.0.0.2/32"),)
    async with clocked_server(tmp_path / "server.db", clock, trusted_proxies=proxy) as server:
        rep = await server.add_user("alice")
        async with subscribed(server, rep.api_token, local_address=WATCHER) as agent:
            through_tunnel = await open_from(
                rep, "127.0.0.2", agent, **{"X-Forwarded-For": "198.51.100.7"}
            )
            forged = await open_from(
                rep, "127.0.0.5", agent, **{"X-Forwarded-For": WATCHER}
            )
            rep_through_tunnel = await open_from(
                rep, "127.0.0.2", agent, **{"X-Forwarded-For": WATCHER}
            )
    assert (through_tunnel["verdict"], through_tunnel["ip"]) == ("human", "198.51.100.7")
    assert (forged["verdict"], forged["ip"]) == ("human", "127.0.0.5")
    assert rep_through_tunnel["verdict"] == "self"
