"""What a notification says: who, what, when, where from. Plain text only."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from mailbeacon.agent.records.model import Contact, EmailRecord
from mailbeacon.core.events import EventType

SOMEONE = "Someone"


def who(contact: Contact | None, anonymous: bool) -> str:
    """The name the rep reads: the contact's name, else address, else "Someone"."""
    if anonymous or contact is None:
        return SOMEONE
    return contact.name or contact.email


def quoted(subject: str) -> str:
    """A subject as shown inside a sentence (always as text, never markup)."""
    text = " ".join(subject.split()) or "(no subject)"
    return f"“{text[:120]}”"


def link_label(url: str | None) -> str:
    """A short label for a clicked link: host and path."""
    if not url:
        return "a link"
    parts = urlsplit(url)
    label = (parts.netloc + parts.path).rstrip("/")
    return label[:80] or url[:80]


def since_sending(email: EmailRecord, at: str) -> str:
    """When, relative to sending ("3 min after sending")."""
    try:
        delta = datetime.fromisoformat(at) - datetime.fromisoformat(email.sent_at)
    except ValueError:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s after sending"
    if seconds < 3600:
        return f"{seconds // 60} min after sending"
    if seconds < 86400:
        return f"{seconds // 3600} h after sending"
    return f"{seconds // 86400} d after sending"


def title_for(kind: str, name: str, email: EmailRecord, url: str | None, inferred: bool) -> str:
    """The notification's title line."""
    subject = quoted(email.subject)
    if kind == EventType.CLICK:
        verb = "opened and clicked" if inferred else "clicked"
        return f"{name} {verb} {link_label(url)} in {subject}"
    return f"{name} opened {subject}"


def body_for(parts: list[str]) -> str:
    """The notification's body: the known details, joined."""
    return " · ".join(p for p in parts if p)


def summary_title(counts: dict[str, int]) -> str:
    """One notification for many events ("7 opens and 2 clicks while you were away")."""
    names = {EventType.OPEN: ("open", "opens"), EventType.CLICK: ("click", "clicks"),
             EventType.REPLY: ("reply", "replies")}
    pieces = []
    for kind, (one, many) in names.items():
        n = counts.get(kind, 0)
        if n:
            pieces.append(f"{n} {one if n == 1 else many}")
    return " and ".join(pieces) or "New activity"


def delayed_title(server: str) -> str:
    """A sending outage began: which server."""
    return f"Emails are waiting: {server or 'the outgoing mail server'} is not taking mail"


def delayed_body(detail: str, waiting: int) -> str:
    """What failed and how many emails wait; nothing is lost."""
    count = f"{waiting} email waits" if waiting == 1 else f"{waiting} emails wait"
    return f"{detail} {count} in the outbox; MailBeacon keeps trying and tells you when it works."


def resumed_title(delivered: int) -> str:
    """A sending outage ended ("Delivered 3 waiting emails")."""
    return f"Delivered {delivered} waiting email" + ("" if delivered == 1 else "s")


def resumed_body(server: str) -> str:
    """Sending works again."""
    return f"{server or 'The outgoing mail server'} is taking mail again."
