"""The sent-emails part of the records store: what was sent to whom, and logged copies."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailbeacon.agent.records.database import RecordsDatabase
from mailbeacon.agent.records.model import (
    FIELDS,
    AttachmentRef,
    EmailRecipient,
    EmailRecord,
    LoggedCopy,
    SentEmail,
    StoredCopy,
    normalize_at,
    normalize_email,
)
from mailbeacon.agent.records.rows import EMAIL_COLUMNS


class EmailRecords(RecordsDatabase):
    """Sent emails, their recipients, and the logged copies of their content."""

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
        return self._email_by("id", email_id)

    def email_by_key(self, message_key: str) -> EmailRecord | None:
        """A sent email by the message key in its tokens."""
        return self._email_by("message_key", message_key)

    def _email_by(self, column: str, value: int | str) -> EmailRecord | None:
        # ``column`` is one of the fixed names above, safe to put into SQL.
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {EMAIL_COLUMNS} FROM emails WHERE {column} = ?",  # noqa: S608
                (value,),
            ).fetchone()
            return self._email(conn, row) if row else None

    def emails_for_message_id(self, message_id: str) -> list[EmailRecord]:
        """Sent emails with this RFC 5322 Message-ID (angle brackets optional), oldest first."""
        bare = message_id.strip().strip("<>")
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {EMAIL_COLUMNS} FROM emails "  # noqa: S608
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
