"""The durable state of follow-up: scheduled mail, reminders, sequences and who is where.

One SQLite file (``<data_dir>/followup.db``, WAL, synchronous FULL) shared by the
running agent and the command line (``mailbeacon schedule``, ``mailbeacon
sequence``) and the tray's windows: they change it directly and the running agent
reads it again on every pass of its loop, so a change acts without a restart.

Exactly once (docs/promises.md#follow-up-never-twice): an item is *claimed*
(``waiting`` → ``handing``) in one conditional UPDATE before it is handed to the
sender, and marked ``sent`` once the sender has queued it durably. A second
claimer (another pass, a cancel from the command line) finds it no longer
``waiting``. After a crash an item left ``handing`` is settled at the next start by
looking for its Message-ID in the records (agent/followup/loop.py).

Times are UTC seconds since the epoch (the injected clock's).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbeacon.core.durable import private_file
from mailbeacon.core.language import Phrase, mark

log = logging.getLogger(__name__)

DB_NAME = "followup.db"
BUSY_TIMEOUT_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduled (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mail_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    data BLOB NOT NULL,
    track INTEGER,
    log INTEGER,
    opens INTEGER,
    remind TEXT,
    subject TEXT NOT NULL DEFAULT '',
    to_text TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    send_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting',
    handed_at REAL,
    email_id INTEGER,
    late INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reminders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    recipient TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    sent_at REAL NOT NULL,
    due_at REAL NOT NULL,
    delay TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting',
    UNIQUE (email_id, recipient)
);
CREATE TABLE IF NOT EXISTS sequences (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence TEXT NOT NULL REFERENCES sequences (name) ON DELETE CASCADE,
    email TEXT NOT NULL,
    fields TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'active',
    sent INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    enrolled_at REAL NOT NULL,
    left_reason TEXT NOT NULL DEFAULT '',
    UNIQUE (sequence, email)
);
CREATE TABLE IF NOT EXISTS step_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    enrollment INTEGER NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'handing',
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    email_id INTEGER,
    at REAL NOT NULL,
    UNIQUE (enrollment, step)
);
CREATE INDEX IF NOT EXISTS scheduled_due ON scheduled (state, send_at);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (state, due_at);
CREATE INDEX IF NOT EXISTS enrollments_due ON enrollments (sequence, state, next_at);
"""


class FollowupError(Exception):
    """The follow-up file cannot be used; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class ScheduledMail:
    """One email waiting to be sent later (or already handled)."""

    id: int
    mail_from: str
    recipients: tuple[str, ...]
    track: bool | None
    log: bool | None
    opens: bool | None
    remind: str | None
    subject: str
    to_text: str
    message_id: str
    created_at: float
    send_at: float
    state: str
    email_id: int | None
    late: bool

    def to_json(self) -> dict[str, Any]:
        """As ``mailbeacon schedule list --json`` prints it (times added by the caller)."""
        return {
            "id": self.id,
            "subject": self.subject,
            "to": list(self.recipients),
            "from": self.mail_from,
            "message_id": self.message_id,
            "state": self.state,
            "remind": self.remind,
        }


@dataclass(frozen=True, slots=True)
class Reminder:
    """ "Remind me if no reply": one recipient of one sent email."""

    id: int
    email_id: int
    message_id: str
    subject: str
    recipient: str
    name: str
    sent_at: float
    due_at: float
    delay: str
    state: str


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One contact in one sequence."""

    id: int
    sequence: str
    email: str
    fields: dict[str, str]
    state: str
    sent: int
    next_at: float | None
    enrolled_at: float
    left_reason: str


@dataclass(frozen=True, slots=True)
class StepSend:
    """One step handed (or being handed) to the sender for one enrollment."""

    id: int
    enrollment: int
    step: int
    state: str
    message_id: str
    subject: str
    email_id: int | None
    at: float


@dataclass(frozen=True, slots=True)
class SequenceRow:
    """A stored sequence: its TOML source and whether it runs."""

    name: str
    source: str
    state: str
    created_at: float


