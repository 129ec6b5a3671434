"""Builders for records-store tests."""

from __future__ import annotations

from itertools import count
from typing import Any

from mailbeacon.agent.records.model import EventRecord, Recipient, SentEmail
from mailbeacon.core.tokens import new_message_key, new_recipient_key

_ids = count(1)


def sent_email(*addresses: str, shared: bool = False, **overrides: Any) -> SentEmail:
    """A sent email to ``addresses`` (To), each with its own recipient key unless shared."""
    recipients = tuple(
        Recipient(address, "to", recipient_key=None if shared else new_recipient_key())
        for address in addresses or ("alice@example.com",)
    )
    number = next(_ids)
    values: dict[str, Any] = {
        "message_id": f"<m{number}@rep.example.net>",
        "message_key": new_message_key(),
        "subject": f"Proposal {number}",
        "sender": "rep@example.net",
        "sent_at": "2030-01-01T09:00:00Z",
        "recipients": recipients,
        "track": True,
        "log": False,
        "tracked": True,
    }
    values.update(overrides)
    return SentEmail(**values)


def event(
    type: str = "open", at: str = "2030-01-01T10:00:00Z", **overrides: Any
) -> EventRecord:
    """An event with a fresh server id unless one is given."""
    values: dict[str, Any] = {"server_id": 1000 + next(_ids)}
    values.update(overrides)
    return EventRecord(type=type, at=at, **values)
