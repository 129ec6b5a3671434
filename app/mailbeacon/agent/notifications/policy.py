"""The notification policy: which stream events the rep hears about, and how.

Every event is stored with its verdict; only events that count as a person's
(docs/rules.md rule 5) may notify, each at most once, after a settle window in which a
``revise`` can still withdraw it. Repeated opens within a window notify once
(rule 7), inferred opens travel with their click (rule 6), anonymous events say
"Someone" and leave contacts alone (rules 8, 9), and bursts or backlog become
one summary instead of a flood.

Backlog: a stream that says ``hello`` starts with the events committed while the
agent was away, up to its ``caught_up``; those are held (a ``revise`` can still
withdraw one) and become one summary at ``caught_up`` however recent they are, and
no notification when none is left. Older servers send neither: there, events older
than ``backlog_age_seconds`` are summarised instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailbeacon.agent.notifications import wording
from mailbeacon.agent.notifications.model import Notification, NotificationType
from mailbeacon.agent.notifications.refusals import OURS, refusal_body
from mailbeacon.agent.records.model import (
    ActivityFilter,
    Contact,
    EventRecord,
    Resolution,
    normalize_at,
)
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.events import (
    CaughtUp,
    EventType,
    Revision,
    ServerEvent,
    StreamHello,
    StreamMessage,
    Verdict,
)
from mailbeacon.core.ipranges import TRUNCATED_V4_PREFIX, TRUNCATED_V6_PREFIX, parse_ip
from mailbeacon.core.language import ENGLISH, Language

log = logging.getLogger(__name__)

ALL_KINDS = frozenset(t.value for t in NotificationType)
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The knobs of the policy (from settings)."""

    settle_seconds: float = 1.5
    repeat_window_seconds: float = 60.0
    privacy_enabled: bool = False
    kinds: frozenset[str] = ALL_KINDS
    paused_until: float | None = None
    backlog_age_seconds: float = 300.0
    flood_count: int = 4
    flood_window_seconds: float = 10.0

    def hides(self, contact: Contact | None) -> bool:
        """Whether privacy makes an event of ``contact`` anonymous (docs/rules.md rule 8)."""
        return self.privacy_enabled and not (contact and contact.lawful_basis)

    def paused(self, now: float) -> bool:
        """Whether the rep paused notifications and ``now`` is before the pause ends."""
        return self.paused_until is not None and now < self.paused_until

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyConfig:
        """The policy the rep configured."""
        n = settings.notify
        # Summaries, "Sign in again" and delayed mail cannot be switched off: mail waits.
        # Reminders and late sends were asked for by the rep, email by email.
        kinds: set[str] = {
            NotificationType.SUMMARY, NotificationType.SIGN_IN, NotificationType.DELIVERY_DELAYED,
            NotificationType.SENT_LATE, NotificationType.REMINDER,
        }
        for kind, on in ((NotificationType.OPEN, n.opens), (NotificationType.CLICK, n.clicks),
                         (NotificationType.REPLY, n.replies),
                         (NotificationType.DELIVERY_FAILED, n.delivery_failures)):
            if on:
                kinds.add(kind)
        paused = None
        if n.paused_until:
            paused = datetime.fromisoformat(n.paused_until).timestamp()
        return cls(
            settle_seconds=float(settings.tracking.settle_seconds),
            repeat_window_seconds=float(settings.tracking.repeat_window_seconds),
            privacy_enabled=bool(settings.privacy.enabled),
            kinds=frozenset(kinds),
            paused_until=paused,
        )


@dataclass(slots=True)
class _Candidate:
    notification: Notification
    local_id: int | None
    kind: str
    # The repeat-window mark this candidate set, and the one it replaced (a
    # withdrawn hit must not hide the real one that follows).
    repeat_key: tuple[int, str | None, str] | None = None
    seen_at: float = 0.0
    previous: float | None = None
    # The name the notification gives ("" for Someone; None: not known yet, an
    # agent-made notification), for a summary that names people.
    who: str | None = None


@dataclass(frozen=True, slots=True)
class _Stored:
    local_id: int
    resolution: Resolution | None
    anonymous: bool
    forwarded: bool


@dataclass(slots=True)
class _Summary:
    counts: dict[str, int] = field(default_factory=dict)
    items: list[wording.Summarised] = field(default_factory=list)
    recipients: set[str | None] = field(default_factory=set)
    local_ids: list[int | None] = field(default_factory=list)
    server_ids: list[int] = field(default_factory=list)
    away: bool = False
    timer: asyncio.TimerHandle | None = None


