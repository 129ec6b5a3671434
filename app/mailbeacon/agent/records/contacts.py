"""The contacts part of the records store: who was emailed, and their engagement."""

from __future__ import annotations

from mailbeacon.agent.records.database import RecordsDatabase, RecordsError
from mailbeacon.agent.records.model import (
    ENGAGEMENT_TYPES,
    Contact,
    normalize_at,
    normalize_email,
)
from mailbeacon.agent.records.rows import CONTACT_COLUMNS, contact_from_row
from mailbeacon.core.events import EventType

# The property each engagement type moves; fixed names, safe to put into SQL.
_PROPERTY: dict[str, str] = {
    EventType.OPEN: "last_open", EventType.CLICK: "last_click", EventType.REPLY: "last_reply"
}


class ContactRecords(RecordsDatabase):
    """Contacts: looked up, listed, edited, and their engagement moved forward."""

    def contact(self, email: str) -> Contact | None:
        """A contact by address (any case), or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = ?",  # noqa: S608
                (normalize_email(email),),
            ).fetchone()
        return contact_from_row(row) if row else None

    def contacts(self, limit: int | None = None, offset: int = 0) -> list[Contact]:
        """Contacts, most recently engaged first, then by address."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {CONTACT_COLUMNS} FROM contacts "  # noqa: S608
                "ORDER BY last_engagement IS NULL, last_engagement DESC, email "
                "LIMIT ? OFFSET ?",
                (-1 if limit is None else limit, offset),
            ).fetchall()
        return [contact_from_row(row) for row in rows]

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

        Call it only for events that count (human, attributable: docs/rules.md rules 5, 8, 9).
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

