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
from mailbeacon.server.admin.console import AdminConsole, ConsoleContext
from mailbeacon.server.config import Database
from mailbeacon.server.fanout import Fanout
from mailbeacon.server.reader import Reader
from mailbeacon.server.recorder import Recorder
from mailbeacon.server.store import Store
from mailbeacon.server.stores import open_store, warn_retrying
from mailbeacon.server.stream import policy_text
from mailbeacon.server.team import PolicyWatch
from mailbeacon.server.team_api import TeamApi
from mailbeacon.server.threads import in_thread

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

    def routes(
        self, reader: Reader, recorder: Recorder, console: ConsoleContext | None = None
    ) -> list[BaseRoute]:
        """``/v1/policy`` and ``/v1/activity``; the console's ``/admin`` pages too."""
        routes = TeamApi(reader, recorder, self.policy).routes()
        if console is not None:
            routes.extend(AdminConsole(console).routes())
        return routes

    @staticmethod
    def console(
        db: Database,
        secret: bytes,
        public_url: str,
        fanout: Fanout,
        client_ip: Callable[[str, list[tuple[bytes, bytes]]], str],
        language: str = "auto",
    ) -> ConsoleContext:
        """What the console needs of this server: its database, secret, public URL,
        connected agents, how it tells a client's address (trusted proxies) and which
        language it speaks ("auto": each browser's)."""
        return ConsoleContext(
            open_store=lambda: open_store(db, role="mailbeacon-console"),
            secret=secret,
            public_url=public_url,
            connected=fanout.count,
            instances=_instances,
            client_ip=client_ip,
            language=language,
        )

    def start(self, fanout: Fanout) -> None:
        """Start watching for changes; each one goes to every agent connected here."""
        self._task = asyncio.create_task(self._run(fanout), name="mailbeacon-policy-watch")

    async def _run(self, fanout: Fanout) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._check_seconds)
            try:
                changed = await in_thread(self._watch.poll)
            except Exception as exc:
                if not failing:
                    warn_retrying(log, "could not read the team policy", exc)
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


def _instances(store: Store) -> int:
    """Server instances on this database: each PostgreSQL one holds one feed
    connection (pg_feed.py); a SQLite file has one server."""
    if store.dialect != "postgresql":
        return 1
    rows = store.rows(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mailbeacon-feed' "
        "AND datname = current_database()"
    )
    return int(str(rows[0][0])) if rows else 0