def _ts(at: str) -> float:
    try:
        return datetime.fromisoformat(at).timestamp()
    except ValueError:
        return 0.0


def network_of(ip: str) -> str:
    """The network an address belongs to (/24 or /48), for "possibly forwarded"."""
    addr = parse_ip(ip)
    if addr is None:
        return ip
    prefix = TRUNCATED_V4_PREFIX if addr.version == 4 else TRUNCATED_V6_PREFIX
    return str(ipaddress.ip_network((addr, prefix), strict=False))


class Notifier:
    """Turns stream messages into stored events and, when they deserve it, notifications."""

    def __init__(
        self,
        store: RecordsStore,
        config: Callable[[], PolicyConfig],
        emit: Callable[[Notification], None],
        clock: Callable[[], float] = time.time,
        describe_client: Callable[[str], str] = lambda _ua: "",
        device_family: Callable[[str], str] = lambda ua: ua,
        country_of: Callable[[str], str | None] = lambda _ip: None,
        language: Callable[[], Language] = lambda: ENGLISH,
    ) -> None:
        self._store = store
        # The rep's language, asked for each notification: a change applies at once.
        self._language = language
        self._config = config
        self._emit = emit
        self._clock = clock
        self._describe = describe_client
        self._family = device_family
        self._country = country_of
        self._pending: dict[int, tuple[_Candidate, asyncio.TimerHandle | None]] = {}
        # Last notified-or-suppressed hit per (email, recipient, type): repeats within
        # the window notify once (rule 7), clicks included (one person, many links).
        self._last_seen: dict[tuple[int, str | None, str], float] = {}
        self._inferred: set[tuple[int, str | None]] = set()
        self._engagements: dict[int, tuple[asyncio.TimerHandle, tuple[str, str, str]]] = {}
        self._delivered: deque[float] = deque(maxlen=64)
        self._summary = _Summary()
        # Between the stream's hello and caught_up: the server ids held for the summary.
        self._catching_up = False
        self._held: list[int] = []

    # ------------------------------------------------------------ stream input

    async def handle(self, message: StreamMessage) -> None:
        """The stream subscriber's handler: store, then maybe notify.

        The durable writes run in a worker thread: in the embedded default this loop
        also answers pixels and SMTP, and a scanner's burst must not stall them."""
        if isinstance(message, StreamHello):
            self._catching_up = True
        elif isinstance(message, CaughtUp):
            self._caught_up()
        elif isinstance(message, Revision):
            stored = await asyncio.to_thread(
                self._store.revise_event, message.id, message.verdict, message.reason
            )
            if stored is not None:
                self._revise(message)
        else:
            config = self._config()
            stored_event = await asyncio.to_thread(self._store_event, message, config)
            if stored_event is not None:
                self._consider(message, stored_event, config)

    def _revise(self, revision: Revision) -> None:
        if revision.counts_as_human:
            return
        engagement = self._engagements.pop(revision.id, None)
        if engagement is not None:
            engagement[0].cancel()
        if revision.id in self._pending:
            candidate, timer = self._pending.pop(revision.id)
            if timer is not None:
                timer.cancel()
            self._unmark(candidate)
            log.info("withdrew notification for event %s: %s", revision.id, revision.reason)

    def _unmark(self, candidate: _Candidate) -> None:
        key = candidate.repeat_key
        if key is None or self._last_seen.get(key) != candidate.seen_at:
            return
        if candidate.previous is None:
            del self._last_seen[key]
        else:
            self._last_seen[key] = candidate.previous

    def _store_event(self, event: ServerEvent, config: PolicyConfig) -> _Stored | None:
        """Resolve and store one event (in a worker thread); None if already stored."""
        resolution = self._store.resolve(event.message, event.recipient)
        anonymous = self._anonymous(resolution, config)
        contact = None if resolution is None or anonymous else resolution.contact
        forwarded = self._possibly_forwarded(event, resolution, contact)
        local_id = self._store.add_event(
            EventRecord(
                type=event.type,
                at=event.at,
                email_id=resolution.email.id if resolution else None,
                contact=contact.email if contact else None,
                server_id=event.id,
                verdict=event.verdict,
                reason=event.reason,
                ip=event.ip,
                user_agent=event.user_agent,
                url=event.url,
                link=event.link,
                inferred=event.inferred,
                anonymous=anonymous,
                possibly_forwarded=forwarded,
                details={"via": event.via} if event.via else {},
            )
        )
        if local_id is None:
            return None
        return _Stored(local_id, resolution, anonymous, forwarded)

    def _consider(self, event: ServerEvent, stored: _Stored, config: PolicyConfig) -> None:
        """On the loop: engagement and the notification, for events that count."""
        resolution = stored.resolution
        if resolution is None or not event.counts_as_human:
            return
        contact = None if stored.anonymous else resolution.contact
        if contact is not None:
            self._engage_after_settling(event, contact.email, config)
        candidate = self._candidate(
            event, resolution, stored.anonymous, stored.forwarded, stored.local_id, config
        )
        if candidate is not None:
            self._schedule(event.id, candidate, config)

    def _engage_after_settling(self, event: ServerEvent, email: str, config: PolicyConfig) -> None:
        """Contact properties move once the settle window is past: a hit revised to
        bot within it never touches them (only human counts, rule 5)."""
        if config.settle_seconds <= 0:
            self._store.update_contact_engagement(email, event.type, event.at)
            return
        loop = asyncio.get_running_loop()
        args = (email, event.type, event.at)
        handle = loop.call_later(config.settle_seconds, self._engage, event.id, *args)
        self._engagements[event.id] = (handle, args)

    def _engage(self, event_id: int, email: str, kind: str, at: str) -> None:
        self._engagements.pop(event_id, None)
        self._store.update_contact_engagement(email, kind, at)

    # ------------------------------------------------------------ deciding

    @staticmethod
    def _anonymous(resolution: Resolution | None, config: PolicyConfig) -> bool:
        # Rule 9: no known recipient (a shared pixel) is "Someone" as well.
        if resolution is None or resolution.contact is None:
            return True
        return config.hides(resolution.contact)

    def _possibly_forwarded(
        self, event: ServerEvent, resolution: Resolution | None, contact: object
    ) -> bool:
        if event.type != EventType.OPEN or event.inferred or resolution is None or contact is None:
            return False
        earlier = self._store.activity(
            limit=50,
            filters=ActivityFilter(
                types=(EventType.OPEN,), verdicts=(Verdict.HUMAN,), email_id=resolution.email.id,
                contact=getattr(contact, "email", None),
            ),
        )
        seen = [row.event for row in earlier if not row.event.inferred]
        family = self._family(event.user_agent)
        # A proxy hides the device, and an unknown agent proves nothing.
        if not seen or family == "unknown" or family.startswith("via"):
            return False
        families = {self._family(e.user_agent) for e in seen}
        networks = {network_of(e.ip) for e in seen}
        return family not in families or network_of(event.ip) not in networks

    def _candidate(
        self,
        event: ServerEvent,
        resolution: Resolution,
        anonymous: bool,
        forwarded: bool,
        local_id: int,
        config: PolicyConfig,
    ) -> _Candidate | None:
        key = (resolution.email.id, None if anonymous else event.recipient)
        if event.type == EventType.OPEN and event.inferred:
            # An inferred open is announced by the click that caused it.
            self._inferred.add(key)
            return None
        now = _ts(event.at)
        repeat_key = (*key, event.type)
        last = self._last_seen.get(repeat_key)
        if last is not None and now - last < config.repeat_window_seconds:
            return None
        self._last_seen[repeat_key] = now
        if len(self._last_seen) > _MAX_REMEMBERED:
            self._forget_before(now - config.repeat_window_seconds)
        inferred = event.type == EventType.CLICK and key in self._inferred
        self._inferred.discard(key)
        if event.type not in config.kinds:
            return None
        tr = self._language()
        name = wording.who(resolution.contact, anonymous, tr)
        email = resolution.email
        title = wording.title_for(event.type, name, email, event.url, inferred, tr)
        body = wording.body_for([
            wording.since_sending(email, event.at, tr),
            wording.via(event.via, tr) if event.via else self._describe(event.user_agent),
            tr.country(country) if (country := self._country(event.ip)) else "",
            wording.possibly_forwarded(tr) if forwarded else "",
        ])
        contact = resolution.contact
        notification = Notification(
            event=event.id,
            type=event.type,
            message_id=email.message_id,
            subject=email.subject,
            recipient=None if anonymous or contact is None else contact.email,
            anonymous=anonymous,
            title=title,
            body=body,
            at=normalize_at(event.at),
            url=event.url,
            inferred=inferred or event.inferred,
            possibly_forwarded=forwarded,
            email_id=email.id,
            events=(event.id,),
        )
        return _Candidate(notification, local_id, event.type, repeat_key, now, last,
                          "" if anonymous else name)

    def _forget_before(self, moment: float) -> None:
        """Bound the memory of an agent that runs for months: old hits can't repeat."""
        self._last_seen = {k: t for k, t in self._last_seen.items() if t >= moment}
        if len(self._inferred) > _MAX_REMEMBERED:
            self._inferred.clear()

    # ------------------------------------------------------------ delivering

    def _schedule(self, server_id: int, candidate: _Candidate, config: PolicyConfig) -> None:
        if self._catching_up:
            # Held, not timed: the backlog's revisions follow their causes before
            # caught_up, and everything left then becomes one summary.
            self._pending[server_id] = (candidate, None)
            self._held.append(server_id)
            return
        if config.settle_seconds <= 0:
            self._deliver(candidate, config)
            return
        loop = asyncio.get_running_loop()
        timer = loop.call_later(config.settle_seconds, self._settled, server_id)
        self._pending[server_id] = (candidate, timer)

    def _settled(self, server_id: int) -> None:
        entry = self._pending.pop(server_id, None)
        if entry is not None:
            self._deliver(entry[0], self._config())

    def _deliver(self, candidate: _Candidate, config: PolicyConfig) -> None:
        now = self._clock()
        if config.paused(now):
            return
        event_time = _ts(candidate.notification.at)
        if now - event_time > config.backlog_age_seconds:
            self._add_to_summary(candidate, config, away=True)
            return
        window = [t for t in self._delivered if now - t < config.flood_window_seconds]
        if len(window) >= config.flood_count or self._summary.timer is not None:
            self._add_to_summary(candidate, config, away=False)
            return
        self._delivered.append(now)
        self._send(candidate.notification, [candidate.local_id])

    def _caught_up(self) -> None:
        """The backlog is over: what it left to notify becomes one summary now."""
        self._catching_up = False
        held, self._held = self._held, []
        config = self._config()
        paused = config.paused(self._clock())
        for server_id in held:
            entry = self._pending.pop(server_id, None)
            if entry is not None and not paused:
                self._add_to_summary(entry[0], config, away=True)
        if self._summary.away:
            self.flush_summary()

    def _send(self, notification: Notification, local_ids: list[int | None]) -> None:
        try:
            self._emit(notification)
        finally:
            for local_id in local_ids:
                if local_id is not None:
                    self._store.mark_notified(local_id)

    def _add_to_summary(self, candidate: _Candidate, config: PolicyConfig, away: bool) -> None:
        summary = self._summary
        summary.counts[candidate.kind] = summary.counts.get(candidate.kind, 0) + 1
        note = candidate.notification
        summary.items.append(wording.Summarised(
            candidate.kind, self._who(candidate), note.email_id or note.message_id, note.subject
        ))
        summary.recipients.add(None if note.anonymous else note.recipient)
        summary.local_ids.append(candidate.local_id)
        if candidate.notification.event is not None:
            summary.server_ids.append(candidate.notification.event)
        summary.away = summary.away or away
        if summary.timer is None:
            loop = asyncio.get_running_loop()
            summary.timer = loop.call_later(config.flood_window_seconds, self.flush_summary)

    def _who(self, candidate: _Candidate) -> str:
        """The name a summary gives the candidate's person ("" for Someone)."""
        if candidate.who is not None:
            return candidate.who
        note = candidate.notification
        if note.anonymous or not note.recipient:
            return ""
        try:  # one small read, only for a notification that ends up in a summary
            contact = self._store.contact(note.recipient)
        except ValueError:  # not an address the store keys: show it as it came
            contact = None
        if contact is None:
            return note.recipient
        return wording.who(contact, False, self._language())

    def flush_summary(self) -> None:
        """Send what was held back as one notification (also at shutdown).

        The title names the people ("Ewa Lis, Piotr Nowak and 3 others opened
        “Demo”"), the body says how many and when. A summary of one email names it,
        so a click opens that email; of one person, their record."""
        summary, self._summary = self._summary, _Summary()
        if summary.timer is not None:
            summary.timer.cancel()
        if not summary.local_ids:
            return
        self._delivered.append(self._clock())
        first = summary.items[0]
        one_email = len({item.email for item in summary.items}) == 1 and first.email is not None
        [recipient] = summary.recipients if len(summary.recipients) == 1 else [None]
        tr = self._language()
        notification = Notification(
            event=None,
            type=NotificationType.SUMMARY,
            message_id=first.email if one_email and isinstance(first.email, str) else None,
            subject=first.subject if one_email else "",
            recipient=recipient,
            anonymous=False,
            title=wording.summary_title(summary.items, tr),
            body=wording.summary_body(
                summary.counts, summary.away, one_email, bool(recipient), tr
            ),
            at=normalize_at(datetime.fromtimestamp(self._clock(), UTC)),
            email_id=first.email if one_email and isinstance(first.email, int) else None,
            events=tuple(summary.server_ids),
        )
        self._send(notification, summary.local_ids)

    def flush_pending(self) -> None:
        """Deliver every notification still in its settle window (at shutdown)."""
        config = self._config()
        for event_id, (handle, args) in list(self._engagements.items()):
            handle.cancel()
            self._engage(event_id, *args)
        for server_id in list(self._pending):
            candidate, timer = self._pending.pop(server_id)
            if timer is not None:
                timer.cancel()
            self._deliver(candidate, config)
        self.flush_summary()

    # ------------------------------------------------------------ local events

    def deliver(self, notification: Notification, local_id: int | None = None) -> None:
        """A notification the agent made itself (a reply): the same switches, pause,
        backlog and flood rules as the stream's."""
        config = self._config()
        if notification.type in config.kinds:
            self._deliver(_Candidate(notification, local_id, notification.type), config)

    def sign_in_required(self, why: str) -> None:
        """The provider refused the stored sign-in: tell the rep once, mail waits."""
        at = normalize_at(datetime.fromtimestamp(self._clock(), UTC))
        self.deliver(
            Notification(
                event=None,
                type=NotificationType.SIGN_IN,
                message_id=None,
                subject="",
                recipient=None,
                anonymous=False,
                title=wording.sign_in_title(self._language()),
                body=wording.sign_in_body(why, self._language()),
                at=at,
            )
        )

    def delivery_delayed(self, server: str, detail: str, waiting: int) -> None:
        """Sending stopped with mail waiting: told once per outage (agent/status.py)."""
        tr = self._language()
        self._sending_news(
            wording.delayed_title(server, tr), wording.delayed_body(detail, waiting, tr)
        )

    def delivery_resumed(self, server: str, delivered: int) -> None:
        """The outage ended: what waited went out."""
        tr = self._language()
        self._sending_news(wording.resumed_title(delivered, tr), wording.resumed_body(server, tr))

    def _sending_news(self, title: str, body: str) -> None:
        self.deliver(
            Notification(
                event=None,
                type=NotificationType.DELIVERY_DELAYED,
                message_id=None,
                subject="",
                recipient=None,
                anonymous=False,
                title=title,
                body=body,
                at=normalize_at(datetime.fromtimestamp(self._clock(), UTC)),
            )
        )

    def delivery_failed(
        self, key: str, email_id: int | None, recipients: tuple[str, ...], reply: str
    ) -> None:
        """The upstream refused an email for good: record it and tell the rep (once)."""
        email = self._store.email(email_id) if email_id is not None else None
        at = normalize_at(datetime.fromtimestamp(self._clock(), UTC))
        local_id = self._store.add_event(
            EventRecord(
                type=EventType.DELIVERY_FAILED,
                at=at,
                email_id=email.id if email else None,
                contact=recipients[0] if len(recipients) == 1 else None,
                local_key=f"{EventType.DELIVERY_FAILED}:{key}",
                reason=reply[:500],
                details={"recipients": list(recipients)},
            )
        )
        if local_id is None or NotificationType.DELIVERY_FAILED not in self._config().kinds:
            return
        subject = email.subject if email else ""
        tr = self._language()
        self._send(
            Notification(
                event=None,
                type=NotificationType.DELIVERY_FAILED,
                message_id=email.message_id if email else None,
                subject=subject,
                recipient=recipients[0] if len(recipients) == 1 else None,
                anonymous=False,
                title=wording.undelivered_title(subject, ", ".join(recipients), tr),
                # Plain words and what to do; the server's own are the event's reason.
                body=refusal_body(reply, server=OURS, in_records=email is not None, tr=tr),
                at=at,
                email_id=email.id if email else None,
            ),
            [local_id],
        )
