"""The bytes of an email written in the compose window (stdlib ``email``, no Qt).

The window collects a ``Draft``; :func:`build_message` turns it into RFC 5322
bytes (CRLF): ``multipart/alternative`` (text and HTML), inside
``multipart/mixed`` when there are attachments. Bcc recipients are in the
envelope (:func:`envelope_recipients`) and never in a header. Tracking is not
done here: the message goes through ``Sender.accept`` like a mail client's,
which adds a fresh pixel and tracked links per message.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid

from mailbeacon.core.language import ENGLISH, Language

# A bare address: something@domain, no spaces or angle brackets (what SMTP can carry).
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.?[^@\s<>()\[\],;:\"]*")


class DraftError(ValueError):
    """The draft cannot be sent as it is; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    """A file to attach, already read."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Draft:
    """What the rep wrote. Address fields hold ``Name <a@b>`` or bare addresses."""

    sender: str
    to: tuple[str, ...]
    subject: str
    html: str
    text: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    attachments: tuple[OutgoingAttachment, ...] = ()
    # A reply in the thread of an earlier email: In-Reply-To and References (RFC 5322 3.6.4).
    in_reply_to: str = ""
    references: str = ""


def split_addresses(text: str) -> list[str]:
    """The addresses typed into a To/Cc/Bcc field (commas or semicolons between them),
    each as written (``Name <a@b>`` or ``a@b``), quote-aware, empty ones dropped."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    angle = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        elif char in ",;" and not quoted and not angle:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def split_last(text: str) -> tuple[str, str]:
    """``(head, last)``: the field's text before the address being typed, and that address.

    ``head`` keeps its separator and a space, so ``head + completed`` is the new text.
    """
    quoted = False
    cut = 0
    for position, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char in ",;" and not quoted:
            cut = position + 1
    head = text[:cut]
    if head and not head.endswith(" "):
        head += " "
    return head, text[cut:].strip()


def parse_address(item: str, tr: Language = ENGLISH) -> tuple[str, str]:
    """``(display name, address)`` of one typed address; DraftError if it is not one."""
    pairs = getaddresses([item])
    if len(pairs) != 1:
        raise DraftError(tr.t("{address} is not one email address", address=repr(item)))
    name, address = pairs[0]
    address = address.strip()
    if not _ADDRESS.fullmatch(address) or "." not in address.rpartition("@")[2]:
        raise DraftError(tr.t("{address} is not an email address", address=repr(item)))
    return name.strip(), address


def format_address(name: str, address: str) -> str:
    """``Name <a@b>`` (quoted where needed), or the bare address without a name."""
    if not name:
        return address
    return str(Address(display_name=name, addr_spec=address))


def envelope_recipients(draft: Draft) -> tuple[str, ...]:
    """Every recipient's bare address (To, Cc, then Bcc), each once."""
    seen: set[str] = set()
    out: list[str] = []
    for item in (*draft.to, *draft.cc, *draft.bcc):
        _name, address = parse_address(item)
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return tuple(out)


def check_draft(draft: Draft, tr: Language = ENGLISH) -> None:
    """Raise DraftError naming the first thing that stops the draft from being sent."""
    if not draft.sender.strip():
        raise DraftError(tr.t("Fill in From: the address you send as."))
    parse_address(draft.sender, tr)
    if not (draft.to or draft.cc or draft.bcc):
        raise DraftError(tr.t("Add at least one recipient."))
    for item in (*draft.to, *draft.cc, *draft.bcc):
        parse_address(item, tr)


def guess_content_type(filename: str) -> str:
    """The MIME type for a file name (``application/octet-stream`` when unknown)."""
    kind, encoding = mimetypes.guess_type(filename, strict=False)
    if kind is None or encoding is not None:  # a .tar.gz is sent as the bytes it is
        return "application/octet-stream"
    return kind


def build_message(draft: Draft, now: datetime, message_id: str | None = None) -> bytes:
    """The email as SMTP bytes (CRLF); raises DraftError for a draft that cannot be sent.

    ``now`` must be timezone-aware (the Date header). A Message-ID is made from the
    sender's domain unless given.
    """
    check_draft(draft)
    sender_name, sender_address = parse_address(draft.sender)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _header_address(sender_name, sender_address)
    if draft.to:
        msg["To"] = [_header_address(*parse_address(item)) for item in draft.to]
    if draft.cc:
        msg["Cc"] = [_header_address(*parse_address(item)) for item in draft.cc]
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(now)
    domain = sender_address.rpartition("@")[2] or "mailbeacon.localhost"
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
        msg["References"] = draft.references or draft.in_reply_to
    msg.set_content(_with_final_newline(draft.text), subtype="plain", charset="utf-8")
    msg.add_alternative(_with_final_newline(draft.html), subtype="html", charset="utf-8")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not subtype or maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # the stdlib repeats it on parts it creates
    return msg.as_bytes(policy=SMTP)


def _header_address(name: str, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _with_final_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
