"""The agent's local records: sent emails, logged copies, events, contacts.

One SQLite file (``<data_dir>/records.db``, WAL, foreign keys on, synchronous
FULL so a committed event or "notified" mark survives a power cut) plus
attachment files (``records_files``). The schema is versioned with
``PRAGMA user_version`` and migrated on open (``records_schema``).

Concurrency: methods are synchronous and short (one small transaction each).
One connection is shared behind a lock, so a store may be used from any thread:
call it directly from the asyncio loop, or through ``asyncio.to_thread`` for
``log_copy`` with large attachments (it hashes and writes files). Other processes
(``mailbeacon activity`` while the agent runs) open their own store; WAL lets them
read while the agent writes, and writers wait up to ``busy_timeout``.

What the store does not decide: whether an event notifies or updates a contact's
properties. That policy (docs/rules.md rules 5, 8, 9) belongs to the agent's
notification module, which calls ``update_contact_engagement`` only for events
that count. The store guarantees: an event is stored once per server id (or local
key); an anonymous event never names its contact and is left out of
``contact_record``; properties never move backwards.

Stream source: server event ids are unique per tracking server. A store opened
with ``stream_source`` (e.g. the server URL and user id) keeps ids and the resume
point per source, so re-enrolling with another server never mistakes its events
for ones already stored.

The store is built from parts: ``database`` (the connection and transactions),
``contacts``, ``emails`` (sent emails and logged copies) and ``events`` (events,
the activity feed, the stream's resume point); ``rows`` turns SQL rows into records.
"""

from __future__ import annotations

from mailbeacon.agent.records.contacts import ContactRecords
from mailbeacon.agent.records.database import DB_NAME
from mailbeacon.agent.records.emails import EmailRecords
from mailbeacon.agent.records.events import EventRecords
from mailbeacon.agent.records.model import (
    ContactRecord,
    EmailRecipient,
    EventEntry,
    Resolution,
    SentEntry,
    normalize_email,
)
from mailbeacon.agent.records.rows import (
    CONTACT_COLUMNS,
    EMAIL_COLUMNS,
    EVENT_COLUMNS,
    contact_from_row,
    event_from_row,
)
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.profile import Profile

__all__ = ["RecordsStore"]


class RecordsStore(ContactRecords, EmailRecords, EventRecords):
    """The records of one profile: contacts, sent emails and events in one database.

    Each part is its own module; what needs more than one of them lives here.
    """

    @classmethod
    def for_profile(cls, profile: Profile, stream_source: str = "") -> RecordsStore:
        """The store in the profile's data folder."""
        return cls(profile.data_dir / DB_NAME, stream_source=stream_source)

    def resolve(self, message_key: str, recipient_key: str | None) -> Resolution | None:
        """The email of a message key and, if the recipient is known, its contact.

        The contact is known when the recipient key names one recipient, or when no
        key is given and the email had exactly one recipient. None for an unknown
        message key (an email this agent did not send).
        """
        email = self.email_by_key(message_key)
        if email is None:
            return None
        match: EmailRecipient | None = None
        if recipient_key is not None:
            match = next((r for r in email.recipients if r.recipient_key == recipient_key), None)
        elif len(email.recipients) == 1:
            match = email.recipients[0]
        contact = self.contact(match.email) if match else None
        return Resolution(email, contact, match.field if match else None)

    def contact_record(self, email: str, include_non_human: bool = False) -> ContactRecord | None:
        """A contact's properties and timeline (newest first), or None if unknown.

        The timeline holds the emails sent to the contact (with logged copies) and
        the contact's events; anonymous events are never in it, and events that no
        human made (bot, proxy, self) only with ``include_non_human``.
        """
        key = normalize_email(email)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = ?",  # noqa: S608
                (key,),
            ).fetchone()
            if row is None:
                return None
            sent: list[SentEntry | EventEntry] = []
            for email_row in conn.execute(
                f"SELECT {EMAIL_COLUMNS}, r.field FROM emails "  # noqa: S608
                "JOIN email_recipients r ON r.email_id = emails.id WHERE r.contact = ?",
                (key,),
            ).fetchall():
                record = self._email(conn, email_row[:11])
                sent.append(SentEntry(record, email_row[11], self._copy(conn, record.id)))
            human = "" if include_non_human else "AND e.verdict = ?"
            event_rows = conn.execute(
                f"SELECT {EVENT_COLUMNS}, m.message_id, m.subject FROM events e "  # noqa: S608
                "LEFT JOIN emails m ON m.id = e.email_id "
                f"WHERE e.contact = ? AND e.anonymous = 0 {human}",
                (key,) if include_non_human else (key, Verdict.HUMAN),
            ).fetchall()
            counts = dict(
                conn.execute(
                    "SELECT type, count(*) FROM events WHERE contact = ? AND anonymous = 0 "
                    "AND verdict = ? GROUP BY type",
                    (key, Verdict.HUMAN),
                ).fetchall()
            )
        events = [EventEntry(event_from_row(r[:18]), r[18], r[19]) for r in event_rows]
        timeline = sorted([*sent, *events], key=_timeline_order, reverse=True)
        return ContactRecord(
            contact_from_row(row),
            tuple(timeline),
            opens=int(counts.get(EventType.OPEN, 0)),
            clicks=int(counts.get(EventType.CLICK, 0)),
            replies=int(counts.get(EventType.REPLY, 0)),
        )


def _timeline_order(entry: SentEntry | EventEntry) -> tuple[str, int, int]:
    # Same instant: the email before its events (so reversed, events come first).
    if isinstance(entry, SentEntry):
        return entry.at, 0, entry.email.id
    return entry.at, 1, entry.event.id

