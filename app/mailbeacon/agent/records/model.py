"""The records the agent keeps: what was sent to whom, copies, events, contacts.

Times are UTC ISO 8601 strings with milliseconds and a ``Z``
(``2030-01-31T17:00:00.000Z``, see ``normalize_at``): one fixed width, so text
order is time order and SQLite compares them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailbeacon.core import events

FIELDS = ("to", "cc", "bcc")
# Plain text, not the enum members: these show in command-line choices and messages.
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in events.EventType)
ENGAGEMENT_TYPES: tuple[str, ...] = tuple(t.value for t in events.ENGAGEMENT_TYPES)
VERDICTS: tuple[str, ...] = tuple(v.value for v in events.Verdict)


def normalize_at(value: str | datetime) -> str:
    """A time as the store keeps it; a zone-less time is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalize_email(address: str) -> str:
    """The contact key of an address: trimmed and lower-cased. Raises ValueError."""
    email = address.strip().lower()
    if not email or any(ch.isspace() for ch in email) or len(email) > 320:
        raise ValueError(f"not an email address: {address!r}")
    return email


# ---------------------------------------------------------------- what is written


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient of a sent email; ``recipient_key`` is None when the pixel is shared."""

    email: str
    field: str = "to"
    name: str = ""
    recipient_key: str | None = None


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email the relay accepted, as the records store it."""

    message_id: str
    message_key: str
    subject: str
    sender: str
    sent_at: str
    recipients: tuple[Recipient, ...]
    track: bool
    log: bool
    per_recipient: bool = False
    tracked: bool = False
    untracked_reason: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment of a logged copy, with its content."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class LoggedCopy:
    """The body and attachments of a logged email."""

    html: str | None
    text: str | None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event to store.

    ``server_id`` is the tracking server's id (opens, clicks): the same id is stored
    once. Events the agent makes itself (replies, delivery failures) have no server
    id; give them a ``local_key`` (e.g. ``reply:<Message-ID>``), equally stored once.
    An ``anonymous`` event never names its contact: ``contact`` is not stored.
    """

    type: str
    at: str
    email_id: int | None = None
    contact: str | None = None
    server_id: int | None = None
    local_key: str | None = None
    verdict: str = events.Verdict.HUMAN
    reason: str = ""
    ip: str = ""
    user_agent: str = ""
    url: str | None = None
    link: int | None = None
    inferred: bool = False
    anonymous: bool = False
    possibly_forwarded: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- what is read


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact and its engagement properties (None: never)."""

    email: str
    name: str
    company: str
    lawful_basis: str | None
    last_open: str | None
    last_click: str | None
    last_reply: str | None
    last_engagement: str | None
    bounced: bool
    created_at: str

    def to_json(self) -> dict[str, Any]:
        """As ``mailbeacon record --json`` prints it."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EmailRecipient:
    """A stored recipient of a sent email."""

    email: str
    field: str
    recipient_key: str | None


@dataclass(frozen=True, slots=True)
class EmailRecord:
    """A stored sent email."""

    id: int
    message_id: str
    message_key: str
    subject: str
    sender: str
    sent_at: str
    track: bool
    log: bool
    per_recipient: bool
    tracked: bool
    untracked_reason: str
    recipients: tuple[EmailRecipient, ...]
    logged: bool

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """A stored attachment: its name on this email and its content's hash."""

    filename: str
    content_type: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """A stored logged copy."""

    email_id: int
    html: str | None
    text: str | None
    attachments: tuple[AttachmentRef, ...]
    logged_at: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The email a message key names, and the contact if the recipient is known."""

    email: EmailRecord
    contact: Contact | None
    field: str | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored event."""

    id: int
    server_id: int | None
    local_key: str | None
    email_id: int | None
    contact: str | None
    type: str
    verdict: str
    reason: str
    at: str
    ip: str
    user_agent: str
    url: str | None
    link: int | None
    inferred: bool
    anonymous: bool
    possibly_forwarded: bool
    notified: bool
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data; ``event`` is the server id and ``recipient`` the contact."""
        return {
            "id": self.id,
            "event": self.server_id,
            "local_key": self.local_key,
            "email_id": self.email_id,
            "type": self.type,
            "verdict": self.verdict,
            "reason": self.reason,
            "recipient": self.contact,
            "anonymous": self.anonymous,
            "inferred": self.inferred,
            "possibly_forwarded": self.possibly_forwarded,
            "at": self.at,
            "url": self.url,
            "link": self.link,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "notified": self.notified,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One line of the activity feed: an event with its email."""

    event: StoredEvent
    message_id: str | None
    subject: str | None
    contact_name: str | None

    def to_json(self) -> dict[str, Any]:
        """As ``mailbeacon activity --json`` prints it."""
        data = self.event.to_json()
        data.update(message_id=self.message_id, subject=self.subject, name=self.contact_name)
        return data


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """Which events a query returns; empty tuples mean any."""

    types: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    contact: str | None = None
    email_id: int | None = None
    include_anonymous: bool = True
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True, slots=True)
class SentEntry:
    """A timeline entry: an email sent to the contact, with its logged copy if any."""

    email: EmailRecord
    field: str
    copy: StoredCopy | None

    @property
    def at(self) -> str:
        """When it was sent."""
        return self.email.sent_at

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "kind": "sent",
            "at": self.at,
            "field": self.field,
            "email": self.email.to_json(),
            "copy": self.copy.to_json() if self.copy else None,
        }


@dataclass(frozen=True, slots=True)
class EventEntry:
    """A timeline entry: an event of the contact."""

    event: StoredEvent
    message_id: str | None
    subject: str | None

    @property
    def at(self) -> str:
        """When it happened."""
        return self.event.at

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        data: dict[str, Any] = {"kind": "event"}
        data.update(self.event.to_json())
        data.update(message_id=self.message_id, subject=self.subject)
        return data


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact's properties and timeline (newest first), and human engagement counts.

    Anonymous events are never part of it (rules 8, 9).
    """

    contact: Contact
    timeline: tuple[SentEntry | EventEntry, ...]
    opens: int
    clicks: int
    replies: int

    def to_json(self) -> dict[str, Any]:
        """As ``mailbeacon record --json`` prints it."""
        data = self.contact.to_json()
        data.update(
            opens=self.opens,
            clicks=self.clicks,
            replies=self.replies,
            timeline=[entry.to_json() for entry in self.timeline],
        )
        return data
