"""What the agent tells the rep: notification records (docs/interfaces.md) and agent status."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mailbeacon.agent.status import StatusReport


class NotificationType(StrEnum):
    """Kinds of notification; each can be switched off in settings."""

    OPEN = "open"
    CLICK = "click"
    REPLY = "reply"
    DELIVERY_FAILED = "delivery_failed"
    SUMMARY = "summary"
    SIGN_IN = "sign_in_required"  # the provider refused the sign-in: mail waits
    # Sending stopped working with mail waiting; told once per outage and once on recovery.
    DELIVERY_DELAYED = "delivery_delayed"
    # Scheduled mail whose time passed while the agent was not running went out late.
    SENT_LATE = "sent_late"
    # "Remind me if no reply": nobody answered in the time the rep gave (agent/followup).
    REMINDER = "reminder"


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification as the rep sees it; ``--notify jsonl`` prints ``to_json()``."""

    event: int | None
    type: str
    message_id: str | None
    subject: str
    recipient: str | None
    anonymous: bool
    title: str
    body: str
    at: str
    url: str | None = None
    inferred: bool = False
    possibly_forwarded: bool = False
    email_id: int | None = None
    events: tuple[int, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The JSON object of one notification line."""
        data = asdict(self)
        data["events"] = list(self.events)
        return data


class ConnectionState(StrEnum):
    """The tray icon's state."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Where the agent stands, for the tray icon, tooltip and first-run dialog."""

    connection: ConnectionState
    detail: str = ""
    server_url: str = ""
    relay_host: str = ""
    relay_port: int = 0
    relay_user: str = "mailbeacon"
    problems: tuple[str, ...] = field(default=())
    # What works and what does not (agent/status.py decides; the tray shows its headline).
    report: StatusReport | None = None


class AgentListener(Protocol):
    """Receives what the agent decided; called on the agent's own thread/loop."""

    def notification(self, notification: Notification) -> None:
        """A notification to show."""

    def status(self, status: AgentStatus) -> None:
        """The agent's state changed."""
