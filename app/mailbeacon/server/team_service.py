"""The team's administration inside a running server: the policy it obeys and
streams, the agents' endpoints and (when an administrator exists) the console.

One object so that the tracking server wires it in a few lines: ``policy`` is what
the tracker and the stream consult; :meth:`start` polls the policy version (another
process or instance may change it) and broadcasts each change to every connected
agent that takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starlette.routing import BaseRoute

from mailbeacon.core.policy import TeamPolicy
from mailbeacon.server.fanout import Fanout
from mailbeacon.server.reader import Reader
from mailbeacon.server.recorder import Recorder
from mailbeacon.server.store import Store
from mailbeacon.server.stream import policy_text
from mailbeacon.server.team import PolicyWatch
from mailbeacon.server.team_api import TeamApi

log = logging.getLogger(__name__)


class TeamService:
    """Policy watch and broadcast, and the team's routes."""

    def __init__(self, store: Store, check_seconds: float) -> None:
        self._watch = PolicyWatch(store)
        self._check_seconds = check_seconds
        self._task: asyncio.Task[None] | None = None

    def policy(self) -> TeamPolicy:
        """The account's policy now (no query: refreshed by the watch)."""
        return self._watch.policy

    def routes(self, reader: Reader, recorder: Recorder) -> list[BaseRoute]:
        """``/v1/policy`` and ``/v1/activity``."""
        return TeamApi(reader, recorder, self.policy).routes()

    def start(self, fanout: Fanout) -> None:
        """Start watching for changes; each one goes to every agent connected here."""
        self._task = asyncio.create_task(self._run(fanout), name="mailbeacon-policy-watch")

    async def _run(self, fanout: Fanout) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._check_seconds)
            try:
                changed = await asyncio.to_thread(self._watch.poll)
            except Exception:
                if not failing:
                    log.warning("could not read the team policy; trying again", exc_info=True)
                failing = True
                continue
            failing = False
            if changed is not None:
                reached = fanout.broadcast(policy_text(changed))
                log.info("team policy version %d: sent to %d agent(s)", changed.version, reached)

    async def stop(self) -> None:
        """Stop watching and release the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._watch.close()


PolicySource = Callable[[], TeamPolicy]
