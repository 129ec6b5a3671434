"""Building and handing over one email from the compose window, on a worker thread.

No Qt here. Placeholders left in the subject or body are filled from the first
To recipient's contact record (``tray.views.compose.templates``); one with no
value stops the send with words for the rep (a ``DraftError``). Attachments are
read only now, so a file that went away is reported, not sent half. The bytes
(``agent.sending.compose_message``) go to ``send`` as an ``IncomingMessage``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from mailbeacon.agent.records.model import Contact
from mailbeacon.agent.sending.compose_message import (
    Draft,
    DraftError,
    OutgoingAttachment,
    build_message,
    envelope_recipients,
    guess_content_type,
    parse_address,
)
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.core.followup_time import Delay
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.tray.views.compose.templates import fill, placeholder_values, unfilled

Send = Callable[[IncomingMessage], Awaitable[str] | str]
ContactLookup = Callable[[str], Contact | None]


@dataclass(frozen=True, slots=True)
class SendJob:
    """Everything a send needs, run on a worker thread: no Qt objects in here."""

    draft: Draft
    attachments: tuple[Path, ...]
    track: bool
    log: bool
    lookup: ContactLookup | None
    clock: Callable[[], datetime]
    send: Send
    clicks_only: bool = False  # tracked links, no pixel
    send_at: datetime | None = None  # "Send later…" (X-MailBeacon-Send-At)
    remind: Delay | None = None  # "Remind me if no reply" (X-MailBeacon-Remind; 0d: none)
    tr: Language = ENGLISH  # the rep's language, for what the rep is told

    def run(self) -> Awaitable[str] | str:
        """Fill placeholders, read the attachments, build the bytes, hand them to ``send``."""
        draft = self._filled(self.draft)
        files = []
        for path in self.attachments:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DraftError(self.tr.t(
                    "The attachment {file} cannot be read: {error}", file=path.name,
                    error=exc.strerror or exc,
                )) from exc
            files.append(OutgoingAttachment(path.name, guess_content_type(path.name), data))
        draft = replace(draft, attachments=tuple(files))
        raw = build_message(draft, self.clock())
        _name, sender = parse_address(draft.sender)
        message = IncomingMessage(
            sender, envelope_recipients(draft), raw, self.track, self.log,
            opens_override=False if self.clicks_only else None,
            send_at=self.send_at, remind=self.remind,
        )
        return self.send(message)

    def _filled(self, draft: Draft) -> Draft:
        if not unfilled(draft.subject, draft.html, draft.text):
            return draft
        first = next(iter(draft.to), None)
        if first is None:
            raise DraftError(
                self.tr.t("Placeholders are filled from the first To recipient: add one.")
            )
        name, address = parse_address(first)
        contact = self.lookup(address) if self.lookup is not None else None
        values = placeholder_values(address, contact, name)
        draft = replace(
            draft,
            subject=fill(draft.subject, values),
            html=fill(draft.html, values, as_html=True),
            text=fill(draft.text, values),
        )
        left = unfilled(draft.subject, draft.html, draft.text)
        if left:
            raise DraftError(self.tr.n(
                "Nothing is known for {fields} of {address}: replace it before sending, or "
                "add the details to the contact's record.",
                "Nothing is known for {fields} of {address}: replace them before sending, or "
                "add the details to the contact's record.",
                len(left), fields=", ".join(left), address=address,
            ))
        return draft
