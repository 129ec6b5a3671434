"""Event records shared by the server, the stream and the agent (docs/interfaces.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """What happened: a hit the server records (open, click), or an event the agent
    records itself (reply, delivery_failed). A StrEnum, so it equals its text in JSON
    and SQL."""

    OPEN = "open"
    CLICK = "click"
    REPLY = "reply"
    DELIVERY_FAILED = "delivery_failed"


# What the tracking server sees: the hits a pixel or a tracked link makes.
HIT_TYPES = (EventType.OPEN, EventType.CLICK)
# What moves a contact's engagement properties (rules 5, 8, 9 decide which ones count).
ENGAGEMENT_TYPES = (EventType.OPEN, EventType.CLICK, EventType.REPLY)


class Verdict(StrEnum):
    """Who the server believes made a hit (docs/rules.md rule 5)."""

    HUMAN = "human"
    BOT = "bot"
    PROXY = "proxy"
    SELF = "self"


# Every verdict but a person's: what reports and filters leave out.
NOT_HUMAN = (Verdict.BOT, Verdict.PROXY, Verdict.SELF)


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class ServerEvent:
    """One stored hit as the stream carries it."""

    id: int
    type: str
    message: str
    recipient: str | None
    at: str
    ip: str
    user_agent: str
    verdict: str
    reason: str
    inferred: bool = False
    link: int | None = None
    url: str | None = None
    # A proxy fetch that still means a person opened it (Gmail's image proxy) counts;
    # None means "as the verdict says" (only human counts).
    counts: bool | None = None
    via: str | None = None

    @property
    def counts_as_human(self) -> bool:
        """Whether this event notifies and counts in reports (docs/rules.md rule 5)."""
        return self.counts if self.counts is not None else self.verdict == Verdict.HUMAN

    def to_json(self) -> dict[str, Any]:
        """The stream message for this event."""
        # What dataclasses.asdict makes (every field is a plain value), without its deep
        # copy of each: 16 µs against 1 µs, and the stream encodes every new event and
        # every event a resuming agent catches up on (docs/performance.md).
        return {
            "id": self.id,
            "type": self.type,
            "message": self.message,
            "recipient": self.recipient,
            "at": self.at,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "verdict": self.verdict,
            "reason": self.reason,
            "inferred": self.inferred,
            "link": self.link,
            "url": self.url,
            "counts": self.counts,
            "via": self.via,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerEvent:
        """Parse a stream message (unknown fields are ignored)."""
        return cls(
            id=int(data["id"]),
            type=str(data["type"]),
            message=str(data["message"]),
            recipient=data.get("recipient"),
            at=str(data["at"]),
            ip=str(data.get("ip", "")),
            user_agent=str(data.get("user_agent", "")),
            verdict=str(data["verdict"]),
            reason=str(data.get("reason", "")),
            inferred=bool(data.get("inferred", False)),
            link=data.get("link"),
            url=data.get("url"),
            counts=data.get("counts"),
            via=data.get("via"),
        )


@dataclass(frozen=True, slots=True)
class Revision:
    """A changed verdict for an event already sent (the stream's ``revise`` message)."""

    id: int
    verdict: str
    reason: str
    # Whether the event counts as a person's after the change (None: as the verdict says).
    counts: bool | None = None

    @property
    def counts_as_human(self) -> bool:
        """Whether the revised event still notifies and counts."""
        return self.counts if self.counts is not None else self.verdict == Verdict.HUMAN

    def to_json(self) -> dict[str, Any]:
        """The stream message."""
        message: dict[str, Any] = {
            "type": "revise", "id": self.id, "verdict": self.verdict, "reason": self.reason
        }
        if self.counts is not None:
            message["counts"] = self.counts
        return message


@dataclass(frozen=True, slots=True)
class StreamHello:
    """The stream's first message (to agents that ask for it, docs/interfaces.md).

    ``db`` names the server's database and ``generation`` counts its restores from a
    backup: a restored database starts a new generation whose ids are all above
    ``floor``, itself above every id handed out before (docs/promises.md, "No event
    lost or doubled").
    """

    db: str
    generation: int
    floor: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stream message."""
        return {"type": "hello", "db": self.db, "generation": self.generation,
                "floor": self.floor}


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Sent once the backlog (the events before this connection) has been sent.

    ``last`` is the id of the last backlog event (the ``after=`` asked for when there
    was none). Everything before it is catch-up; everything after it is live.
    """

    last: int

    def to_json(self) -> dict[str, Any]:
        """The stream message."""
        return {"type": "caught_up", "last": self.last}


# What the stream carries, parsed (agent/tracking/stream.py).
StreamMessage = ServerEvent | Revision | StreamHello | CaughtUp
