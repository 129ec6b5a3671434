"""What follows from a message arriving in the rep's inbox (replies, auto-replies, bounces).

A reply to an email the rep sent through MailBeacon (matched by In-Reply-To and
References) is recorded as a ``reply`` event on that email and on the contact
who wrote it (by From: someone else on the thread counts too), moves the
contact's last reply/engagement, records an inferred open when the email had no
human open yet (docs/rules.md, rule 6), is logged with its body and attachments when
the original was logged, and notifies the rep once.

An automatic reply (out of office) is recorded as a ``reply`` with verdict
``bot``: it is in the activity feed and never notifies or counts. A bounce
marks the failed recipient's address as bouncing and records a
``delivery_failed`` event with the remote server's reason, and notifies.

Every event carries a local key built from the incoming message's Message-ID
(``reply:<id>``, ``inferred-open:<id>``, ``bounce:<id>:<address>``), so handling
the same message again (a restart, a renumbered mailbox) changes nothing.

Privacy (rule 8): with privacy on, a replying contact without a lawful basis is
anonymous: the notification says "Someone", the contact's properties stay, the
event names no contact, and the reply's content is not logged.

``build_reply_watcher`` puts it together with the IMAP watcher from settings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Protocol

from mailbeacon.agent.account.bearer import BearerSource
from mailbeacon.agent.mailbox.watch import ImapStatus, ImapWatcher, build_watcher
from mailbeacon.agent.notifications import wording
from mailbeacon.agent.notifications.model import Notification, NotificationType
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.notifications.refusals import refusal_body
from mailbeacon.agent.records.model import (
    ActivityFilter,
    Contact,
    EmailRecord,
    EventRecord,
    StoredEvent,
    normalize_at,
)
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core import reasons
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.extract import extract_for_log
from mailbeacon.core.inbound import (
    Bounce,
    FailedRecipient,
    Incoming,
    MessageKind,
    classify,
    parse_bounce,
)
from mailbeacon.core.language import ENGLISH, Language

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_LOGGED_BYTES = 50 * MiB  # a reply larger than this is recorded but not logged
BOUNCE_BYTES = 256 * 1024  # the report sits near the start; the returned email may be huge
SNIPPET = 140


class IncomingMail(Protocol):
    """A message from the inbox (``watch.IncomingMessage`` is one)."""

    @property
    def header(self) -> bytes:
        """The raw header block."""

    @property
    def size(self) -> int:
        """The whole message's size in bytes (0: unknown)."""

    @property
    def arrived_at(self) -> datetime | None:
        """When the mail server received it."""

    async def body(self, limit: int | None = None) -> bytes:
        """The whole raw message, or its first ``limit`` bytes."""


