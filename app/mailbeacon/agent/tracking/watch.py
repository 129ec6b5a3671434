"""The running agent's own "Test tracking": whether recipients reach a public address.

A rep who never presses "Test tracking" must not be told "unknown" forever, nor
"works" on faith: the agent checks a public tracking address itself when it starts,
then every few hours (a certificate can lapse, a name can move), sooner after a
failure. Addresses only this computer or its network reaches are never fetched here:
``agent.status`` already calls them unreachable whatever a fetch would say
(docs/rules.md, "The tracking domain").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailbeacon.agent.tracking.check import TrackingCheck
from mailbeacon.core.tracking_domain import check_tracking_url

log = logging.getLogger(__name__)

# Between checks of an address that answered, and after one that did not.
RECHECK_SECONDS = 6 * 3600.0
RETRY_SECONDS = 5 * 60.0


@dataclass(frozen=True, slots=True)
class WatchTimes:
    """How long to wait between checks."""

    after_success: float = RECHECK_SECONDS
    after_failure: float = RETRY_SECONDS


class TrackingWatch:
    """Checks a public tracking URL now and again; hands each result to ``on_result``."""

    def __init__(
        self,
        url: str,
        check: Callable[[], Awaitable[TrackingCheck]],
        on_result: Callable[[TrackingCheck], None],
        times: WatchTimes = WatchTimes(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._url = url
        self._check = check
        self._on_result = on_result
        self._times = times
        self._sleep = sleep

    @property
    def needed(self) -> bool:
        """Whether the URL is one recipients could reach at all (else: nothing to do)."""
        return check_tracking_url(self._url).reachable_by_recipients

    async def run(self) -> None:
        """Check, report, wait; until cancelled. Nothing for a local or private URL."""
        if not self.needed:
            return
        while True:
            result = await self._check()
            if not result.ok:
                # The operator's log keeps what the rep's status line only summarises.
                log.info("tracking at %s is not reachable: %s", self._url,
                         result.message.replace("\n", " "))
            self._on_result(result)
            await self._sleep(
                self._times.after_success if result.ok else self._times.after_failure
            )
