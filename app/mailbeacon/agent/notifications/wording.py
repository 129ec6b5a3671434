"""What a notification says: who, what, when, where from. Plain text only.

Every sentence goes through the rep's :class:`~mailbeacon.core.language.Language`
(``tr``, English unless the caller hands another): English is the source, the
catalogs in ``mailbeacon/data/locale`` hold the translations. Sentences name the
person first and use a verb form that does not depend on who it is ("Ewa Lis
otwiera …"), so no grammatical gender is guessed from a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from mailbeacon.agent.records.model import Contact, EmailRecord
from mailbeacon.core.events import EventType
from mailbeacon.core.language import ENGLISH, Language, in_language

SOMEONE = "Someone"


def someone(tr: Language = ENGLISH) -> str:
    """ "Someone" in the rep's language: an anonymous or unknown person."""
    return tr.t("Someone")


def who(contact: Contact | None, anonymous: bool, tr: Language = ENGLISH) -> str:
    """The name the rep reads: the contact's name, else address, else "Someone"."""
    if anonymous or contact is None:
        return someone(tr)
    return contact.name or contact.email


def quoted(subject: str, tr: Language = ENGLISH) -> str:
    """A subject as shown inside a sentence (always as text, never markup)."""
    text = " ".join(subject.split()) or tr.t("(no subject)")
    return tr.t("“{subject}”", subject=text[:120])


def link_label(url: str | None, tr: Language = ENGLISH) -> str:
    """A short label for a clicked link: host and path."""
    if not url:
        return tr.t("a link")
    parts = urlsplit(url)
    label = (parts.netloc + parts.path).rstrip("/")
    return label[:80] or url[:80]


