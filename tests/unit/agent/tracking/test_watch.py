"""The agent checks a public tracking address by itself: at start, every few hours
after a success, sooner after a failure; never for this computer's or a private one."""

from __future__ import annotations

import asyncio

import pytest

from mailbeacon.agent.tracking.check import TrackingCheck
from mailbeacon.agent.tracking.watch import TrackingWatch, WatchTimes

TIMES = WatchTimes(after_success=3600.0, after_failure=60.0)


class Script:
    """Check results in order; the waits the watch asked for; stops after the last."""

    def __init__(self, *results: TrackingCheck) -> None:
        self.results = list(results)
        self.calls = 0
        self.waits: list[float] = []
        self.seen: list[TrackingCheck] = []

    async def check(self) -> TrackingCheck:
        self.calls += 1
        return self.results.pop(0)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if not self.results:
            raise asyncio.CancelledError


def watch(url: str, script: Script) -> TrackingWatch:
    return TrackingWatch(url, script.check, script.seen.append, TIMES, script.sleep)


async def test_a_public_address_is_checked_at_once_and_again_sooner_after_a_failure() -> None:
    broken = TrackingCheck(False, "Recipients cannot reach tracking:\nName: no")
    fixed = TrackingCheck(True, "Tracking works.")
    script = Script(broken, fixed)

    with pytest.raises(asyncio.CancelledError):
        await watch("https://track.example.com", script).run()

    assert script.seen == [broken, fixed]
    assert script.waits == [TIMES.after_failure, TIMES.after_success]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8725", "http://192.168.1.20:8725", "http://localhost:8725"]
)
async def test_an_address_only_this_computer_or_network_reaches_is_never_fetched(
    url: str,
) -> None:
    script = Script(TrackingCheck(True, "would be a lie"))

    await watch(url, script).run()

    assert script.calls == 0
    assert script.seen == []
