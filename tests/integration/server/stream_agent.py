"""The agent's stream side, for real: a records store, the notifier and the subscriber
following a real tracking server over a real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.notifications.policy import Notifier, PolicyConfig
from mailbeacon.agent.records.model import Recipient, SentEmail
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.tracking.stream import StreamState, StreamSubscriber
from mailbeacon.core.backoff import Backoff
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.events import StreamMessage
from tests.helpers.server import WAIT, Mail


def record_sent(records: RecordsStore, mail: Mail, number: int) -> None:
    """The agent's record of having sent ``mail`` (so its events resolve and notify)."""
    sent_at = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    records.record_sent(
        SentEmail(
            message_id=f"<m{number}@rep.example>",
            message_key=mail.message,
            subject=f"Proposal {number}",
            sender="rep@rep.example",
            sent_at=sent_at,
            recipients=(Recipient(f"p{number}@prospect.example", "to", "", mail.recipient),),
            track=True,
            log=False,
            tracked=True,
        )
    )


class StreamAgent:
    """What the agent runtime wires for the stream, with ways to wait on it."""

    def __init__(
        self, records: RecordsStore, enrollment: Enrollment, config: PolicyConfig
    ) -> None:
        self.records = records
        self.shown: list[Notification] = []
        self.messages: list[StreamMessage] = []
        self.states: list[StreamState] = []
        self._changed = asyncio.Event()
        self.notifier = Notifier(records, lambda: config, self._show)
        self.subscriber = StreamSubscriber(
            enrollment.server_url, enrollment.api_token, records.last_stream_id, self._handle,
            on_state=self._state, backoff=Backoff(first=0.05, factor=1.0, cap=0.05),
        )

    def _show(self, notification: Notification) -> None:
        self.shown.append(notification)
        self._changed.set()

    def _state(self, state: StreamState, _detail: str) -> None:
        self.states.append(state)
        self._changed.set()

    async def _handle(self, message: StreamMessage) -> None:
        await self.notifier.handle(message)
        self.messages.append(message)
        self._changed.set()

    async def until(self, done: Callable[[], bool], within: float = 3 * WAIT) -> None:
        """Wait (woken by every message, notification and state change) until ``done()``."""
        async with asyncio.timeout(within):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def stored(self) -> int:
        """How many events the records store holds."""
        return self.records.count_events()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[StreamAgent]:
        """The subscriber running (connected once this yields), stopped afterwards."""
        connected = len(self.states)
        task = asyncio.create_task(self.subscriber.run())
        try:
            await self.until(lambda: StreamState.CONNECTED in self.states[connected:])
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.notifier.flush_pending()