def since_sending(email: EmailRecord, at: str, tr: Language = ENGLISH) -> str:
    """When, relative to sending ("3 min after sending")."""
    try:
        delta = datetime.fromisoformat(at) - datetime.fromisoformat(email.sent_at)
    except ValueError:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return tr.t("{seconds} s after sending", seconds=tr.number(seconds))
    if seconds < 3600:
        return tr.t("{minutes} min after sending", minutes=tr.number(seconds // 60))
    if seconds < 86400:
        return tr.t("{hours} h after sending", hours=tr.number(seconds // 3600))
    return tr.n("{count} d after sending", "{count} d after sending", seconds // 86400)


def title_for(
    kind: str,
    name: str,
    email: EmailRecord,
    url: str | None,
    inferred: bool,
    tr: Language = ENGLISH,
) -> str:
    """The notification's title line."""
    subject = quoted(email.subject, tr)
    if kind == EventType.CLICK:
        link = link_label(url, tr)
        if inferred:
            return tr.t(
                "{name} opened and clicked {link} in {subject}",
                name=name,
                link=link,
                subject=subject,
            )
        return tr.t("{name} clicked {link} in {subject}", name=name, link=link, subject=subject)
    return tr.t("{name} opened {subject}", name=name, subject=subject)


def reply_title(name: str, subject: str, tr: Language = ENGLISH) -> str:
    """A person's reply: "Ewa Lis replied to “Demo”"."""
    return tr.t("{name} replied to {subject}", name=name, subject=quoted(subject, tr))


def via(client: str, tr: Language = ENGLISH) -> str:
    """Which way an event came ("via Gmail's image proxy")."""
    return tr.t("via {client}", client=client)


def possibly_forwarded(tr: Language = ENGLISH) -> str:
    """The body's note on an open from another device than the first."""
    return tr.t("possibly forwarded")


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
_KINDS = (EventType.OPEN, EventType.CLICK, EventType.REPLY)


def _verb(kind: str, people: int, tr: Language) -> str:
    # The verb agrees with how many people did it (Polish: "otwiera" / "otwierają").
    if kind == EventType.OPEN:
        return tr.n("opened", "opened", people)
    if kind == EventType.CLICK:
        return tr.n("clicked links in", "clicked links in", people)
    return tr.n("replied to", "replied to", people)


def _count(kind: str, n: int, tr: Language) -> str:
    if kind == EventType.OPEN:
        return tr.n("{count} open", "{count} opens", n)
    if kind == EventType.CLICK:
        return tr.n("{count} click", "{count} clicks", n)
    return tr.n("{count} reply", "{count} replies", n)


def and_join(words: list[str], tr: Language = ENGLISH) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(words) == 1:
        return words[0]
    return tr.t("{first} and {last}", first=", ".join(words[:-1]), last=words[-1])


def people(names: list[str], someone_else: bool, tr: Language = ENGLISH) -> str:
    """ "Ewa Lis, Piotr Nowak and 3 others"; anonymous events are one "someone else"."""
    if not names:
        return someone(tr)
    shown = names + ([tr.t("someone else")] if someone_else else [])
    if len(shown) <= SUMMARY_NAMES + 1:
        return and_join(shown, tr)
    others = len(shown) - SUMMARY_NAMES
    return tr.n(
        "{names} and {count} other",
        "{names} and {count} others",
        others,
        names=", ".join(shown[:SUMMARY_NAMES]),
    )


def short_quoted(subject: str, limit: int = SUMMARY_SUBJECT, tr: Language = ENGLISH) -> str:
    """A subject in a sentence, cut with an ellipsis where a summary has no room."""
    text = " ".join(subject.split()) or tr.t("(no subject)")
    if len(text) <= limit:
        return tr.t("“{subject}”", subject=text)
    cut = text[: limit - 1]
    # At a word's end when there is one in the second half: "Demo of the…", not "Demo of t…".
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return tr.t("“{subject}”", subject=cut.rstrip(" ,;:-") + "…")


def summary_title(items: list[Summarised], tr: Language = ENGLISH) -> str:
    """One notification for many events, naming people:
    "Ewa Lis, Piotr Nowak and 3 others opened “Demo”"."""
    if not items:
        return tr.t("New activity")
    names = list(dict.fromkeys(i.who for i in items if i.who))
    someone_else = any(not i.who for i in items)
    count = max(1, len(names) + (1 if names and someone_else else 0))
    kinds = [k for k in _KINDS if any(i.kind == k for i in items)]
    verbs = (
        and_join([_verb(k, count, tr) for k in kinds], tr)
        if kinds
        else tr.n("did something with", "did something with", count)
    )
    emails = list(dict.fromkeys(i.email for i in items))
    what = (
        short_quoted(items[0].subject, tr=tr)
        if len(emails) == 1
        else tr.n("{count} email", "{count} emails", len(emails))
    )
    return tr.t(
        "{people} {verbs} {what}", people=people(names, someone_else, tr), verbs=verbs, what=what
    )


def summary_counts(counts: dict[str, int], tr: Language = ENGLISH) -> str:
    """ "7 opens and 2 clicks" (the body of a summary says how many)."""
    pieces = [_count(kind, counts[kind], tr) for kind in _KINDS if counts.get(kind, 0)]
    return and_join(pieces, tr) if pieces else tr.t("New activity")


def summary_body(
    counts: dict[str, int],
    away: bool,
    one_email: bool,
    one_person: bool,
    tr: Language = ENGLISH,
) -> str:
    """How many, when, and what a click opens: the email, the person's record, or the
    activity feed (the tray opens exactly that one window)."""
    how_many = summary_counts(counts, tr)
    if one_email:
        then = tr.t("Click to see the email.")
    elif one_person:
        then = tr.t("Click to see their record.")
    else:
        then = tr.t("Open the activity feed for details.")
    if away:
        return tr.t("{counts} while you were away. {then}", counts=how_many, then=then)
    return tr.t("{counts} in the last few seconds. {then}", counts=how_many, then=then)


def delayed_title(server: str, tr: Language = ENGLISH) -> str:
    """A sending outage began: which server."""
    if not server:
        return tr.t("Emails are waiting: the outgoing mail server is not taking mail")
    return tr.t("Emails are waiting: {server} is not taking mail", server=server)


def delayed_body(detail: str, waiting: int, tr: Language = ENGLISH) -> str:
    """What failed and how many emails wait; nothing is lost."""
    return tr.n(
        "{detail} {count} email waits in the outbox; MailBeacon keeps trying and tells "
        "you when it works.",
        "{detail} {count} emails wait in the outbox; MailBeacon keeps trying and tells "
        "you when it works.",
        waiting,
        detail=detail,
    )


def resumed_title(delivered: int, tr: Language = ENGLISH) -> str:
    """A sending outage ended ("Delivered 3 waiting emails")."""
    return tr.n("Delivered {count} waiting email", "Delivered {count} waiting emails", delivered)


def resumed_body(server: str, tr: Language = ENGLISH) -> str:
    """Sending works again."""
    if not server:
        return tr.t("The outgoing mail server is taking mail again.")
    return tr.t("{server} is taking mail again.", server=server)


def sign_in_title(tr: Language = ENGLISH) -> str:
    """The provider refused the stored sign-in."""
    return tr.t("Sign in again")


def sign_in_body(why: str, tr: Language = ENGLISH) -> str:
    """Why, and that mail waits (``why`` comes worded by the sign-in)."""
    return tr.t(
        "{why} Your emails wait in the outbox until you sign in.", why=in_language(why, tr)
    )


def undelivered_title(subject: str, recipients: str, tr: Language = ENGLISH) -> str:
    """An email that could not be delivered, to whom."""
    return tr.t(
        "Could not deliver {subject} to {recipients}",
        subject=quoted(subject, tr),
        recipients=recipients,
    )
