"""How records are laid out in SQL: the columns read, and rows turned into records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mailbeacon.agent.records.model import (
    ActivityFilter,
    Contact,
    StoredEvent,
    normalize_at,
    normalize_email,
)

CONTACT_COLUMNS = (
    "email, name, company, lawful_basis, last_open, last_click, last_reply, "
    "last_engagement, bounced, created_at"
)
EVENT_COLUMNS = (
    "e.id, e.server_id, e.local_key, e.email_id, e.contact, e.type, e.verdict, e.reason, "
    "e.at, e.ip, e.user_agent, e.url, e.link, e.inferred, e.anonymous, "
    "e.possibly_forwarded, e.notified, e.details"
)
EMAIL_COLUMNS = (
    "id, message_id, message_key, subject, sender, sent_at, track, log, per_recipient, "
    "tracked, untracked_reason"
)


def where_clause(filters: ActivityFilter) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (empty when nothing is filtered) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.types:
        clauses.append(f"e.type IN ({', '.join('?' * len(filters.types))})")
        params += filters.types
    if filters.verdicts:
        clauses.append(f"e.verdict IN ({', '.join('?' * len(filters.verdicts))})")
        params += filters.verdicts
    if filters.contact is not None:
        clauses.append("e.contact = ?")
        params.append(normalize_email(filters.contact))
    if filters.email_id is not None:
        clauses.append("e.email_id = ?")
        params.append(filters.email_id)
    if not filters.include_anonymous:
        clauses.append("e.anonymous = 0")
    if filters.since is not None:
        clauses.append("e.at >= ?")
        params.append(normalize_at(filters.since))
    if filters.until is not None:
        clauses.append("e.at < ?")
        params.append(normalize_at(filters.until))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params



def contact_from_row(row: Sequence[Any]) -> Contact:
    """The contact in a row of CONTACT_COLUMNS."""
    return Contact(
        email=row[0],
        name=row[1],
        company=row[2],
        lawful_basis=row[3],
        last_open=row[4],
        last_click=row[5],
        last_reply=row[6],
        last_engagement=row[7],
        bounced=bool(row[8]),
        created_at=row[9],
    )


def event_from_row(row: Sequence[Any]) -> StoredEvent:
    """The event in a row of EVENT_COLUMNS."""
    # Positional and with a shortcut for empty details: the feed builds 100,000 of these.
    return StoredEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        row[7], row[8], row[9], row[10], row[11], row[12],
        bool(row[13]),
        bool(row[14]),
        bool(row[15]),
        bool(row[16]),
        {} if row[17] == "{}" else json.loads(row[17]),
    )
