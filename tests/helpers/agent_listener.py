"""A listener for an in-process agent (``AgentRuntime``): what it tells the tray."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mailbeacon.agent.notifications.model import AgentStatus, Notification


class Listener:
    """Collects the notifications and statuses an in-process agent gives out."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.statuses: list[AgentStatus] = []
        self.changed = asyncio.Event()

    def notification(self, notification: Notification) -> None:
        self.notifications.append(notification)
        self.changed.set()

    def status(self, status: AgentStatus) -> None:
        self.statuses.append(status)
        self.changed.set()

    async def until(self, test: Callable[[], bool], within: float = 15.0) -> None:
        """Wait (bounded) until ``test()`` holds, checking after each thing told."""
        async with asyncio.timeout(within):
            while not test():
                self.changed.clear()
                await self.changed.wait()

    def delayed(self) -> list[Notification]:
        """The "emails are waiting" notifications so far."""
        return [n for n in self.notifications if n.type == "delivery_delayed"]