class ReplyRecorder:
    """Records what incoming mail means for the emails the rep sent; ``handle`` is the
    IMAP watcher's handler."""

    def __init__(
        self,
        store: RecordsStore,
        config: Callable[[], PolicyConfig],
        emit: Callable[[Notification], None],
        clock: Callable[[], float] = time.time,
        max_logged_bytes: int = MAX_LOGGED_BYTES,
        bounce_bytes: int = BOUNCE_BYTES,
        language: Callable[[], Language] = lambda: ENGLISH,
    ) -> None:
        self._store = store
        self._language = language  # asked per notification: a change applies at once
        self._config = config
        self._emit = emit
        self._clock = clock
        self._max_logged = max_logged_bytes
        self._bounce_bytes = bounce_bytes

    async def handle(self, message: IncomingMail) -> None:
        """Classify one incoming message and record (and notify) what it means."""
        incoming = classify(message.header)
        at = self._arrival(message)
        if incoming.kind is MessageKind.BOUNCE:
            await self._bounce(message, incoming, at)
            return
        email = self._original(incoming)
        if email is None or incoming.sender is None:
            return
        if incoming.sender == _bare(email.sender):
            return  # the rep's own message in the thread (a Cc or Bcc to self)
        if incoming.kind is MessageKind.AUTO_REPLY:
            self._auto_reply(incoming, email, at)
        else:
            await self._reply(message, incoming, email, at)

    # ------------------------------------------------------------ matching

    def _arrival(self, message: IncomingMail) -> str:
        moment = message.arrived_at or datetime.fromtimestamp(self._clock(), UTC)
        return normalize_at(moment)

    def _original(self, incoming: Incoming) -> EmailRecord | None:
        """The nearest email of the thread that the rep sent through MailBeacon."""
        for message_id in incoming.referenced:
            emails = self._store.emails_for_message_id(message_id)
            if emails:
                return _for_address(emails, incoming.sender)
        return None

    def _anonymous(self, contact: Contact | None) -> bool:
        return self._config().hides(contact)

    # ------------------------------------------------------------ replies

    async def _reply(
        self, message: IncomingMail, incoming: Incoming, email: EmailRecord, at: str
    ) -> None:
        sender = incoming.sender or ""
        key = f"reply:{incoming.identity}"
        existing = self._store.event_by_local_key(key)
        if existing is not None:
            # Recorded before but never notified (a crash, a pause): tell the rep now,
            # unless it is old news by now.
            fresh = self._clock() - _timestamp(existing.at) <= self._config().backlog_age_seconds
            if existing.verdict == Verdict.HUMAN and not existing.notified and fresh:
                self._notify_reply(existing, email, incoming, inferred=False)
            return
        contact = self._store.contact(sender)
        anonymous = self._anonymous(contact)
        recipient = any(r.email == sender for r in email.recipients)
        details: dict[str, Any] = {"subject": incoming.subject[:300], "recipient": recipient}
        if incoming.message_id:
            details["message_id"] = incoming.message_id
        if email.logged and not anonymous:
            logged = await self._log_reply(message)
            if logged:
                details["logged"] = logged
        inferred = self._infer_open(email, sender, anonymous, incoming.identity, at)
        local_id = self._store.add_event(
            EventRecord(
                type=EventType.REPLY,
                at=at,
                email_id=email.id,
                contact=None if anonymous else sender,
                local_key=key,
                anonymous=anonymous,
                details=details,
            )
        )
        if local_id is None:
            return  # recorded meanwhile by another handler run
        if not anonymous:
            self._store.update_contact_engagement(sender, EventType.REPLY, at)
        stored = self._store.event(local_id)
        if stored is not None:
            self._notify_reply(stored, email, incoming, inferred)

    def _infer_open(
        self, email: EmailRecord, sender: str, anonymous: bool, identity: str, at: str
    ) -> bool:
        """Record an inferred open if the email had no human open by this person (rule 6)."""
        opens = ActivityFilter(
            types=(EventType.OPEN,),
            verdicts=(Verdict.HUMAN,),
            email_id=email.id,
            contact=None if anonymous else sender,
        )
        if self._store.count_events(opens):
            return False
        added = self._store.add_event(
            EventRecord(
                type=EventType.OPEN,
                at=at,
                email_id=email.id,
                contact=None if anonymous else sender,
                local_key=f"inferred-open:{identity}",
                reason=reasons.INFERRED_FROM_REPLY.text(),
                inferred=True,
                anonymous=anonymous,
            )
        )
        if added is not None and not anonymous:
            self._store.update_contact_engagement(sender, EventType.OPEN, at)
        return added is not None

    async def _log_reply(self, message: IncomingMail) -> dict[str, Any] | None:
        """Store the reply's bodies and attachments as files; what the event should name."""
        if message.size > self._max_logged:
            log.info("not logging a reply of %d bytes (limit %d)", message.size, self._max_logged)
            return None
        raw = await message.body()
        copy = await asyncio.to_thread(extract_for_log, raw)
        files = self._store.files

        def put_all() -> dict[str, Any]:
            logged: dict[str, Any] = {"attachments": []}
            for name, text in (("text", copy.text), ("html", copy.html)):
                if text is not None:
                    digest, size = files.put(text.encode("utf-8"))
                    logged[name] = {"sha256": digest, "size": size}
            for attachment in copy.attachments:
                digest, size = files.put(attachment.data)
                logged["attachments"].append(
                    {
                        "filename": attachment.filename,
                        "content_type": attachment.content_type,
                        "sha256": digest,
                        "size": size,
                    }
                )
            logged["snippet"] = " ".join((copy.text or "").split())[:SNIPPET]
            return logged

        return await asyncio.to_thread(put_all)

    def _notify_reply(
        self, event: StoredEvent, email: EmailRecord, incoming: Incoming, inferred: bool
    ) -> None:
        config = self._config()
        if NotificationType.REPLY not in config.kinds or config.paused(self._clock()):
            return
        contact = None if event.anonymous else self._store.contact(event.contact or "")
        tr = self._language()
        if event.anonymous or contact is None:
            name = wording.someone(tr)
        else:
            name = contact.name or incoming.sender_name or contact.email
        logged = event.details.get("logged")
        snippet = logged.get("snippet", "") if isinstance(logged, dict) else ""
        body = wording.body_for([
            wording.since_sending(email, event.at, tr),
            "" if event.details.get("recipient", True) or event.anonymous
            else tr.t("not one of the recipients"),
            tr.t("“{subject}”", subject=snippet) if snippet else "",
        ])
        notification = Notification(
            event=None,
            type=NotificationType.REPLY,
            message_id=email.message_id,
            subject=email.subject,
            recipient=None if event.anonymous or contact is None else contact.email,
            anonymous=event.anonymous,
            title=wording.reply_title(name, email.subject, tr),
            body=body,
            at=event.at,
            inferred=inferred,
            email_id=email.id,
        )
        self._send(notification, event.id)

    def _send(self, notification: Notification, local_id: int) -> None:
        # Marked first: a crash may lose a notification but never repeats one.
        if self._store.mark_notified(local_id):
            self._emit(notification)

    # ------------------------------------------------------------ auto-replies

    def _auto_reply(self, incoming: Incoming, email: EmailRecord, at: str) -> None:
        sender = incoming.sender or ""
        anonymous = self._anonymous(self._store.contact(sender))
        self._store.add_event(
            EventRecord(
                type=EventType.REPLY,
                at=at,
                email_id=email.id,
                contact=None if anonymous else sender,
                local_key=f"reply:{incoming.identity}",
                verdict=Verdict.BOT,
                reason=reasons.AUTO_REPLY.text(why=incoming.reason)[:300],
                anonymous=anonymous,
                details={"auto": True, "subject": incoming.subject[:300]},
            )
        )

    # ------------------------------------------------------------ bounces

    async def _bounce(self, message: IncomingMail, incoming: Incoming, at: str) -> None:
        raw = await message.body(self._bounce_bytes)
        bounce = parse_bounce(raw)
        failed = bounce.failed or tuple(FailedRecipient(a) for a in incoming.failed_recipients)
        if not failed:
            log.info("a bounce (%s) names no failed recipient; ignored", incoming.reason)
            return
        emails = self._bounced_emails(bounce, incoming)
        for recipient in failed:
            email = _for_address(emails, recipient.address) if emails else None
            if email is None and self._store.contact(recipient.address) is None:
                continue  # not an address the rep wrote to through MailBeacon
            self._record_bounce(incoming, recipient, email, at)

    def _bounced_emails(self, bounce: Bounce, incoming: Incoming) -> list[EmailRecord]:
        for message_id in (bounce.original_message_id, *incoming.referenced):
            if message_id:
                emails = self._store.emails_for_message_id(message_id)
                if emails:
                    return emails
        return []

    def _record_bounce(
        self, incoming: Incoming, recipient: FailedRecipient, email: EmailRecord | None, at: str
    ) -> None:
        key = f"bounce:{incoming.identity}:{recipient.address}"
        if self._store.event_by_local_key(key) is not None:
            return
        self._store.set_bounced(recipient.address)
        reason = recipient.reason[:500]
        local_id = self._store.add_event(
            EventRecord(
                type=EventType.DELIVERY_FAILED,
                at=at,
                email_id=email.id if email else None,
                contact=recipient.address,
                local_key=key,
                reason=reason,
                details={
                    "bounce": True,
                    "status": recipient.status,
                    "recipients": [recipient.address],
                },
            )
        )
        config = self._config()
        if local_id is None or NotificationType.DELIVERY_FAILED not in config.kinds:
            return
        if config.paused(self._clock()):
            return
        subject = email.subject if email else ""
        tr = self._language()
        title = (
            wording.undelivered_title(subject, recipient.address, tr)
            if email
            else tr.t("Mail to {address} bounced", address=recipient.address)
        )
        self._send(
            Notification(
                event=None,
                type=NotificationType.DELIVERY_FAILED,
                message_id=email.message_id if email else None,
                subject=subject,
                recipient=recipient.address,
                anonymous=False,
                title=title,
                body=refusal_body(
                    reason, recipient.status or None, in_records=email is not None, tr=tr
                ),
                at=at,
                email_id=email.id if email else None,
            ),
            local_id,
        )


