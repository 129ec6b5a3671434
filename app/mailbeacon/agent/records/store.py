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
properties. That policy (DESIGN rules 5, 8, 9) belongs to the agent's
notification module, which calls ``update_contact_engagement`` only for events
that count. The store guarantees: an event is stored once per server id (or local
key); an anonymous event never names its contact and is left out of
``contact_record``; properties never move backwards.

Stream source: server event ids are unique per tracking server. A store opened
with ``stream_source`` (e.g. the server URL and user id) keeps ids and the resume
point per source, so re-enrolling with another server never mistakes its events
for ones already stored.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbeacon.agent.records.files import AttachmentFiles
from mailbeacon.agent.records.model import (
    ENGAGEMENT_TYPES,
    EVENT_TYPES,
    FIELDS,
    ActivityFilter,
    ActivityRow,
    AttachmentRef,
    Contact,
    ContactRecord,
    EmailRecipient,
    EmailRecord,
    EventEntry,
    EventRecord,
    LoggedCopy,
    Resolution,
    SentEmail,
    SentEntry,
    StoredCopy,
    StoredEvent,
    normalize_at,
    normalize_email,
)
from mailbeacon.agent.records.schema import SchemaTooNew, migrate
from mailbeacon.core.profile import Profile

log = logging.getLogger(__name__)

DB_NAME = "records.db"
BUSY_TIMEOUT_MS = 5000

_CONTACT_COLUMNS = (
    "email, name, company, lawful_basis, last_open, last_click, last_reply, "
    "last_engagement, bounced, created_at"
)
_EVENT_COLUMNS = (
    "e.id, e.server_id, e.local_key, e.email_id, e.contact, e.type, e.verdict, e.reason, "
    "e.at, e.ip, e.user_agent, e.url, e.link, e.inferred, e.anonymous, "
    "e.possibly_forwarded, e.notified, e.details"
)
_EMAIL_COLUMNS = (
    "id, message_id, message_key, subject, sender, sent_at, track, log, per_recipient, "
    "tracked, untracked_reason"
)
# The property each engagement type moves; fixed names, safe to put into SQL.
_PROPERTY = {"open": "last_open", "click": "last_click", "reply": "last_reply"}


class RecordsError(Exception):
    """The records file cannot be used; the message names it and says why."""


