"""What the email view's buttons put into a new compose window; no Qt.

* **Reply**: everyone the email went to, To as To and Cc as Cc; Bcc recipients
  stay out, since a reply would show their addresses to the others.
* **Follow up with those who have not opened**: only those, each in the field
  they had (a Bcc recipient stays in Bcc, for the same reason).
* **Correct the address and resend**: the failed addresses in To for the rep to
  correct, the original subject, and the body of the logged copy when there is
  one; without Log no text was kept, and the note says so.

Subjects get one "Re: ", never "Re: Re: ".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailbeacon.agent.records.email_view import EmailView, RecipientActivity
from mailbeacon.core.language import ENGLISH, Language

REPLY_PREFIXES = ("re:", "aw:", "sv:", "odp:")  # what mail clients put there already


@dataclass(frozen=True, slots=True)
class ComposeFill:
    """What a compose window starts with; ``note`` goes in its status line."""

    to: tuple[str, ...]
    subject: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    html: str | None = None
    text: str | None = None
    note: str = ""
    address_first: bool = False  # a resend: the rep's first job is the address


def reply_subject(subject: str) -> str:
    """``Re: <subject>``, unless it is a reply already."""
    stripped = subject.strip()
    if stripped.casefold().startswith(REPLY_PREFIXES):
        return stripped
    return f"Re: {stripped}" if stripped else "Re:"


def _by_field(people: Iterable[RecipientActivity], field: str) -> tuple[str, ...]:
    return tuple(p.email for p in people if p.field == field)


def reply_fill(view: EmailView) -> ComposeFill:
    """A reply to everyone who could see each other on the email."""
    people = view.recipients
    return ComposeFill(
        to=_by_field(people, "to"),
        cc=_by_field(people, "cc"),
        subject=reply_subject(view.email.subject),
    )


def follow_up_fill(view: EmailView, tr: Language = ENGLISH) -> ComposeFill:
    """A follow-up to those who have not opened, clicked or replied yet."""
    waiting = set(view.not_engaged)
    people = [p for p in view.recipients if p.email in waiting]
    note = ""
    if view.someone is not None:
        note = tr.t("Someone opened it without being named, so one of these may have read "
                    "it already.")
    return ComposeFill(
        to=_by_field(people, "to") + _by_field(people, ""),
        cc=_by_field(people, "cc"),
        bcc=_by_field(people, "bcc"),
        subject=reply_subject(view.email.subject),
        note=note,
    )


def resend_fill(view: EmailView, tr: Language = ENGLISH) -> ComposeFill:
    """The undelivered email again, to the failed addresses for the rep to correct."""
    copy = view.copy
    if copy is None:
        note = tr.t("Correct the address. This email was sent without Log, so its text was "
                    "not kept: write it again.")
    elif copy.attachments:
        note = tr.t("Correct the address, then send. Attachments are not added again: "
                    "attach them if they are needed.")
    else:
        note = tr.t("Correct the address, then send.")
    return ComposeFill(
        to=view.failed,
        subject=view.email.subject,
        html=copy.html if copy is not None else None,
        text=copy.text if copy is not None else None,
        note=note,
        address_first=True,
    )
