"""What a notification says: who, what, when, where from. Plain text only."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Summarised:
    """One event a summary stands for: what, by whom ("" for Someone), of which email."""

    kind: str
    who: str
    email: int | str | None  # the email's id, else its Message-ID: what tells emails apart
    subject: str


SUMMARY_NAMES = 2  # names before "and N others": a title must stay one glance long
SUMMARY_SUBJECT = 40
_VERBS = {EventType.OPEN: "opened", EventType.CLICK: "clicked links in",
          EventType.REPLY: "replied to"}
_COUNTS = {EventType.OPEN: ("open", "opens"), EventType.CLICK: ("click", "clicks"),
           EventType.REPLY: ("reply", "replies")}


def and_join(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def people(names: list[str], someone: bool) -> str:
    """"Ewa Lis, Piotr Nowak and 3 others"; anonymous events are one "someone else"."""
    if not names:
        return SOMEONE
    shown = names + (["someone else"] if someone else [])
    if len(shown) <= SUMMARY_NAMES + 1:
        return and_join(shown)
    return f"{', '.join(shown[:SUMMARY_NAMES])} and {len(shown) - SUMMARY_NAMES} others"


def short_quoted(subject: str, limit: int = SUMMARY_SUBJECT) -> str:
    """A subject in a sentence, cut with an ellipsis where a summary has no room."""
    text = " ".join(subject.split()) or "(no subject)"
    if len(text) <= limit:
        return f"“{text}”"
    cut = text[:limit - 1]
    # At a word's end when there is one in the second half: "Demo of the…", not "Demo of t…".
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return f"“{cut.rstrip(' ,;:-')}…”"


def summary_title(items: list[Summarised]) -> str:
    """One notification for many events, naming people:
    "Ewa Lis, Piotr Nowak and 3 others opened “Demo”"."""
    if not items:
        return "New activity"
    names = list(dict.fromkeys(i.who for i in items if i.who))
    someone = any(not i.who for i in items)
    kinds = [k for k in _VERBS if any(i.kind == k for i in items)]
    verbs = and_join([_VERBS[k] for k in kinds]) if kinds else "did something with"
    emails = list(dict.fromkeys(i.email for i in items))
    what = short_quoted(items[0].subject) if len(emails) == 1 else f"{len(emails)} emails"
    return f"{people(names, someone)} {verbs} {what}"


def summary_counts(counts: dict[str, int]) -> str:
    """"7 opens and 2 clicks" (the body of a summary says how many)."""
    pieces = []
    for kind, (one, many) in _COUNTS.items():
        n = counts.get(kind, 0)
        if n:
            pieces.append(f"{n} {one if n == 1 else many}")
    return " and ".join(pieces) or "New activity"


def summary_body(counts: dict[str, int], away: bool, one_email: bool, one_person: bool) -> str:
    """How many, when, and what a click opens: the email, the person's record, or the
    activity feed (the tray opens exactly that one window)."""
    when = "while you were away" if away else "in the last few seconds"
    if one_email:
        then = "Click to see the email."
    elif one_person:
        then = "Click to see their record."
    else:
        then = "Open the activity feed for details."
    return f"{summary_counts(counts)} {when}. {then}"


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