_SCHEDULED = (
    "id, mail_from, recipients, track, log, opens, remind, subject, to_text, message_id, "
    "created_at, send_at, state, email_id, late"
)
_REMINDER = "id, email_id, message_id, subject, recipient, name, sent_at, due_at, delay, state"
_ENROLLMENT = "id, sequence, email, fields, state, sent, next_at, enrolled_at, left_reason"
_STEP = "id, enrollment, step, state, message_id, subject, email_id, at"


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _scheduled(row: tuple[Any, ...]) -> ScheduledMail:
    return ScheduledMail(
        row[0],
        row[1],
        tuple(json.loads(row[2])),
        _opt_bool(row[3]),
        _opt_bool(row[4]),
        _opt_bool(row[5]),
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        bool(row[14]),
    )


def _enrollment(row: tuple[Any, ...]) -> Enrollment:
    return Enrollment(
        row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7], row[8]
    )


class FollowupStore:
    """The follow-up database of one profile; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            private_file(path)
            self._conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise FollowupError(
                Phrase(
                    mark(
                        "cannot open the follow-up file {path}: {error}; move it aside to start "
                        "without scheduled mail and sequences"
                    ),
                    path=str(path),
                    error=str(exc),
                )
            ) from exc

    @classmethod
    def in_dir(cls, data_dir: Path) -> FollowupStore:
        """The store in a profile's data folder."""
        return cls(data_dir / DB_NAME)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # ------------------------------------------------------------ scheduled mail

    def schedule(
        self,
        *,
        mail_from: str,
        recipients: tuple[str, ...],
        data: bytes,
        track: bool | None,
        log: bool | None,
        opens: bool | None,
        remind: str | None,
        subject: str,
        to_text: str,
        message_id: str,
        created_at: float,
        send_at: float,
    ) -> int:
        """Keep one email until ``send_at``; its id once it is on disk."""
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO scheduled (mail_from, recipients, data, track, log, opens, remind, "
                "subject, to_text, message_id, created_at, send_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mail_from, json.dumps(list(recipients)), data, track, log, opens, remind,
                 subject, to_text, message_id, created_at, send_at),
            )  # fmt: skip
            return int(cursor.lastrowid or 0)

    def scheduled(
        self, states: tuple[str, ...] = ("waiting",), due_by: float | None = None
    ) -> list[ScheduledMail]:
        """Scheduled emails in these states (due by ``due_by`` if given), soonest first."""
        marks = ",".join("?" * len(states))
        due = "" if due_by is None else "AND send_at <= ? "
        params = (*states, due_by) if due_by is not None else states
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_SCHEDULED} FROM scheduled WHERE state IN ({marks}) {due}"  # noqa: S608
                "ORDER BY send_at, id",
                params,
            ).fetchall()
        return [_scheduled(r) for r in rows]

    def scheduled_item(self, item_id: int) -> ScheduledMail | None:
        """One scheduled email by id."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_SCHEDULED} FROM scheduled WHERE id = ?",  # noqa: S608
                (item_id,),
            ).fetchone()
        return _scheduled(row) if row else None

    def scheduled_data(self, item_id: int) -> bytes:
        """The message of a scheduled email (control headers already removed)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM scheduled WHERE id = ?", (item_id,)
            ).fetchone()
        return bytes(row[0]) if row else b""

    def claim_scheduled(self, item_id: int, now: float) -> bool:
        """``waiting`` → ``handing``; False if someone else changed it first."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE scheduled SET state = 'handing', handed_at = ? "
                "WHERE id = ? AND state = 'waiting'",
                (now, item_id),
            )
            return cursor.rowcount == 1

    def scheduled_sent(self, item_id: int, email_id: int | None, late: bool) -> None:
        """Handed over for good."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE scheduled SET state = 'sent', email_id = ?, late = ? WHERE id = ?",
                (email_id, int(late), item_id),
            )

    def release_scheduled(self, item_id: int) -> None:
        """``handing`` → ``waiting`` again (the sender refused it for now)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE scheduled SET state = 'waiting' WHERE id = ? AND state = 'handing'",
                (item_id,),
            )

    def cancel_scheduled(self, item_id: int) -> bool:
        """Cancel a waiting email; False when it is not waiting (gone or sending)."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE scheduled SET state = 'cancelled' WHERE id = ? AND state = 'waiting'",
                (item_id,),
            )
            return cursor.rowcount == 1

    def reschedule(self, item_id: int, send_at: float) -> bool:
        """A new send time for a waiting email (send now: the current time)."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE scheduled SET send_at = ? WHERE id = ? AND state = 'waiting'",
                (send_at, item_id),
            )
            return cursor.rowcount == 1

    # ------------------------------------------------------------ reminders

    def add_reminder(
        self,
        *,
        email_id: int,
        message_id: str,
        subject: str,
        recipient: str,
        name: str,
        sent_at: float,
        due_at: float,
        delay: str,
    ) -> None:
        """Remind about ``recipient`` at ``due_at`` (once per email and recipient)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO reminders (email_id, message_id, subject, recipient, "
                "name, sent_at, due_at, delay) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (email_id, message_id, subject, recipient, name, sent_at, due_at, delay),
            )

    def reminders(
        self, states: tuple[str, ...] = ("waiting",), due_by: float | None = None
    ) -> list[Reminder]:
        """Reminders in these states (due by ``due_by`` if given), soonest first."""
        marks = ",".join("?" * len(states))
        due = "" if due_by is None else "AND due_at <= ? "
        params = (*states, due_by) if due_by is not None else states
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_REMINDER} FROM reminders WHERE state IN ({marks}) {due}"  # noqa: S608
                "ORDER BY due_at, id",
                params,
            ).fetchall()
        return [Reminder(*r) for r in rows]

    def reminder_for(self, email_id: int, recipient: str) -> Reminder | None:
        """The reminder of one email's recipient."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_REMINDER} FROM reminders "  # noqa: S608
                "WHERE email_id = ? AND recipient = ?",
                (email_id, recipient),
            ).fetchone()
        return Reminder(*row) if row else None

    def settle_reminder(self, reminder_id: int, state: str) -> bool:
        """``waiting`` → ``fired``, ``replied`` or ``cancelled``; False if not waiting."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE reminders SET state = ? WHERE id = ? AND state = 'waiting'",
                (state, reminder_id),
            )
            return cursor.rowcount == 1

    def snooze_reminder(self, reminder_id: int, until: float) -> bool:
        """Remind again at ``until`` (a fired reminder waits again)."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE reminders SET state = 'waiting', due_at = ? "
                "WHERE id = ? AND state IN ('waiting', 'fired')",
                (until, reminder_id),
            )
            return cursor.rowcount == 1

    # ------------------------------------------------------------ sequences

    def add_sequence(self, name: str, source: str, now: float) -> bool:
        """Store a new sequence; False when one of that name exists."""
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO sequences (name, source, created_at) VALUES (?, ?, ?)",
                (name, source, now),
            )
            return cursor.rowcount == 1

    def sequence(self, name: str) -> SequenceRow | None:
        """One sequence by name."""
        with self._lock:
            row = self._conn.execute(
                "SELECT name, source, state, created_at FROM sequences WHERE name = ?", (name,)
            ).fetchone()
        return SequenceRow(*row) if row else None

    def sequences(self) -> list[SequenceRow]:
        """Every sequence, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, source, state, created_at FROM sequences ORDER BY created_at"
            ).fetchall()
        return [SequenceRow(*r) for r in rows]

    def set_sequence_state(self, name: str, state: str) -> bool:
        """Pause or resume a sequence."""
        with self._tx() as conn:
            cursor = conn.execute("UPDATE sequences SET state = ? WHERE name = ?", (state, name))
            return cursor.rowcount == 1

    def enroll(
        self, sequence: str, contacts: list[tuple[str, dict[str, str]]], now: float
    ) -> list[str]:
        """Enroll contacts (all or none); the addresses that were enrolled already."""
        already: list[str] = []
        with self._tx() as conn:
            for email, fields in contacts:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO enrollments (sequence, email, fields, next_at, "
                    "enrolled_at) VALUES (?, ?, ?, ?, ?)",
                    (sequence, email, json.dumps(fields, ensure_ascii=False), now, now),
                )
                if cursor.rowcount != 1:
                    already.append(email)
        return already

    def enrollments(self, sequence: str) -> list[Enrollment]:
        """The contacts of a sequence, in enrolment order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ENROLLMENT} FROM enrollments WHERE sequence = ? "  # noqa: S608
                "ORDER BY id",
                (sequence,),
            ).fetchall()
        return [_enrollment(r) for r in rows]

    def due_enrollments(self, sequence: str, now: float) -> list[Enrollment]:
        """Active contacts of a sequence whose next step is due by ``now``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ENROLLMENT} FROM enrollments WHERE sequence = ? "  # noqa: S608
                "AND state = 'active' AND next_at <= ? ORDER BY next_at, id",
                (sequence, now),
            ).fetchall()
        return [_enrollment(r) for r in rows]

    def enrollment(self, enrollment_id: int) -> Enrollment | None:
        """One enrolment by id."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_ENROLLMENT} FROM enrollments WHERE id = ?",  # noqa: S608
                (enrollment_id,),
            ).fetchone()
        return _enrollment(row) if row else None

    def leave(self, enrollment_id: int, state: str, reason: str) -> bool:
        """The contact leaves (replied, bounced, removed, finished); False if gone already."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE enrollments SET state = ?, next_at = NULL, left_reason = ? "
                "WHERE id = ? AND state = 'active'",
                (state, reason, enrollment_id),
            )
            return cursor.rowcount == 1

    def set_next(self, enrollment_id: int, next_at: float | None) -> None:
        """When the contact's next step may go."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE enrollments SET next_at = ? WHERE id = ? AND state = 'active'",
                (next_at, enrollment_id),
            )

    def claim_step(
        self, enrollment_id: int, step: int, message_id: str, subject: str, now: float
    ) -> bool:
        """Mark a step as being handed over; False when that step was handled already."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT state, sent FROM enrollments WHERE id = ?", (enrollment_id,)
            ).fetchone()
            if row is None or row[0] != "active" or row[1] != step:
                return False
            cursor = conn.execute(
                "INSERT OR IGNORE INTO step_sends (enrollment, step, message_id, subject, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (enrollment_id, step, message_id, subject, now),
            )
            return cursor.rowcount == 1

    def step_sent(
        self,
        enrollment_id: int,
        step: int,
        email_id: int | None,
        next_at: float | None,
        finished: bool,
    ) -> None:
        """The step is queued: count it and set the next one's time (or finish)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE step_sends SET state = 'sent', email_id = ? "
                "WHERE enrollment = ? AND step = ?",
                (email_id, enrollment_id, step),
            )
            conn.execute(
                "UPDATE enrollments SET sent = ?, next_at = ?, "
                "state = CASE WHEN ? AND state = 'active' THEN 'finished' ELSE state END "
                "WHERE id = ?",
                (step + 1, None if finished else next_at, int(finished), enrollment_id),
            )

    def drop_step(self, enrollment_id: int, step: int) -> None:
        """Forget a claim that was never handed over (the sender refused it)."""
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM step_sends WHERE enrollment = ? AND step = ? AND state = 'handing'",
                (enrollment_id, step),
            )

    def steps(self, enrollment_id: int) -> list[StepSend]:
        """The steps handed over for one enrolment, in order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_STEP} FROM step_sends WHERE enrollment = ? "  # noqa: S608
                "ORDER BY step",
                (enrollment_id,),
            ).fetchall()
        return [StepSend(*r) for r in rows]

    def handing_steps(self) -> list[StepSend]:
        """Steps left ``handing`` (a crash between claim and queue)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_STEP} FROM step_sends WHERE state = 'handing'"  # noqa: S608
            ).fetchall()
        return [StepSend(*r) for r in rows]

    def sends_between(self, sequence: str, start: float, end: float) -> int:
        """Steps of a sequence handed over in [start, end) (the daily cap)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT count(*) FROM step_sends s JOIN enrollments e ON e.id = s.enrollment "
                "WHERE e.sequence = ? AND s.at >= ? AND s.at < ?",
                (sequence, start, end),
            ).fetchone()
        return int(row[0])
