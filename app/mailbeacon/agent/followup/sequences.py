"""Sequences: each enrolled contact gets the steps in turn, and leaves when they answer.

``SequenceRunner.tick`` (a part of the follow-up loop's pass) sends every step that
is due by the injected clock. For each contact whose time has come, in this order:

1. Leaves first: a person's reply from the contact since enrolment (automatic
   replies are stored with verdict ``bot`` and do not count) or a bounce of any of
   its steps — checked right before each send, so a reply recorded one second
   before a step is due stops that step, also after a restart (the records are
   the memory, not this process).
2. The send window (days, hours, zone; the rep's zone when the file names none)
   and the daily cap: outside, the step waits for the next opening.
3. The step is claimed in the store (``claim_step``: at most once per contact and
   step), built (placeholders filled; later steps ``Re: <first subject>`` with
   In-Reply-To and References unless ``thread = false``) and handed to the
   sender, which mints tracking, records and queues it like any email. A step
   once handed over is not recalled: a reply that comes after it leaves both on
   the record.
4. The next step's time: its delay after this send, in the window.

Tracking policy: ``tracking_allowed(email)`` answers from the team's policy
(agent/tracking/team.py; the sender enforces it too): when it answers False the
steps still go, untracked (``X-MailBeacon-Track: no``), and the contact stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock_time
from email.utils import parseaddr
from pathlib import Path

from mailbeacon.agent.followup.store import Enrollment, FollowupStore, StepSend
from mailbeacon.agent.records.model import ActivityFilter, normalize_at
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Accepted
from mailbeacon.agent.sending.compose_message import Draft, build_message, format_address
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.followup_time import due_after
from mailbeacon.core.sequence_spec import (
    Sequence,
    SequenceError,
    bodies,
    contact_values,
    fill,
    parse_sequence,
    reply_subject,
    step_texts,
)

log = logging.getLogger(__name__)

Send = Callable[[IncomingMessage], Awaitable[Accepted]]
# IMAP INTERNALDATE has whole seconds and the mail server's clock: a reply stamped a
# little before the enrolment is still an answer to it.
ARRIVAL_MARGIN_SECONDS = 120.0


def template_lookup(path: Path) -> Callable[[str], tuple[str, str] | None]:
    """Saved templates (the compose window's ``templates.json``) by name, read each time."""

    def lookup(name: str) -> tuple[str, str] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        for item in data.get("templates", []) if isinstance(data, dict) else []:
            if isinstance(item, dict) and item.get("name") == name:
                return str(item.get("subject", "")), str(item.get("html", ""))
        return None

    return lookup


def sender_of(sequence: Sequence, settings: Settings) -> str | None:
    """The sequence's From, else the account's address (with its name); None if neither."""
    if sequence.sender:
        return sequence.sender
    account = settings.account
    if not account.email:
        return None
    return format_address(account.name, account.email)


class SequenceRunner:
    """Sends the due steps of every active sequence."""

    def __init__(
        self,
        store: FollowupStore,
        records: RecordsStore,
        send: Send,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.time,
        zone: Callable[[], tzinfo] = lambda: UTC,
        templates: Path | None = None,
        tracking_allowed: Callable[[str], bool] = lambda _email: True,
    ) -> None:
        self._store = store
        self._records = records
        self._send = send
        self._settings = settings
        self._clock = clock
        self._zone = zone
        self._templates = template_lookup(templates) if templates else (lambda _n: None)
        self._tracking_allowed = tracking_allowed
        self._parsed: dict[str, tuple[str, Sequence | None]] = {}

    def recover(self) -> None:
        """Steps a crash left ``handing``: queued if the records have them, else undone."""
        for step in self._store.handing_steps():
            enrollment = self._store.enrollment(step.enrollment)
            emails = self._records.emails_for_message_id(step.message_id)
            if emails and enrollment is not None:
                log.info("sequence: step %d of %s was queued before a restart",
                         step.step + 1, enrollment.email)  # fmt: skip
                self._finish_step(enrollment, step.step, emails[0].id, step.at)
            else:
                self._store.drop_step(step.enrollment, step.step)

    async def tick(self) -> None:
        """Send what is due now."""
        for row in await asyncio.to_thread(self._store.sequences):
            if row.state != "active":
                continue
            sequence = self._sequence(row.name, row.source)
            if sequence is None:
                continue
            due = await asyncio.to_thread(self._store.due_enrollments, row.name, self._clock())
            for enrollment in due:
                now = self._clock()
                if enrollment.state != "active" or enrollment.next_at is None:
                    continue
                if enrollment.next_at > now:
                    continue
                await self._due(sequence, enrollment, now)

    def _sequence(self, name: str, source: str) -> Sequence | None:
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == source:
            return cached[1]
        try:
            parsed: Sequence | None = parse_sequence(source)
        except SequenceError as exc:
            log.warning("sequence %s cannot run: %s", name, exc)
            parsed = None
        self._parsed[name] = (source, parsed)
        return parsed

    # ------------------------------------------------------------ one contact

    async def _due(self, sequence: Sequence, enrollment: Enrollment, now: float) -> None:
        left = await asyncio.to_thread(self.leaving, enrollment)
        if left is not None:
            state, reason = left
            if await asyncio.to_thread(self._store.leave, enrollment.id, state, reason):
                log.info("sequence %s: %s left (%s)", sequence.name, enrollment.email, reason)
            return
        waiting = self._window_wait(sequence, now)
        if waiting is not None:
            await asyncio.to_thread(self._store.set_next, enrollment.id, waiting)
            return
        await self._send_step(sequence, enrollment, now)

    def leaving(self, enrollment: Enrollment) -> tuple[str, str] | None:
        """("replied" | "bounced", why) when the contact must leave now, else None.

        A person's reply to any of the contact's steps, or any reply from them since
        enrolment; a bounce of any step, or any bounce of the address since enrolment.
        "Since" has a margin: an inbox stamps arrival in whole seconds, on its own clock.
        """
        start = enrollment.enrolled_at - ARRIVAL_MARGIN_SECONDS
        since = normalize_at(datetime.fromtimestamp(start, UTC))
        emails = [s.email_id for s in self._store.steps(enrollment.id) if s.email_id is not None]
        kinds: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
            ("replied", "replied", (EventType.REPLY,), (Verdict.HUMAN,)),
            ("bounced", "a step bounced", (EventType.DELIVERY_FAILED,), ()),
        )
        for state, reason, types, verdicts in kinds:
            filters = [ActivityFilter(types=types, verdicts=verdicts, email_id=e) for e in emails]
            filters.append(
                ActivityFilter(
                    types=types, verdicts=verdicts, contact=enrollment.email, since=since
                )
            )
            if any(self._records.count_events(f) for f in filters):
                return state, reason
        return None

    def _window_wait(self, sequence: Sequence, now: float) -> float | None:
        """When to look again if the window is closed or today's cap is used; else None."""
        window, zone = sequence.window, self._zone()
        at = datetime.fromtimestamp(now, UTC)
        opening = window.next_open(at, zone)
        if opening > at:
            return opening.timestamp()
        if window.daily_cap is None:
            return None
        local = window.tz(zone)
        day = window.day_of(at, local)
        start = datetime.combine(day, clock_time(0, 0), tzinfo=local)
        end = datetime.combine(day + timedelta(days=1), clock_time(0, 0), tzinfo=local)
        used = self._store.sends_between(sequence.name, start.timestamp(), end.timestamp())
        if used >= window.daily_cap:
            return window.next_day_open(at, zone).timestamp()
        return None

    async def _send_step(self, sequence: Sequence, enrollment: Enrollment, now: float) -> None:
        number = enrollment.sent
        settings = self._settings()
        sender = sender_of(sequence, settings)
        if sender is None:
            log.warning(
                "sequence %s waits: it has no 'from' and no account address is set (account.email)",
                sequence.name,
            )
            return
        earlier = await asyncio.to_thread(self._store.steps, enrollment.id)
        draft = self._draft(sequence, enrollment, number, sender, earlier)
        domain = parseaddr(sender)[1].rpartition("@")[2] or "mailbeacon.localhost"
        message_id = f"<mbseq.{enrollment.id}.{number + 1}.{secrets.token_hex(6)}@{domain}>"
        claimed = await asyncio.to_thread(
            self._store.claim_step, enrollment.id, number, message_id, draft.subject, now
        )
        if not claimed:
            return  # sent already (another pass) or the contact left meanwhile
        raw = build_message(draft, datetime.fromtimestamp(now, UTC), message_id=message_id)
        track = None if self._tracking_allowed(enrollment.email) else False
        message = IncomingMessage(
            parseaddr(sender)[1], (enrollment.email,), raw, track_override=track,
            log_override=None,
        )  # fmt: skip
        try:
            accepted = await self._send(message)
        except Exception as exc:
            log.warning("sequence %s: step %d to %s could not be queued (%s); trying again",
                        sequence.name, number + 1, enrollment.email, exc)  # fmt: skip
            await asyncio.to_thread(self._store.drop_step, enrollment.id, number)
            return
        log.info("sequence %s: step %d to %s queued", sequence.name, number + 1, enrollment.email)
        await asyncio.to_thread(self._finish_step, enrollment, number, accepted.email_id, now)

    def _finish_step(self, enrollment: Enrollment, number: int, email_id: int, at: float) -> None:
        row = self._store.sequence(enrollment.sequence)
        sequence = self._sequence(row.name, row.source) if row is not None else None
        last = sequence is None or number + 1 >= len(sequence.steps)
        next_at = None
        if sequence is not None and not last:
            step = sequence.steps[number + 1]
            moment = datetime.fromtimestamp(at, UTC)
            next_at = due_after(moment, step.delay, sequence.window, self._zone()).timestamp()
        self._store.step_sent(enrollment.id, number, email_id, next_at, last)

    def _draft(
        self,
        sequence: Sequence,
        enrollment: Enrollment,
        number: int,
        sender: str,
        earlier: list[StepSend],
    ) -> Draft:
        values = contact_values(enrollment.email, enrollment.fields)
        step = sequence.steps[number]
        subject, body_html, body_text = step_texts(step, self._templates)
        first_subject = fill(step_texts(sequence.steps[0], self._templates)[0] or "", values)
        in_reply_to = references = ""
        if number > 0 and step.thread:
            subject = reply_subject(first_subject)
            sent_ids = [s.message_id for s in earlier if s.step < number]
            if sent_ids:
                in_reply_to, references = sent_ids[-1], " ".join(sent_ids)
        else:
            subject = fill(subject or first_subject, values)
        html_body, text_body = bodies(
            fill(body_html, values, as_html=True) if body_html is not None else None,
            fill(body_text, values) if body_text is not None else None,
        )
        to = format_address(values.get("name", ""), enrollment.email)
        return Draft(
            sender=sender, to=(to,), subject=subject, html=html_body, text=text_body,
            in_reply_to=in_reply_to, references=references,
        )  # fmt: skip