class RecordsStore:
    """The records of one profile."""

    def __init__(
        self,
        path: Path,
        attachments_dir: Path | None = None,
        stream_source: str = "",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Open (creating and migrating if needed) the database at ``path``."""
        self.path = path
        self.files = AttachmentFiles(attachments_dir or path.parent / "attachments")
        self.source = stream_source
        self._now = now
        self._lock = threading.RLock()
        self._conn = self._connect(path)

    @classmethod
    def for_profile(cls, profile: Profile, stream_source: str = "") -> RecordsStore:
        """The store in the profile's data folder."""
        return cls(profile.data_dir / DB_NAME, stream_source=stream_source)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError(f"cannot open the records file {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            old = migrate(conn)
        except SchemaTooNew as exc:
            conn.close()
            raise RecordsError(
                f"the records file {path} was written by a newer MailBeacon ({exc}); "
                "update MailBeacon"
            ) from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise RecordsError(
                f"the records file {path} is damaged or not a MailBeacon database ({exc}); "
                "move it aside to start with empty records"
            ) from exc
        if old == 0:
            log.info("created records database %s", path)
        return conn

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RecordsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # A read transaction gives multi-query reads one consistent snapshot.
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def _stamp(self) -> str:
        return normalize_at(self._now())

    # ------------------------------------------------------------ contacts

    def _ensure_contact(self, conn: sqlite3.Connection, email: str, name: str = "") -> None:
        conn.execute(
            "INSERT INTO contacts (email, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (email) DO UPDATE SET name = excluded.name "
            "WHERE contacts.name = '' AND excluded.name != ''",
            (email, name.strip(), self._stamp()),
        )

    def contact(self, email: str) -> Contact | None:
        """A contact by address (any case), or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE email = ?",  # noqa: S608
                (normalize_email(email),),
            ).fetchone()
        return _contact(row) if row else None

    def contacts(self, limit: int | None = None, offset: int = 0) -> list[Contact]:
        """Contacts, most recently engaged first, then by address."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CONTACT_COLUMNS} FROM contacts "  # noqa: S608
                "ORDER BY last_engagement IS NULL, last_engagement DESC, email "
                "LIMIT ? OFFSET ?",
                (-1 if limit is None else limit, offset),
            ).fetchall()
        return [_contact(row) for row in rows]

    def upsert_contact(
        self, email: str, name: str | None = None, company: str | None = None
    ) -> Contact:
        """Create the contact if needed and set the name and company given."""
        key = normalize_email(email)
        with self._write() as conn:
            self._ensure_contact(conn, key)
            if name is not None:
                conn.execute("UPDATE contacts SET name = ? WHERE email = ?", (name.strip(), key))
            if company is not None:
                conn.execute(
                    "UPDATE contacts SET company = ? WHERE email = ?", (company.strip(), key)
                )
        return self._must_contact(key)

    def set_lawful_basis(self, email: str, basis: str | None) -> Contact:
        """Set (or with None clear) the contact's lawful basis; creates the contact."""
        key = normalize_email(email)
        value = basis.strip() if basis else None
        with self._write() as conn:
            self._ensure_contact(conn, key)
            conn.execute(
                "UPDATE contacts SET lawful_basis = ? WHERE email = ?", (value or None, key)
            )
        return self._must_contact(key)

    def set_bounced(self, email: str, bounced: bool = True) -> Contact:
        """Flag (or unflag) the contact's address as bouncing."""
        key = normalize_email(email)
        with self._write() as conn:
            self._ensure_contact(conn, key)
            conn.execute("UPDATE contacts SET bounced = ? WHERE email = ?", (int(bounced), key))
        return self._must_contact(key)

    def update_contact_engagement(self, email: str, type: str, at: str) -> Contact:
        """Move ``last_<type>`` and ``last_engagement`` forward to ``at``, never backwards.

        Call it only for events that count (human, attributable: DESIGN rules 5, 8, 9).
        """
        if type not in _PROPERTY:
            raise ValueError(f"{type!r} is not an engagement ({', '.join(ENGAGEMENT_TYPES)})")
        column = _PROPERTY[type]
        key, moment = normalize_email(email), normalize_at(at)
        with self._write() as conn:
            self._ensure_contact(conn, key)
            conn.execute(
                f"UPDATE contacts SET {column} = ? "  # noqa: S608
                f"WHERE email = ? AND ({column} IS NULL OR {column} < ?)",
                (moment, key, moment),
            )
            conn.execute(
                "UPDATE contacts SET last_engagement = NULLIF(max(coalesce(last_open, ''), "
                "coalesce(last_click, ''), coalesce(last_reply, '')), '') WHERE email = ?",
                (key,),
            )
        return self._must_contact(key)

    def _must_contact(self, key: str) -> Contact:
        found = self.contact(key)
        if found is None:  # pragma: no cover - written just before
            raise RecordsError(f"contact {key} vanished")
        return found

    # ------------------------------------------------------------ sent emails

    def record_sent(self, sent: SentEmail) -> int:
        """Store a sent email and its recipients (creating contacts); returns its id.

        Recording the same message key again returns the id already stored.
        """
        for recipient in sent.recipients:
            if recipient.field not in FIELDS:
                raise ValueError(f"recipient field must be one of {FIELDS}: {recipient.field!r}")
        sent_at = normalize_at(sent.sent_at)
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM emails WHERE message_key = ?", (sent.message_key,)
            ).fetchone()
            if row:
                return int(row[0])
            cursor = conn.execute(
                "INSERT INTO emails (message_id, message_key, subject, sender, sent_at, track, "
                "log, per_recipient, tracked, untracked_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sent.message_id,
                    sent.message_key,
                    sent.subject,
                    sent.sender,
                    sent_at,
                    int(sent.track),
                    int(sent.log),
                    int(sent.per_recipient),
                    int(sent.tracked),
                    sent.untracked_reason,
                ),
            )
            email_id = int(cursor.lastrowid or 0)
            for recipient in sent.recipients:
                address = normalize_email(recipient.email)
                self._ensure_contact(conn, address, recipient.name)
                # One address listed twice (To and Cc) is one recipient: the first wins.
                conn.execute(
                    "INSERT INTO email_recipients (email_id, contact, field, recipient_key) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (email_id, address, recipient.field, recipient.recipient_key),
                )
        return email_id

    def forget_sent(self, email_id: int) -> None:
        """Undo ``record_sent`` for an email that was not accepted after all (it could not
        be queued): the email, its copy, and contacts it alone brought in go again."""
        with self._write() as conn:
            contacts = [row[0] for row in conn.execute(
                "SELECT contact FROM email_recipients WHERE email_id = ?", (email_id,)
            )]
            conn.execute("DELETE FROM emails WHERE id = ?", (email_id,))
            for contact in contacts:
                conn.execute(
                    "DELETE FROM contacts WHERE email = ? AND name = '' AND company = '' "
                    "AND lawful_basis IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM email_recipients WHERE contact = ?) "
                    "AND NOT EXISTS (SELECT 1 FROM events WHERE contact = ?)",
                    (contact, contact, contact),
                )

    def email(self, email_id: int) -> EmailRecord | None:
        """A sent email by local id."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_EMAIL_COLUMNS} FROM emails WHERE id = ?",  # noqa: S608
                (email_id,),
            ).fetchone()
            return self._email(conn, row) if row else None

    def email_by_key(self, message_key: str) -> EmailRecord | None:
        """A sent email by the message key in its tokens."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_EMAIL_COLUMNS} FROM emails WHERE message_key = ?",  # noqa: S608
                (message_key,),
            ).fetchone()
            return self._email(conn, row) if row else None

    def emails_for_message_id(self, message_id: str) -> list[EmailRecord]:
        """Sent emails with this RFC 5322 Message-ID (angle brackets optional), oldest first."""
        bare = message_id.strip().strip("<>")
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_EMAIL_COLUMNS} FROM emails "  # noqa: S608
                "WHERE message_id IN (?, ?) ORDER BY sent_at, id",
                (bare, f"<{bare}>"),
            ).fetchall()
            return [self._email(conn, row) for row in rows]

    def _email(self, conn: sqlite3.Connection, row: Sequence[Any]) -> EmailRecord:
        recipients = conn.execute(
            "SELECT contact, field, recipient_key FROM email_recipients WHERE email_id = ? "
            "ORDER BY CASE field WHEN 'to' THEN 0 WHEN 'cc' THEN 1 ELSE 2 END, rowid",
            (row[0],),
        ).fetchall()
        logged = conn.execute(
            "SELECT 1 FROM logged_copies WHERE email_id = ?", (row[0],)
        ).fetchone()
        return EmailRecord(
            id=row[0],
            message_id=row[1],
            message_key=row[2],
            subject=row[3],
            sender=row[4],
            sent_at=row[5],
            track=bool(row[6]),
            log=bool(row[7]),
            per_recipient=bool(row[8]),
            tracked=bool(row[9]),
            untracked_reason=row[10],
            recipients=tuple(EmailRecipient(r[0], r[1], r[2]) for r in recipients),
            logged=logged is not None,
        )

    def resolve(self, message_key: str, recipient_key: str | None) -> Resolution | None:
        """The email of a message key and, if the recipient is known, its contact.

        The contact is known when the recipient key names one recipient, or when no
        key is given and the email had exactly one recipient. None for an unknown
        message key (an email this agent did not send).
        """
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_EMAIL_COLUMNS} FROM emails WHERE message_key = ?",  # noqa: S608
                (message_key,),
            ).fetchone()
            if row is None:
                return None
            email = self._email(conn, row)
        match: EmailRecipient | None = None
        if recipient_key is not None:
            match = next((r for r in email.recipients if r.recipient_key == recipient_key), None)
        elif len(email.recipients) == 1:
            match = email.recipients[0]
        contact = self.contact(match.email) if match else None
        return Resolution(email, contact, match.field if match else None)

    # ------------------------------------------------------------ logged copies

    def log_copy(self, email_id: int, copy: LoggedCopy) -> StoredCopy:
        """Store the body and attachments of a sent email (replacing an earlier copy).

        Each attachment's content is stored once per SHA-256, however often it is sent.
        """
        refs = []
        for attachment in copy.attachments:
            digest, size = self.files.put(attachment.content)
            refs.append(AttachmentRef(attachment.filename, attachment.content_type, digest, size))
        logged_at = self._stamp()
        with self._write() as conn:
            conn.execute("DELETE FROM logged_copies WHERE email_id = ?", (email_id,))
            try:
                conn.execute(
                    "INSERT INTO logged_copies (email_id, html, text, logged_at) "
                    "VALUES (?, ?, ?, ?)",
                    (email_id, copy.html, copy.text, logged_at),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"no sent email with id {email_id}") from None
            for position, ref in enumerate(refs):
                conn.execute(
                    "INSERT INTO attachments (sha256, size) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (ref.sha256, ref.size),
                )
                conn.execute(
                    "INSERT INTO email_attachments "
                    "(email_id, position, filename, content_type, sha256) VALUES (?, ?, ?, ?, ?)",
                    (email_id, position, ref.filename, ref.content_type, ref.sha256),
                )
        return StoredCopy(email_id, copy.html, copy.text, tuple(refs), logged_at)

    def logged_copy(self, email_id: int) -> StoredCopy | None:
        """The logged copy of a sent email, or None if it was not logged."""
        with self._read() as conn:
            return self._copy(conn, email_id)

    def _copy(self, conn: sqlite3.Connection, email_id: int) -> StoredCopy | None:
        row = conn.execute(
            "SELECT html, text, logged_at FROM logged_copies WHERE email_id = ?", (email_id,)
        ).fetchone()
        if row is None:
            return None
        attachments = conn.execute(
            "SELECT ea.filename, ea.content_type, ea.sha256, a.size FROM email_attachments ea "
            "JOIN attachments a USING (sha256) WHERE ea.email_id = ? ORDER BY ea.position",
            (email_id,),
        ).fetchall()
        return StoredCopy(
            email_id, row[0], row[1], tuple(AttachmentRef(*a) for a in attachments), row[2]
        )

    def attachment_path(self, sha256: str) -> Path:
        """The file holding an attachment's content."""
        return self.files.path(sha256)

    def attachment_content(self, sha256: str) -> bytes:
        """An attachment's content; raises FileNotFoundError if not stored."""
        return self.files.read(sha256)

    # ------------------------------------------------------------ events

    def add_event(self, event: EventRecord) -> int | None:
        """Store an event; returns its local id, or None if it was already stored.

        An event with a server id also moves the stream's resume point
        (``last_stream_id``) forward in the same transaction, so a crash can only
        make the stream send it again, which this method then ignores.
        """
        if event.type not in EVENT_TYPES:
            raise ValueError(f"event type must be one of {EVENT_TYPES}: {event.type!r}")
        at = normalize_at(event.at)
        contact = None if event.anonymous or not event.contact else normalize_email(event.contact)
        with self._write() as conn:
            if contact:
                self._ensure_contact(conn, contact)
            try:
                cursor = conn.execute(
                    "INSERT INTO events (source, server_id, local_key, email_id, contact, type, "
                    "verdict, reason, at, ip, user_agent, url, link, inferred, anonymous, "
                    "possibly_forwarded, details) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (
                        self.source,
                        event.server_id,
                        event.local_key,
                        event.email_id,
                        contact,
                        event.type,
                        event.verdict,
                        event.reason,
                        at,
                        event.ip,
                        event.user_agent,
                        event.url,
                        event.link,
                        int(event.inferred),
                        int(event.anonymous),
                        int(event.possibly_forwarded),
                        json.dumps(dict(event.details), sort_keys=True),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"no sent email with id {event.email_id}") from None
            if event.server_id is not None:
                self._advance_stream(conn, event.server_id)
            if cursor.rowcount != 1:
                return None
            return int(cursor.lastrowid or 0)

    def event(self, event_id: int) -> StoredEvent | None:
        """A stored event by local id."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.id = ?",  # noqa: S608
                (event_id,),
            ).fetchone()
        return _event(row) if row else None

    def event_by_server_id(self, server_id: int) -> StoredEvent | None:
        """A stored event by the server's id (in this store's stream source)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e "  # noqa: S608
                "WHERE e.source = ? AND e.server_id = ?",
                (self.source, server_id),
            ).fetchone()
        return _event(row) if row else None

    def event_by_local_key(self, local_key: str) -> StoredEvent | None:
        """A stored event by the agent's own key (replies, delivery failures)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.local_key = ?",  # noqa: S608
                (local_key,),
            ).fetchone()
        return _event(row) if row else None

    def revise_event(self, server_id: int, verdict: str, reason: str) -> StoredEvent | None:
        """Change an event's verdict (the stream's ``revise``); None if it is unknown.

        The earlier verdicts are kept in ``details["revisions"]``.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, verdict, reason, details FROM events "
                "WHERE source = ? AND server_id = ?",
                (self.source, server_id),
            ).fetchone()
            if row is None:
                return None
            details = json.loads(row[3])
            if (row[1], row[2]) != (verdict, reason):
                details.setdefault("revisions", []).append(
                    {"verdict": row[1], "reason": row[2], "revised_at": self._stamp()}
                )
            conn.execute(
                "UPDATE events SET verdict = ?, reason = ?, details = ? WHERE id = ?",
                (verdict, reason, json.dumps(details, sort_keys=True), row[0]),
            )
        return self.event(int(row[0]))

    def mark_notified(self, event_id: int) -> bool:
        """Mark an event as notified; False if it already was (so notify only on True)."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE events SET notified = 1 WHERE id = ? AND notified = 0", (event_id,)
            )
            return cursor.rowcount == 1

    def was_notified(self, server_id: int) -> bool:
        """True if the event with this server id was notified."""
        found = self.event_by_server_id(server_id)
        return bool(found and found.notified)

    def set_event_flags(
        self, event_id: int, *, possibly_forwarded: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredEvent | None:
        """Update an event's flag and merge ``details`` into its extras."""
        with self._write() as conn:
            row = conn.execute("SELECT details FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                return None
            merged = json.loads(row[0])
            merged.update(details or {})
            conn.execute(
                "UPDATE events SET details = ?, possibly_forwarded = "
                "coalesce(?, possibly_forwarded) WHERE id = ?",
                (
                    json.dumps(merged, sort_keys=True),
                    None if possibly_forwarded is None else int(possibly_forwarded),
                    event_id,
                ),
            )
        return self.event(event_id)

    def activity(
        self, limit: int | None = 100, offset: int = 0, filters: ActivityFilter | None = None
    ) -> list[ActivityRow]:
        """Events with their emails, newest first (``limit=None``: all).

        A page comes straight off the time index (~2 ms for 200 rows of 100,000);
        a feed should page with ``offset`` and take the total from ``count_events``
        rather than load everything (100,000 rows take ~0.7 s to build).
        """
        where, params = _where(filters or ActivityFilter())
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS}, m.message_id, m.subject, c.name "  # noqa: S608
                "FROM events e LEFT JOIN emails m ON m.id = e.email_id "
                "LEFT JOIN contacts c ON c.email = e.contact "
                f"{where} ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?",
                (*params, -1 if limit is None else limit, offset),
            ).fetchall()
        return [ActivityRow(_event(row[:18]), row[18], row[19], row[20]) for row in rows]

    def count_events(self, filters: ActivityFilter | None = None) -> int:
        """How many events match."""
        where, params = _where(filters or ActivityFilter())
        with self._lock:
            row = self._conn.execute(
                f"SELECT count(*) FROM events e {where}",  # noqa: S608
                params,
            ).fetchone()
        return int(row[0])

    # ------------------------------------------------------------ contact record

    def contact_record(self, email: str, include_non_human: bool = False) -> ContactRecord | None:
        """A contact's properties and timeline (newest first), or None if unknown.

        The timeline holds the emails sent to the contact (with logged copies) and
        the contact's events; anonymous events are never in it, and events that no
        human made (bot, proxy, self) only with ``include_non_human``.
        """
        key = normalize_email(email)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE email = ?",  # noqa: S608
                (key,),
            ).fetchone()
            if row is None:
                return None
            sent: list[SentEntry | EventEntry] = []
            for email_row in conn.execute(
                f"SELECT {_EMAIL_COLUMNS}, r.field FROM emails "  # noqa: S608
                "JOIN email_recipients r ON r.email_id = emails.id WHERE r.contact = ?",
                (key,),
            ).fetchall():
                record = self._email(conn, email_row[:11])
                sent.append(SentEntry(record, email_row[11], self._copy(conn, record.id)))
            human = "" if include_non_human else "AND e.verdict = 'human'"
            event_rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS}, m.message_id, m.subject FROM events e "  # noqa: S608
                "LEFT JOIN emails m ON m.id = e.email_id "
                f"WHERE e.contact = ? AND e.anonymous = 0 {human}",
                (key,),
            ).fetchall()
            counts = dict(
                conn.execute(
                    "SELECT type, count(*) FROM events WHERE contact = ? AND anonymous = 0 "
                    "AND verdict = 'human' GROUP BY type",
                    (key,),
                ).fetchall()
            )
        events = [EventEntry(_event(r[:18]), r[18], r[19]) for r in event_rows]
        timeline = sorted([*sent, *events], key=_timeline_order, reverse=True)
        return ContactRecord(
            _contact(row),
            tuple(timeline),
            opens=int(counts.get("open", 0)),
            clicks=int(counts.get("click", 0)),
            replies=int(counts.get("reply", 0)),
        )

    # ------------------------------------------------------------ stream state

    def last_stream_id(self) -> int:
        """The id of the last server event stored (0: none); resume the stream after it."""
        with self._lock:
            row = self._conn.execute(
                "SELECT last_id FROM stream_state WHERE source = ?", (self.source,)
            ).fetchone()
        return int(row[0]) if row else 0

    def set_last_stream_id(self, last_id: int) -> None:
        """Set the resume point exactly (also backwards, e.g. to fetch history again)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO stream_state (source, last_id) VALUES (?, ?) "
                "ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id",
                (self.source, last_id),
            )

    def _advance_stream(self, conn: sqlite3.Connection, server_id: int) -> None:
        conn.execute(
            "INSERT INTO stream_state (source, last_id) VALUES (?, ?) "
            "ON CONFLICT (source) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            (self.source, server_id),
        )


def _where(filters: ActivityFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.types:
        clauses.append(f"e.type IN ({', '.join('?' * len(filters.types))})")
        params += filters.types
    if filters.verdicts:
        clauses.append(f"e.verdict IN ({', '.join('?' * len(filters.verdicts))})")
        params += filters.verdicts
    if filters.contact is not None:
        clauses.append("e.contact = ?")
        params.append(normalize_email(filters.contact))
    if filters.email_id is not None:
        clauses.append("e.email_id = ?")
        params.append(filters.email_id)
    if not filters.include_anonymous:
        clauses.append("e.anonymous = 0")
    if filters.since is not None:
        clauses.append("e.at >= ?")
        params.append(normalize_at(filters.since))
    if filters.until is not None:
        clauses.append("e.at < ?")
        params.append(normalize_at(filters.until))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _timeline_order(entry: SentEntry | EventEntry) -> tuple[str, int, int]:
    # Same instant: the email before its events (so reversed, events come first).
    if isinstance(entry, SentEntry):
        return entry.at, 0, entry.email.id
    return entry.at, 1, entry.event.id


def _contact(row: Sequence[Any]) -> Contact:
    return Contact(
        email=row[0],
        name=row[1],
        company=row[2],
        lawful_basis=row[3],
        last_open=row[4],
        last_click=row[5],
        last_reply=row[6],
        last_engagement=row[7],
        bounced=bool(row[8]),
        created_at=row[9],
    )


def _event(row: Sequence[Any]) -> StoredEvent:
    # Positional and with a shortcut for empty details: the feed builds 100,000 of these.
    return StoredEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        row[7], row[8], row[9], row[10], row[11], row[12],
        bool(row[13]),
        bool(row[14]),
        bool(row[15]),
        bool(row[16]),
        {} if row[17] == "{}" else json.loads(row[17]),
    )
