"""The records database schema and its migrations (``PRAGMA user_version``).

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``; an empty file
is version 0. Add a step at the end to change the schema; never edit a step that
has shipped.
"""

from __future__ import annotations

import sqlite3

_V1 = (
    """
    CREATE TABLE contacts (
        email TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        company TEXT NOT NULL DEFAULT '',
        lawful_basis TEXT,
        last_open TEXT,
        last_click TEXT,
        last_reply TEXT,
        last_engagement TEXT,
        bounced INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE emails (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        message_key TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        sender TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        track INTEGER NOT NULL,
        log INTEGER NOT NULL,
        per_recipient INTEGER NOT NULL,
        tracked INTEGER NOT NULL,
        untracked_reason TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX emails_by_message_id ON emails(message_id)",
    """
    CREATE TABLE email_recipients (
        email_id INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
        contact TEXT NOT NULL REFERENCES contacts(email),
        field TEXT NOT NULL CHECK (field IN ('to', 'cc', 'bcc')),
        recipient_key TEXT,
        PRIMARY KEY (email_id, contact)
    )
    """,
    "CREATE UNIQUE INDEX recipients_by_key ON email_recipients(email_id, recipient_key)",
    "CREATE INDEX recipients_by_contact ON email_recipients(contact)",
    """
    CREATE TABLE logged_copies (
        email_id INTEGER PRIMARY KEY REFERENCES emails(id) ON DELETE CASCADE,
        html TEXT,
        text TEXT,
        logged_at TEXT NOT NULL
    )
    """,
    "CREATE TABLE attachments (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL)",
    """
    CREATE TABLE email_attachments (
        email_id INTEGER NOT NULL REFERENCES logged_copies(email_id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        sha256 TEXT NOT NULL REFERENCES attachments(sha256),
        PRIMARY KEY (email_id, position)
    )
    """,
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL DEFAULT '',
        server_id INTEGER,
        local_key TEXT UNIQUE,
        email_id INTEGER REFERENCES emails(id) ON DELETE SET NULL,
        contact TEXT REFERENCES contacts(email),
        type TEXT NOT NULL,
        verdict TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL,
        ip TEXT NOT NULL DEFAULT '',
        user_agent TEXT NOT NULL DEFAULT '',
        url TEXT,
        link INTEGER,
        inferred INTEGER NOT NULL DEFAULT 0,
        anonymous INTEGER NOT NULL DEFAULT 0,
        possibly_forwarded INTEGER NOT NULL DEFAULT 0,
        notified INTEGER NOT NULL DEFAULT 0,
        details TEXT NOT NULL DEFAULT '{}',
        UNIQUE (source, server_id)
    )
    """,
    "CREATE INDEX events_by_time ON events(at, id)",
    "CREATE INDEX events_by_contact ON events(contact, at)",
    "CREATE INDEX events_by_email ON events(email_id)",
    "CREATE TABLE stream_state (source TEXT PRIMARY KEY, last_id INTEGER NOT NULL)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The file was written by a newer MailBeacon."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``VERSION`` in one transaction per step; returns the old version.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read under the write lock: another process may have migrated meanwhile.
        start = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if start > VERSION:
            raise SchemaTooNew(
                f"schema version {start} is newer than this MailBeacon knows ({VERSION})"
            )
        for version in range(start, VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            # PRAGMA takes no parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return start
