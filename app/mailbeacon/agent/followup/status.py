"""Where a sequence stands: who is at which step, when the next step goes, and what each
step earned (opens, clicks and replies by people). Read by ``mailbeacon sequence
status`` and the tray's Sequences window, so both say the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailbeacon.agent.followup.store import Enrollment, FollowupStore, SequenceRow
from mailbeacon.agent.records.model import ActivityFilter
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.sequence_spec import Sequence, SequenceError, parse_sequence, reply_subject


@dataclass(frozen=True, slots=True)
class StepFigures:
    """One step: its delay and subject as written, how many got it, and what they did."""

    number: int
    delay: str
    subject: str
    sent: int
    opens: int
    clicks: int
    replies: int


@dataclass(frozen=True, slots=True)
class SequenceStatus:
    """A sequence, its contacts and its steps' figures."""

    row: SequenceRow
    sequence: Sequence | None
    contacts: tuple[Enrollment, ...]
    steps: tuple[StepFigures, ...]

    def to_json(self, iso: Any) -> dict[str, Any]:
        """The ``sequence status --json`` shape (docs/interfaces.md#sequences)."""
        return {
            "name": self.row.name,
            "state": self.row.state,
            "steps": len(self.sequence.steps) if self.sequence else 0,
            "contacts": [
                {"email": c.email, "sent": c.sent, "state": c.state, "next_at": iso(c.next_at)}
                for c in self.contacts
            ],
        }


def sequence_status(
    store: FollowupStore, records: RecordsStore | None, name: str
) -> SequenceStatus | None:
    """The status of sequence ``name``; None when there is none. Without ``records``
    the per-step figures count sends only."""
    row = store.sequence(name)
    if row is None:
        return None
    try:
        sequence: Sequence | None = parse_sequence(row.source)
    except SequenceError:
        sequence = None
    contacts = tuple(store.enrollments(name))
    by_step: dict[int, list[int]] = {}
    for contact in contacts:
        for send in store.steps(contact.id):
            if send.state == "sent" and send.email_id is not None:
                by_step.setdefault(send.step, []).append(send.email_id)
    figures = []
    for number, step in enumerate(sequence.steps if sequence else ()):
        emails = by_step.get(number, [])
        counts = {kind: _count(records, emails, kind) for kind in
                  (EventType.OPEN, EventType.CLICK, EventType.REPLY)}  # fmt: skip
        subject = step.subject or (f"template {step.template}" if step.template else "")
        if number > 0 and step.thread and sequence is not None:
            subject = reply_subject(sequence.steps[0].subject or "")
        figures.append(
            StepFigures(
                number + 1,
                str(step.delay),
                subject,
                len(emails),
                counts[EventType.OPEN],
                counts[EventType.CLICK],
                counts[EventType.REPLY],
            )
        )
    return SequenceStatus(row, sequence, contacts, tuple(figures))


def _count(records: RecordsStore | None, email_ids: list[int], kind: str) -> int:
    if records is None:
        return 0
    return sum(
        records.count_events(
            ActivityFilter(types=(kind,), verdicts=(Verdict.HUMAN,), email_id=email_id)
        )
        for email_id in email_ids
    )
