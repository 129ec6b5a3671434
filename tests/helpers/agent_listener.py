"""A listener for an in-process agent (``AgentRuntime``): what it tells the tray."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mailbeacon.agent.notifications.model import AgentStatus, Notification
from mailbeacon.agent.runtime import AgentOptions, AgentRuntime
from mailbeacon.core.profile import Profile
from tests.helpers.agent_process import RELAY_PASSWORD


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


def relay_runtime(
    profile: Profile, relay_port: int, upstream: str, listener: Listener
) -> AgentRuntime:
    """An in-process agent (not started) whose relay listens on ``relay_port`` with the
    tests' relay password and delivers to ``upstream``, telling ``listener``."""
    return AgentRuntime(
        profile,
        AgentOptions(smtp_listen=f"127.0.0.1:{relay_port}", upstream=upstream,
                     relay_password=RELAY_PASSWORD),
        listener,
    )  # fmt: skip
