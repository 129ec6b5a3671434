"""Verdicts: who made a hit (DESIGN rule 5). Pure; the server supplies the context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailbeacon.core.events import EventType, Verdict


@dataclass(frozen=True, slots=True)
class Hit:
    """One request for a pixel or a tracked link, as the server saw it."""

    type: EventType
    method: str
    ip: str
    user_agent: str
    at: float
    minted_at: int
    message: str
    recipient: str | None
    link: int | None = None
    honeypot: bool = False
    claimed_browser: bool = False


@dataclass(frozen=True, slots=True)
class PriorHit:
    """A recent, already stored hit on the same message (for bursts)."""

    id: int
    hit: Hit
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Context:
    """What the server knows beyond the hit itself."""

    agent_addresses: frozenset[str] = frozenset()
    recent: Sequence[PriorHit] = ()


@dataclass(frozen=True, slots=True)
class Revision:
    """A new verdict for an earlier event."""

    id: int
    verdict: Verdict
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for a hit, and any earlier verdicts it changes."""

    verdict: Verdict
    reason: str
    revisions: tuple[Revision, ...] = field(default=())


def classify(hit: Hit, context: Context) -> Decision:
    """The verdict for ``hit``."""
    if hit.method.upper() == "HEAD":
        return Decision(Verdict.BOT, "HEAD request (link checkers, never a person)")
    if hit.claimed_browser:
        return Decision(Verdict.SELF, "browser claimed by the rep")
    if hit.ip in context.agent_addresses:
        return Decision(Verdict.SELF, "from the address of the rep's own agent")
    return Decision(Verdict.HUMAN, "no sign of automation")
