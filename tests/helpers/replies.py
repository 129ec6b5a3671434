"""Builders for incoming mail: replies, out-of-office answers, bounces, broken messages."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count

_ids = count(1)


def _lines(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("utf-8") + b"\r\n"


def reply(
    to_message_id: str,
    sender: str = "Alicja Nowak <alicja@example.com>",
    subject: str = "Re: Oferta Q4",
    body: str = "Dziękuję, wygląda dobrze.",
    message_id: str | None = None,
    references: str | None = None,
    extra: tuple[str, ...] = (),
) -> bytes:
    """A person's plain-text reply to ``to_message_id``."""
    mid = message_id or f"<reply{next(_ids)}@example.com>"
    return _lines(
        f"From: {sender}",
        "To: rep@example.net",
        f"Subject: {subject}",
        f"Message-ID: {mid}",
        f"In-Reply-To: {to_message_id}",
        f"References: {references or to_message_id}",
        "Date: Mon, 01 Jan 2030 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        *extra,
        "",
        body,
    )


def reply_with_attachment(
    to_message_id: str, sender: str = "alicja@example.com", data: bytes = b"%PDF-1.4 offer"
) -> bytes:
    """A multipart reply with a text body and a PDF attachment."""
    mid = f"<reply{next(_ids)}@example.com>"
    encoded = base64.b64encode(data).decode("ascii")
    return _lines(
        f"From: {sender}",
        "To: rep@example.net",
        "Subject: Re: Oferta Q4",
        f"Message-ID: {mid}",
        f"In-Reply-To: {to_message_id}",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="XX"',
        "",
        "--XX",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Podpisana umowa w załączniku.",
        "--XX",
        'Content-Type: application/pdf; name="umowa.pdf"',
        'Content-Disposition: attachment; filename="umowa.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        encoded,
        "--XX--",
    )


def out_of_office(
    to_message_id: str,
    sender: str = "alicja@example.com",
    subject: str = "Automatic reply: Oferta Q4",
    headers: tuple[str, ...] = ("Auto-Submitted: auto-replied",),
) -> bytes:
    """An out-of-office answer to ``to_message_id``."""
    return _lines(
        f"From: {sender}",
        "To: rep@example.net",
        f"Subject: {subject}",
        f"Message-ID: <ooo{next(_ids)}@example.com>",
        f"In-Reply-To: {to_message_id}",
        *headers,
        "Content-Type: text/plain; charset=utf-8",
        "",
        "I am out of the office until Monday.",
    )


def bounce(
    failed: str,
    original_message_id: str,
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{addr}>: Recipient address rejected: User unknown",
    sender: str = "MAILER-DAEMON@mx.example.com",
    action: str = "failed",
) -> bytes:
    """A multipart/report delivery status notification (RFC 3464) for ``failed``."""
    return _lines(
        f"From: Mail Delivery System <{sender}>",
        "To: rep@example.net",
        "Subject: Undelivered Mail Returned to Sender",
        f"Message-ID: <bounce{next(_ids)}@mx.example.com>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"',
        "",
        "--BB",
        "Content-Type: text/plain",
        "",
        "I'm sorry to have to inform you that your message could not be delivered.",
        "--BB",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.com",
        "",
        f"Final-Recipient: rfc822; {failed}",
        f"Original-Recipient: rfc822;{failed}",
        f"Action: {action}",
        f"Status: {status}",
        "Diagnostic-Code: " + diagnostic.format(addr=failed),
        "",
        "--BB",
        "Content-Type: text/rfc822-headers",
        "",
        "From: rep@example.net",
        f"To: {failed}",
        "Subject: Oferta Q4",
        f"Message-ID: {original_message_id}",
        "",
        "--BB--",
    )


def unrelated(subject: str = "Newsletter", number: int = 0) -> bytes:
    """A message that answers nothing the rep sent."""
    return _lines(
        "From: news@shop.example",
        "To: rep@example.net",
        f"Subject: {subject} {number}",
        f"Message-ID: <n{number}.{next(_ids)}@shop.example>",
        "",
        "Hello",
    )


@dataclass
class FakeIncoming:
    """An incoming message without a mail server (for the recorder's unit tests)."""

    raw: bytes
    arrived_at: datetime | None = None
    body_requests: list[int | None] = field(default_factory=list)

    @property
    def header(self) -> bytes:
        """The header block (up to and including the blank line)."""
        end = self.raw.find(b"\r\n\r\n")
        return self.raw if end < 0 else self.raw[: end + 4]

    @property
    def size(self) -> int:
        """The raw size."""
        return len(self.raw)

    async def body(self, limit: int | None = None) -> bytes:
        """The raw message (or its start)."""
        self.body_requests.append(limit)
        return self.raw if limit is None else self.raw[:limit]
