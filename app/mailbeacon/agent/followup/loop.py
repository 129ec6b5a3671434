"""The follow-up loop: scheduled mail goes out when due, reminders fire, sequences step.

``FollowUp.accept`` is the relay's (and the compose window's) way in: mail with a
future ``X-MailBeacon-Send-At`` is kept in the follow-up store instead of the
outbox; everything else goes straight to the sender, which mints tracking
tokens, records and queues it (so tokens are minted at send time, and "too fast
after sending" still means what it says). Reminders are set per recipient on
every email the sender took.

``tick`` is one pass over what is due by the injected clock; ``run`` repeats it
every ``poll_seconds`` (a short poll rather than a long sleep: a machine that
slept through a due time, a clock moved by the rep, or a change made from the
command line all act within one poll). Decisions:

* Nothing twice: an item is claimed in the store before it is handed over
  (agent/followup/store.py); one left half-handed by a crash is settled at start
  by its Message-ID in the records: found means handed over, else it waits again.
* The Date header of scheduled mail is set to when it goes (a mail client shows and
  sorts by it; "sent yesterday evening" would be wrong for mail sent this morning).
* Late: scheduled mail whose time came before this run started (the agent was
  stopped, the machine off), or that goes more than ``late_after`` seconds after
  its time (the machine slept), goes out with a notification saying so.
* A reminder falls due only without a person's reply from that recipient to that
  email (automatic replies are stored with verdict ``bot`` and bounces as
  ``delivery_failed``, so neither counts). A reply cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from email.utils import format_datetime
from typing import Protocol

from mailbeacon.agent.followup.store import FollowupStore, Reminder, ScheduledMail
from mailbeacon.agent.notifications import wording
from mailbeacon.agent.notifications.model import Notification, NotificationType
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.records.model import ActivityFilter, normalize_at
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Accepted, ensure_message_id, recipient_fields
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.extract import header_value
from mailbeacon.core.followup_time import Delay, Window, add_delay
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.core.mime import line_ending, split_header

log = logging.getLogger(__name__)

Send = Callable[[IncomingMessage], Awaitable[Accepted]]
POLL_SECONDS = 0.5
LATE_AFTER_SECONDS = 60.0
RETRY_SECONDS = 30.0


class StepRunner(Protocol):
    """Sequences' part of a pass (agent/followup/sequences.py)."""

    async def tick(self) -> None:
        """Send the steps that are due."""

    def recover(self) -> None:
        """Settle steps a crash left half-handed."""


def local_zone() -> tzinfo:
    """The machine's zone now (read each time: the rep may change it while running)."""
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


