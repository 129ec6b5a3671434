"""A thousand never-seen hostile user agents do not starve a real recipient (issue 14,
must 8): the person's open still reaches the rep's stream within two seconds while the
burst is being classified."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.classify import hostile_agents
from tests.helpers.server import new_mail, next_event, recipient, subscribed

PROMISE_S = 2.0
BURST = 1_000
AT_ONCE = 50


async def test_a_persons_open_arrives_within_two_seconds_during_a_hostile_burst(
    server: TrackingServer, alice: Enrollment, tmp_path: Path
) -> None:
    burst_mail, person_mail = new_mail(alice), new_mail(alice)
    # httpx refuses header values with leading or trailing blanks; the rest is as hostile.
    agents = [agent.strip() or f"x{i}" for i, agent in enumerate(hostile_agents(BURST))]
    async def hostile(share: list[str]) -> None:
        async with recipient("127.0.0.9") as web:  # one connection, many agents
            for client_agent in share:
                await web.get(burst_mail.pixel(), headers={"User-Agent": client_agent})

    async with subscribed(server, alice.api_token) as stream:
        burst = asyncio.gather(*(hostile(agents[i::AT_ONCE]) for i in range(AT_ONCE)))
        await asyncio.sleep(0)  # the burst is under way
        async with recipient("127.0.0.8") as person:
            asked = time.monotonic()
            answer = await person.get(person_mail.pixel())
        assert answer.status_code == 200
        async with asyncio.timeout(PROMISE_S * 5):
            while True:
                event = await next_event(stream, wait=PROMISE_S * 5)
                if event["message"] == person_mail.message:
                    break
        arrived = time.monotonic() - asked
        await burst
    assert event["verdict"] == "human", event
    assert arrived < PROMISE_S, f"the person's open took {arrived:.2f} s"
