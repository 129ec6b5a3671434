"""From "the client handed us a message" to "it is durably queued": decide, rewrite,
record, queue. The relay answers 250 only after ``Sender.accept`` returns."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Protocol

from mailbeacon.agent.records.model import Attachment, LoggedCopy, Recipient, SentEmail
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.extract import extract_for_log, header_value
from mailbeacon.core.policy import MessageTracking, TeamPolicy, constrain
from mailbeacon.core.rewrite import Plan, RewriteResult, UrlMinter, rewrite_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """Track and Log for one message: the message's own say, else the rep's defaults.

    ``opens`` off means clicks only: no pixel, no honeypot (docs/rules.md rule 1);
    ``clicks`` is then on whatever ``tracking.clicks`` says, because the rep asked
    for exactly that.
    """

    track: bool
    log: bool
    opens: bool = True
    clicks: bool = True


def decide(
    message: IncomingMessage, settings: Settings, policy: TeamPolicy | None = None
) -> Decision:
    """Per-message overrides over the defaults from settings, within the team's policy
    (core/policy.py: tracking off for the account means nothing is tracked whatever the
    message asks; clicks enforced off means no rewritten link).

    The overrides: docs/interfaces.md#per-message-control-at-the-relay.
    """
    track = settings.defaults.track if message.track_override is None else message.track_override
    log_ = settings.defaults.log if message.log_override is None else message.log_override
    # "X-MailBeacon-Track: clicks" / clicks@mailbeacon.invalid (core/control.py). Read by
    # name so this works with an IncomingMessage that does not carry the field yet.
    opens_override = message.opens_override
    opens = settings.tracking.opens if opens_override is None else opens_override
    clicks = settings.tracking.clicks or not opens
    if policy is not None:
        allowed = constrain(policy, MessageTracking(track, opens, clicks))
        track, opens, clicks = allowed.track, allowed.opens, allowed.clicks
    return Decision(track, log_, opens, clicks)


def ensure_message_id(raw: bytes, domain: str) -> tuple[bytes, str]:
    """The message with a Message-ID (added when the client gave none) and that id.

    Replies and the Sent-folder cleanup find an email by its Message-ID, so one the
    upstream would invent later is no use to us.
    """
    existing = header_value(raw, "Message-ID")
    if existing:
        return raw, existing.strip()
    message_id = f"<{uuid.uuid4().hex}@{domain}>"
    newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    return b"Message-ID: " + message_id.encode("ascii") + newline + raw, message_id


def recipient_fields(raw: bytes, envelope: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Each envelope recipient's header (to, cc; the rest were Bcc) and display name."""
    # Raw header values: a comma inside an encoded display name is not a separator.
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    found: dict[str, tuple[str, str]] = {}
    for name in ("cc", "to"):  # To wins when an address is in both
        for display, address in getaddresses([str(v) for v in headers.get_all(name, [])]):
            if address:
                found[address.lower()] = (name, _decoded(display))
    return {rcpt: found.get(rcpt.lower(), ("bcc", "")) for rcpt in envelope}