class FollowUp:
    """Send later, reminders and sequences over one store, one sender and one clock."""

    def __init__(
        self,
        store: FollowupStore,
        records: RecordsStore,
        send: Send,
        notify: Callable[[Notification], None],
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.time,
        zone: Callable[[], tzinfo] = local_zone,
        sequences: StepRunner | None = None,
        poll_seconds: float = POLL_SECONDS,
        late_after: float = LATE_AFTER_SECONDS,
        language: Callable[[], Language] = lambda: ENGLISH,
    ) -> None:
        self._store = store
        self._language = language  # asked per notice: a change applies at once
        self._records = records
        self._send = send
        self._notify = notify
        self._settings = settings
        self._clock = clock
        self._zone = zone
        self._sequences = sequences
        self._poll = poll_seconds
        self._late_after = late_after
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._retry_at: dict[int, float] = {}
        self._lock = asyncio.Lock()
        self._started_at = clock()

    # ------------------------------------------------------------ the way in

    async def accept(self, message: IncomingMessage) -> str:
        """The relay's accept: keep mail for later, or hand it to the sender now."""
        now = self._clock()
        if message.send_at is not None and message.send_at.timestamp() > now:
            return await asyncio.to_thread(self._schedule, message, now)
        return (await self.send_now(message)).queue_id

    async def send_now(self, message: IncomingMessage) -> Accepted:
        """Hand ``message`` to the sender and set its reminders."""
        accepted = await self._send(replace(message, send_at=None))
        await asyncio.to_thread(self._set_reminders, accepted, message.remind)
        return accepted

    def _schedule(self, message: IncomingMessage, now: float) -> str:
        assert message.send_at is not None
        domain = message.mail_from.rpartition("@")[2] or "mailbeacon.localhost"
        raw, message_id = ensure_message_id(message.data, domain)
        fields = recipient_fields(raw, message.recipients)
        shown = [r for r in message.recipients if fields[r][0] != "bcc"] or list(message.recipients)
        item_id = self._store.schedule(
            mail_from=message.mail_from,
            recipients=message.recipients,
            data=raw,
            track=message.track_override,
            log=message.log_override,
            opens=message.opens_override,
            remind=str(message.remind) if message.remind is not None else None,
            subject=header_value(raw, "Subject") or "",
            to_text=", ".join(shown),
            message_id=message_id,
            created_at=now,
            send_at=message.send_at.timestamp(),
        )
        log.info("scheduled email %d (%s) for %s", item_id, message_id, message.send_at)
        self._wake.set()
        return f"scheduled-{item_id}"

    # ------------------------------------------------------------ the loop

    async def start(self) -> None:
        """Settle what a crash left half-handed, then run the loop."""
        await asyncio.to_thread(self.recover)
        self._task = asyncio.create_task(self.run(), name="followup")

    async def stop(self) -> None:
        """Stop the loop (a pass in progress finishes first)."""
        task, self._task = self._task, None
        if task is None:
            return
        async with self._lock:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def wake(self) -> None:
        """Look again now (something changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Pass after pass until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("follow-up: a pass failed; trying again shortly")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def tick(self) -> None:
        """One pass: due scheduled mail, reminders, sequence steps."""
        async with self._lock:
            due = await asyncio.to_thread(self._store.scheduled, ("waiting",), self._clock())
            for item in due:
                now = self._clock()
                if item.send_at <= now and self._retry_at.get(item.id, 0) <= now:
                    await self._send_scheduled(item)
            await asyncio.to_thread(self._check_reminders)
            if self._sequences is not None:
                await self._sequences.tick()

    def recover(self) -> None:
        """Settle scheduled mail and sequence steps a crash left between claim and queue."""
        self._started_at = self._clock()
        for item in self._store.scheduled(("handing",)):
            emails = self._records.emails_for_message_id(item.message_id)
            if emails:
                log.info("follow-up: scheduled email %d was queued before a restart", item.id)
                self._store.scheduled_sent(item.id, emails[0].id, item.late)
            else:
                self._store.release_scheduled(item.id)
        if self._sequences is not None:
            self._sequences.recover()

    async def _send_scheduled(self, item: ScheduledMail) -> None:
        now = self._clock()
        if not await asyncio.to_thread(self._store.claim_scheduled, item.id, now):
            return  # cancelled or taken meanwhile
        data = _dated(
            await asyncio.to_thread(self._store.scheduled_data, item.id),
            datetime.fromtimestamp(now, UTC).astimezone(self._zone()),
        )
        message = IncomingMessage(
            mail_from=item.mail_from,
            recipients=item.recipients,
            data=data,
            track_override=item.track,
            log_override=item.log,
            opens_override=item.opens,
            remind=_remind_of(item.remind),
        )
        try:
            accepted = await self.send_now(message)
        except Exception as exc:
            log.warning(
                "follow-up: scheduled email %d could not be queued (%s); trying again in %d s",
                item.id,
                exc,
                RETRY_SECONDS,
            )
            self._retry_at[item.id] = now + RETRY_SECONDS
            await asyncio.to_thread(self._store.release_scheduled, item.id)
            return
        late = item.send_at < self._started_at or now - item.send_at > self._late_after
        await asyncio.to_thread(self._store.scheduled_sent, item.id, accepted.email_id, late)
        self._retry_at.pop(item.id, None)
        log.info("follow-up: scheduled email %d handed to the outbox", item.id)
        if late:
            self._notify(self._late_notice(item, accepted, now))

    def _late_notice(self, item: ScheduledMail, accepted: Accepted, now: float) -> Notification:
        tr = self._language().in_zone(self._zone())
        return Notification(
            event=None,
            type=NotificationType.SENT_LATE,
            message_id=accepted.message_id,
            subject=item.subject,
            recipient=item.recipients[0] if len(item.recipients) == 1 else None,
            anonymous=False,
            title=tr.t("Sent late: {subject}", subject=wording.quoted(item.subject, tr)),
            body=tr.t(
                "It was scheduled for {when} while MailBeacon was not running; "
                "it went out now to {recipients}.",
                when=_day(item.send_at, tr), recipients=item.to_text,
            ),
            at=normalize_at(datetime.fromtimestamp(now, UTC)),
            email_id=accepted.email_id,
        )

    # ------------------------------------------------------------ reminders

    def _set_reminders(self, accepted: Accepted, remind: Delay | None) -> None:
        delay = remind
        if delay is None:
            days = self._settings().defaults.remind_days
            delay = Delay(days, "d") if days else None
        if delay is None or delay.amount == 0:
            return
        email = self._records.email(accepted.email_id)
        if email is None:
            return
        sent_at = datetime.fromisoformat(email.sent_at)
        due = add_delay(sent_at, delay, Window(), self._zone()).timestamp()
        for recipient in email.recipients:
            contact = self._records.contact(recipient.email)
            name = contact.name if contact else ""
            self._store.add_reminder(
                email_id=email.id, message_id=email.message_id, subject=email.subject,
                recipient=recipient.email, name=name, sent_at=sent_at.timestamp(),
                due_at=due, delay=str(delay),
            )  # fmt: skip

    def replied(self, email_id: int, recipient: str) -> bool:
        """Whether ``recipient`` replied to that email as a person (not an auto-reply)."""
        found = ActivityFilter(
            types=(EventType.REPLY,), verdicts=(Verdict.HUMAN,), email_id=email_id,
            contact=recipient,
        )  # fmt: skip
        return self._records.count_events(found) > 0

    def _check_reminders(self) -> None:
        now = self._clock()
        config = PolicyConfig.from_settings(self._settings())
        # Only the due ones are looked at (twice a second, a thousand waiting reminders
        # must cost nothing); a reply is what settles them then, not the time.
        for reminder in self._store.reminders(due_by=now):
            if self.replied(reminder.email_id, reminder.recipient):
                self._store.settle_reminder(reminder.id, "replied")
                log.info("follow-up: reminder %d cancelled by a reply", reminder.id)
                continue
            if config.paused(now):
                continue  # while paused it waits: the rep asked to be told
            if self._store.settle_reminder(reminder.id, "fired"):
                self._notify(self._reminder_notice(reminder, now))

    def _reminder_notice(self, reminder: Reminder, now: float) -> Notification:
        who = reminder.name or reminder.recipient
        tr = self._language().in_zone(self._zone())
        return Notification(
            event=None,
            type=NotificationType.REMINDER,
            message_id=reminder.message_id,
            subject=reminder.subject,
            recipient=reminder.recipient,
            anonymous=False,
            title=tr.t(
                "No reply from {name} to {subject} in {delay}", name=who,
                subject=wording.quoted(_short(reminder.subject), tr),
                delay=_delay_words(reminder.delay, tr),
            ),
            body=tr.t(
                "Sent {when}. Click to open the record, write a follow-up or snooze.",
                when=_day(reminder.sent_at, tr),
            ),
            at=normalize_at(datetime.fromtimestamp(now, UTC)),
            email_id=reminder.email_id,
        )


def _dated(raw: bytes, when: datetime) -> bytes:
    """``raw`` with its top-level Date header (added if missing) saying ``when``."""
    end, _body = split_header(raw, 0, len(raw))
    date = b"Date: " + format_datetime(when).encode("ascii") + line_ending(raw)
    kept: list[bytes] = []
    in_date = replaced = False
    for line in raw[:end].splitlines(keepends=True):
        if in_date and line[:1] in (b" ", b"\t"):
            continue  # the old Date's folded continuation
        in_date = line[:5].lower() == b"date:"
        if in_date:
            if not replaced:
                kept.append(date)
                replaced = True
            continue
        kept.append(line)
    if not replaced:
        kept.insert(0, date)
    return b"".join(kept) + raw[end:]


def _remind_of(text: str | None) -> Delay | None:
    if text is None:
        return None
    amount, unit = text[:-1], text[-1:]
    return Delay(int(amount), unit)


def _day(at: float, tr: Language) -> str:
    """``Mon 7 Dec 09:00`` in the rep's zone and words (``pon. 7 gru 09:00``)."""
    local = tr.local(datetime.fromtimestamp(at, UTC))
    return tr.t("{weekday} {date} {time}", weekday=tr.weekday(local),
                date=tr.short_day(local), time=tr.clock(local))


def _short(subject: str, limit: int = 40) -> str:
    text = " ".join(subject.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _delay_words(delay: str, tr: Language = ENGLISH) -> str:
    """``3d`` → "3 days", ``1h`` → "1 hour" (Polish: "3 dni", "1 godzinę")."""
    amount, unit = int(delay[:-1]), delay[-1:]
    if unit == "s":
        return tr.n("{count} second", "{count} seconds", amount)
    if unit == "m":
        return tr.n("{count} minute", "{count} minutes", amount)
    if unit == "h":
        return tr.n("{count} hour", "{count} hours", amount)
    return tr.n("{count} day", "{count} days", amount)