def build_reply_watcher(
    settings: Callable[[], Settings],
    secrets: SecretStore,
    data_dir: Path,
    store: RecordsStore,
    emit: Callable[[Notification], None],
    on_status: Callable[[ImapStatus], None] = lambda _status: None,
    clock: Callable[[], float] = time.time,
    bearer: BearerSource | None = None,
    language: Callable[[], Language] = lambda: ENGLISH,
) -> ImapWatcher | None:
    """The inbox watcher the settings ask for (``imap.url``), recording replies into
    ``store``; None when no IMAP URL is set. Raises SettingError for an unusable URL.

    ``settings`` is read again for every message (privacy, notification switches).
    """
    current = settings()
    recorder = ReplyRecorder(
        store, lambda: PolicyConfig.from_settings(settings()), emit, clock=clock,
        language=language,
    )
    return build_watcher(
        current.imap.url,
        current.imap.allow_plain,
        lambda: secrets.get(Secret.IMAP_PASSWORD),
        data_dir,
        recorder.handle,
        on_status,
        bearer=bearer,
    )


def _bare(address: str) -> str:
    return parseaddr(address)[1].strip().lower()


def _for_address(emails: list[EmailRecord], address: str | None) -> EmailRecord:
    """Of several emails with one Message-ID (copies per recipient), the one sent to
    ``address``; else the first."""
    for email in emails:
        if any(r.email == address for r in email.recipients):
            return email
    return emails[0]


def _timestamp(at: str) -> float:
    try:
        return datetime.fromisoformat(at).timestamp()
    except ValueError:
        return 0.0
