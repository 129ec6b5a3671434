"""Creating a sequence and enrolling contacts, checked whole before anything is stored.

Shared by ``mailbeacon sequence create|enroll`` and the tray's Sequences window, so
both refuse the same things in the same words: a file with a problem, a template
that does not exist, no sender, a contact missing a field a step needs (each such
row named). Nothing is half-stored: a refusal stores nothing, an enrolment enrols
every row or none.
"""

from __future__ import annotations

from mailbeacon.agent.followup.sequences import sender_of
from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.records.model import Contact
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import Phrase, mark
from mailbeacon.core.sequence_spec import (
    ContactRow,
    Sequence,
    SequenceError,
    TemplateLookup,
    missing_fields,
    missing_templates,
    parse_sequence,
)


def contact_row(email: str, contact: Contact | None) -> ContactRow:
    """The row to enrol for ``email``: its record's name and company fill placeholders."""
    fields = {"name": contact.name, "company": contact.company} if contact else {}
    return ContactRow(email.strip().lower(), fields)


def create_sequence(
    store: FollowupStore, source: str, settings: Settings, templates: TemplateLookup, now: float
) -> Sequence:
    """Store the sequence in ``source``; raises SequenceError listing what is wrong."""
    sequence = parse_sequence(source)
    problems = missing_templates(sequence, templates)
    if sender_of(sequence, settings) is None:
        problems.append(
            Phrase(
                mark(
                    "no 'from' in the file and no account address (config set account.email)"
                )
            )
        )
    if problems:
        raise SequenceError(problems)
    if not store.add_sequence(sequence.name, source, now):
        raise SequenceError(
            [Phrase(mark("a sequence named {name} exists already"), name=repr(sequence.name))]
        )
    return sequence


def enroll_rows(
    store: FollowupStore,
    name: str,
    rows: list[ContactRow],
    templates: TemplateLookup,
    now: float,
) -> list[str]:
    """Enrol every row or none; the addresses that were enrolled already. Raises
    SequenceError for an unknown sequence or rows lacking a value (each named)."""
    row = store.sequence(name)
    if row is None:
        raise SequenceError([Phrase(mark("there is no sequence {name}"), name=repr(name))])
    sequence = parse_sequence(row.source)
    problems = missing_fields(sequence, rows, templates)
    if problems:
        raise SequenceError(problems)
    return store.enroll(sequence.name, [(r.email, r.fields) for r in rows], now)
