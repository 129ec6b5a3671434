"""The agent's side of the team: the policy it obeys and what it reports.

``TeamSync`` holds the team policy (agent/settings/team.py) for the running agent:
it reads ``GET /v1/policy`` before the relay starts (so a rep's first send after a
restart follows the policy the server has now), takes each ``policy`` message of the
stream the moment it arrives, and gives the settings with enforced items in force
(:meth:`settings`, cached per settings object and policy version). It also reports
each tracked send to ``POST /v1/activity`` for the team report, in the background:
a send never waits for it, and a failed report is retried with the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from mailbeacon.agent.records.model import ActivityFilter
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.settings.team import TeamPolicyFile, overlay
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.policy import PolicyError, TeamPolicy
from mailbeacon.core.urls import TrackingUrls

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 3.0  # seconds the agent's start waits for the server's policy
MAX_PENDING = 1000  # reports kept while the server cannot be reached
REPLIES_EVERY = 60.0  # seconds between looks for new replies to report
REPLY_WEEKS = 8


@dataclass(frozen=True, slots=True)
class TeamUrls(TrackingUrls):
    """Tracking URLs on the team's tracking domain (policy ``server.public_url``) when
    the team set one, else on the enrollment's server URL."""

    domain: Callable[[], str] = lambda: ""

    @property
    def _base(self) -> str:
        return (self.domain() or self.enrollment.server_url).rstrip("/")


class TeamSync:
    """The team policy in force and the activity reports of one running agent."""

    def __init__(
        self,
        config_dir: Path,
        config_file: Path,
        clock: Callable[[], float],
        on_change: Callable[[TeamPolicy], None] = lambda _p: None,
    ) -> None:
        self.file = TeamPolicyFile.load(config_dir, config_file)
        self._clock = clock
        self._on_change = on_change
        self._server_url = ""
        self._token = ""
        self._cache: tuple[Settings, int, Settings] | None = None
        self._pending: list[dict[str, str]] = []
        # Replies are looked for from a few weeks back at start (the report's span).
        start = datetime.fromtimestamp(clock(), UTC) - timedelta(weeks=REPLY_WEEKS)
        self._replies_since = start.isoformat().replace("+00:00", "Z")
        self._replies_at_mark: set[int] = set()  # the events reported at that moment
        self._flushing: asyncio.Task[None] | None = None

    @property
    def policy(self) -> TeamPolicy:
        """The policy in force now."""
        return self.file.policy

    def connect(self, server_url: str, api_token: str) -> None:
        """The server this agent is enrolled at (its policy counts from now on)."""
        self._server_url, self._token = server_url.rstrip("/"), api_token

    def settings(self, own: Settings) -> Settings:
        """``own`` with the enforced items in force (the same object when none is)."""
        cached = self._cache
        if cached is not None and cached[0] is own and cached[1] == self.policy.version:
            return cached[2]
        result = overlay(own, self.policy)
        self._cache = (own, self.policy.version, result)
        return result

    def apply(self, policy: TeamPolicy) -> None:
        """Take a policy the server sent (stream or fetch); a newer one is stored and in
        force before this returns."""
        try:
            changed = self.file.apply(policy, self._server_url)
        except OSError as exc:
            log.error("the team policy could not be stored (%s); it applies to this run", exc)
            self.file.policy, self.file.source = policy, self._server_url
            changed = True
        if changed:
            self._cache = None
            self._on_change(policy)

    async def fetch(self) -> bool:
        """Read the server's policy now; False (the stored one stays) when it does not
        answer in time."""
        if not self._server_url:
            return False
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, trust_env=False) as client:
                answer = await client.get(f"{self._server_url}/v1/policy", headers=self._auth())
            answer.raise_for_status()
            policy = TeamPolicy.from_json(answer.json())
        except (httpx.HTTPError, ValueError, PolicyError) as exc:
            log.info("team policy not read from %s (%s): the stored one applies until the "
                     "stream brings it", self._server_url, exc)  # fmt: skip
            return False
        self.apply(policy)
        return True

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def tracked(self, message_key: str) -> None:
        """Report a tracked send for the team report (in the background)."""
        at = datetime.fromtimestamp(self._clock(), UTC).isoformat().replace("+00:00", "Z")
        self._report({"kind": "sent", "message": message_key, "at": at})

    def _report(self, *items: dict[str, str]) -> None:
        self._pending.extend(items)
        del self._pending[:-MAX_PENDING]
        if self._server_url and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    def report_replies(self, records: RecordsStore) -> int:
        """Report people's replies recorded since the last pass (the server keeps each
        once, so a reply reported twice counts once); returns how many were found."""
        since = self._replies_since
        rows = records.activity(
            limit=MAX_PENDING,
            filters=ActivityFilter(types=(EventType.REPLY,), verdicts=(Verdict.HUMAN,),
                                   since=since),
        )  # fmt: skip
        items = []
        for row in rows:
            if row.event.id in self._replies_at_mark:
                continue  # ``since`` is inclusive: reported at the last pass already
            email = records.email(row.event.email_id) if row.event.email_id else None
            if email is not None and email.tracked:
                items.append({"kind": "reply", "message": email.message_key, "at": row.event.at})
            if row.event.at > self._replies_since:
                self._replies_since, self._replies_at_mark = row.event.at, set()
            if row.event.at == self._replies_since:
                self._replies_at_mark.add(row.event.id)
        if items:
            self._report(*items)
        return len(items)

    async def report_loop(self, records: RecordsStore, every: float = REPLIES_EVERY) -> None:
        """Report replies now and then, until cancelled."""
        while True:
            try:
                await asyncio.to_thread(self.report_replies, records)
            except Exception:
                log.warning("replies not reported for the team report", exc_info=True)
            await asyncio.sleep(every)

    async def _flush(self) -> None:
        items, self._pending = self._pending, []
        try:
            async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
                answer = await client.post(
                    f"{self._server_url}/v1/activity", json={"items": items}, headers=self._auth()
                )
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.info("activity not reported to %s (%s); retried with the next", self._server_url,
                     exc)  # fmt: skip
            self._pending[:0] = items
            del self._pending[:-MAX_PENDING]

    async def stop(self) -> None:
        """Let a report in flight finish (briefly)."""
        if self._flushing is not None and not self._flushing.done():
            try:
                async with asyncio.timeout(2.0):
                    await self._flushing
            except TimeoutError:
                self._flushing.cancel()
