"""The events part of the records store: opens, clicks, replies, delivery failures,
the activity feed, and where the server's event stream resumes."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from mailbeacon.agent.records.database import RecordsDatabase
from mailbeacon.agent.records.model import (
    EVENT_TYPES,
    ActivityFilter,
    ActivityRow,
    EventRecord,
    StoredEvent,
    normalize_at,
    normalize_email,
)
from mailbeacon.agent.records.rows import (
    EVENT_COLUMNS,
    event_from_row,
    where_clause,
)


class EventRecords(RecordsDatabase):
    """Events, stored once each, and the stream's resume point."""

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
        return self._event_where("e.id = ?", event_id)

    def event_by_server_id(self, server_id: int) -> StoredEvent | None:
        """A stored event by the server's id (in this store's stream source)."""
        return self._event_where("e.source = ? AND e.server_id = ?", self.source, server_id)

    def event_by_local_key(self, local_key: str) -> StoredEvent | None:
        """A stored event by the agent's own key (replies, delivery failures)."""
        return self._event_where("e.local_key = ?", local_key)

    def _event_where(self, condition: str, *params: Any) -> StoredEvent | None:
        # ``condition`` is one of the fixed texts above, safe to put into SQL.
        with self._lock:
            row = self._conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events e WHERE {condition}",  # noqa: S608
                params,
            ).fetchone()
        return event_from_row(row) if row else None

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
        where, params = where_clause(filters or ActivityFilter())
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {EVENT_COLUMNS}, m.message_id, m.subject, c.name "  # noqa: S608
                "FROM events e LEFT JOIN emails m ON m.id = e.email_id "
                "LEFT JOIN contacts c ON c.email = e.contact "
                f"{where} ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?",
                (*params, -1 if limit is None else limit, offset),
            ).fetchall()
        return [ActivityRow(event_from_row(row[:18]), row[18], row[19], row[20]) for row in rows]

    def count_events(self, filters: ActivityFilter | None = None) -> int:
        """How many events match."""
        where, params = where_clause(filters or ActivityFilter())
        with self._lock:
            row = self._conn.execute(
                f"SELECT count(*) FROM events e {where}",  # noqa: S608
                params,
            ).fetchone()
        return int(row[0])
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