def _decoded(display: str) -> str:
    try:
        return " ".join(str(make_header(decode_header(display))).split())
    except (ValueError, LookupError, UnicodeError):
        return display


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message durably queued: its first queue id, its record and its Message-ID."""

    queue_id: str
    email_id: int
    message_id: str


class OriginalKeeper(Protocol):
    """Keeps the untracked original of a tracked send until Sent is put right
    (``sent_cleanup.SentCleanup`` is one)."""

    async def keep(
        self, original: bytes, message_id: str, message_key: str, email_id: int, copies: int
    ) -> bool:
        """Keep it durably; False when it was not kept (the mail goes out anyway)."""
        ...

    async def forget(self, email_id: int) -> None:
        """Drop it again (the send was not queued)."""
        ...


class Sender:
    """The relay's and the compose window's way into the outbox."""

    def __init__(
        self,
        store: RecordsStore,
        outbox: Outbox,
        minter: UrlMinter,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.time,
        keeper: OriginalKeeper | None = None,
        policy: Callable[[], TeamPolicy] | None = None,
        on_tracked: Callable[[str], None] = lambda _key: None,
    ) -> None:
        # The team's policy as the agent holds it now (agent/settings/team.py), and who
        # hears of each tracked send (the team report, by the message's tracking key).
        self._policy = policy
        self._on_tracked = on_tracked
        self._store = store
        self._outbox = outbox
        self._minter = minter
        self._settings = settings
        self._clock = clock
        self._keeper = keeper

    async def accept(self, message: IncomingMessage) -> str:
        """Rewrite, record and durably queue ``message``; returns the first queue id."""
        return (await self.accept_recorded(message)).queue_id

    async def accept_recorded(self, message: IncomingMessage) -> Accepted:
        """As ``accept``, also saying which record it made (reminders, sequences).

        Tracking tokens are minted here, at send time: a scheduled email is handed
        in only when it is due (agent/followup).
        """
        settings = self._settings()
        decision = decide(message, settings, None if self._policy is None else self._policy())
        domain = message.mail_from.rpartition("@")[2] or "mailbeacon.localhost"
        raw, message_id = ensure_message_id(message.data, domain)
        plan = Plan(
            track=decision.track,
            clicks=decision.clicks,
            per_recipient=settings.tracking.per_recipient,
            opens=decision.opens,
        )
        # Rewriting a large message is CPU work: keep the event loop answering.
        result = await asyncio.to_thread(
            rewrite_message, raw, message.recipients, plan, self._minter
        )
        if decision.track and not result.tracked:
            log.info("sending %s untracked: %s", message_id, result.untracked_reason)
        # With a pixel: the untracked original is kept until the Sent folder is put right.
        # A clicks-only copy has no pixel to prove it ours (agent/mailbox/sent_copies.py),
        # so the Sent cleanup could not replace it: nothing to keep.
        keeper = self._keeper if result.tracked and result.pixel else None
        needed = sum(c.size for c in result.copies) + (len(raw) if decision.log else 0)
        needed += len(raw) if keeper is not None else 0
        await self._outbox.ensure_space(needed)
        subject = header_value(raw, "Subject") or ""
        email_id = await asyncio.to_thread(
            self._record, message, raw, subject, message_id, decision, result
        )
        items = [
            OutboxItem(
                mail_from=message.mail_from,
                recipients=c.recipients,
                data=c.pieces,
                meta={"email_id": email_id, "message_id": message_id},
            )
            for c in result.copies
        ]
        kept = False
        try:
            if decision.log:
                await asyncio.to_thread(self._log, email_id, raw)
            if keeper is not None:  # durably, before the relay answers 250
                kept = await keeper.keep(
                    raw, message_id, result.message_key, email_id, len(result.copies)
                )
            ids = await self._outbox.enqueue_many(items)
        except BaseException:
            # Not queued means not accepted (the relay answers 451): no "sent" entry may
            # stay on any contact's timeline.
            await self._forget(email_id)
            if keeper is not None and kept:
                await keeper.forget(email_id)
            raise
        if result.tracked:
            self._on_tracked(result.message_key)
        return Accepted(ids[0], email_id, message_id)

    async def _forget(self, email_id: int) -> None:
        try:
            await asyncio.to_thread(self._store.forget_sent, email_id)
        except Exception:
            log.exception("could not remove the record of unqueued email %s", email_id)

    def _record(
        self,
        message: IncomingMessage,
        raw: bytes,
        subject: str,
        message_id: str,
        decision: Decision,
        result: RewriteResult,
    ) -> int:
        fields = recipient_fields(raw, message.recipients)
        keys = {rcpt: c.recipient_key for c in result.copies for rcpt in c.recipients}
        return self._store.record_sent(
            SentEmail(
                message_id=message_id,
                message_key=result.message_key,
                subject=subject,
                sender=message.mail_from,
                sent_at=datetime.fromtimestamp(self._clock(), UTC).isoformat(),
                recipients=tuple(
                    Recipient(rcpt, fields[rcpt][0], fields[rcpt][1], keys.get(rcpt))
                    for rcpt in message.recipients
                ),
                track=decision.track,
                log=decision.log,
                per_recipient=len(result.copies) > 1,
                tracked=result.tracked,
                untracked_reason=result.untracked_reason or "",
            )
        )

    def _log(self, email_id: int, raw: bytes) -> None:
        copy = extract_for_log(raw)
        self._store.log_copy(
            email_id,
            LoggedCopy(
                html=copy.html,
                text=copy.text,
                attachments=tuple(
                    Attachment(a.filename, a.content_type, a.data) for a in copy.attachments
                ),
            ),
        )
