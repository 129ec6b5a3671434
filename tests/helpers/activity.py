"""Records files full of events, for activity feed tests and benchmarks."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbeacon.agent.records.model import normalize_at
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.records import event, sent_email

START = datetime(2030, 1, 1, tzinfo=UTC)
CHUNK = 5000  # rows per executemany: bounded memory for any count

# (type, verdict, reason, share in percent)
MIX = (
    ("open", "human", "", 62),
    ("click", "human", "", 12),
    ("reply", "human", "", 3),
    ("open", "bot", "known scanner: Barracuda", 8),
    ("click", "bot", "clicked 1.2 s after sending", 5),
    ("open", "proxy", "Apple Mail Privacy Protection", 6),
    ("open", "self", "your own machine", 3),
    ("delivery_failed", "human", "550 no such user", 1),
)
AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def fill_events(
    path: Path,
    count: int,
    *,
    emails: int = 500,
    contacts: int = 300,
    anonymous_every: int = 10,
    seed: int = 7,
) -> None:
    """Bulk-insert ``count`` events (one per second from ``START``) into a records file.

    Bypasses ``RecordsStore.add_event`` (one fsynced transaction per event) so that
    100,000 events take about a second; the schema is the store's own.
    """
    RecordsStore(path).close()  # creates and migrates the file
    rng = random.Random(seed)
    weights = [share for *_, share in MIX]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO contacts (email, name, created_at) VALUES (?, ?, ?)",
            [
                (f"contact{i}@example.com", f"Contact {i}" if i % 2 else "", normalize_at(START))
                for i in range(contacts)
            ],
        )
        conn.executemany(
            "INSERT INTO emails (id, message_id, message_key, subject, sender, sent_at, track, "
            "log, per_recipient, tracked) VALUES (?, ?, ?, ?, ?, ?, 1, 0, 0, 1)",
            [
                (i + 1, f"<m{i}@rep.example>", f"key{i}", f"Proposal {i}", "rep@example.net",
                 normalize_at(START))
                for i in range(emails)
            ],
        )
        done = 0
        while done < count:
            batch = []
            for n in range(done, min(count, done + CHUNK)):
                kind, verdict, reason, _ = rng.choices(MIX, weights)[0]
                anonymous = anonymous_every > 0 and n % anonymous_every == 0
                batch.append((
                    n + 1,
                    None if kind in ("reply", "delivery_failed") else n + 1,
                    f"local:{n}" if kind in ("reply", "delivery_failed") else None,
                    rng.randrange(emails) + 1,
                    None if anonymous else f"contact{rng.randrange(contacts)}@example.com",
                    kind,
                    verdict,
                    reason,
                    normalize_at(START + timedelta(seconds=n)),
                    "203.0.113.7",
                    AGENT,
                    f"https://example.com/page/{n}" if kind == "click" else None,
                    int(anonymous),
                ))
            conn.executemany(
                "INSERT INTO events (id, server_id, local_key, email_id, contact, type, verdict, "
                "reason, at, ip, user_agent, url, anonymous) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            done += len(batch)
        conn.execute("COMMIT")
    finally:
        conn.close()


def newest_at(count: int) -> str:
    """The time of the newest event ``fill_events(count)`` wrote."""
    return normalize_at(START + timedelta(seconds=count - 1))


# ---------------------------------------------------------------- a small, known feed

HTML_SUBJECT = "<b>html</b>"
CHROME = AGENT


def small_feed(store: RecordsStore) -> dict[str, int]:
    """Seven events of every kind through the store's own API; returns their ids by name.

    Newest first: failed, self, bob_click, proxy, anonymous, bot_click, alice_open.
    """
    html_email = store.record_sent(sent_email("alice@example.com", subject=HTML_SUBJECT))
    numbers = store.record_sent(sent_email("bob@example.com", subject="Quarterly numbers"))
    store.upsert_contact("bob@example.com", name="Bob Builder")
    specs = {
        "alice_open": event("open", "2030-01-01T10:00:00Z", email_id=html_email,
                            contact="alice@example.com", user_agent=CHROME, ip="203.0.113.7"),
        "bot_click": event("click", "2030-01-01T10:01:00Z", email_id=html_email,
                           contact="alice@example.com", verdict="bot",
                           reason="known scanner: Barracuda", url="https://example.com/offer"),
        "anonymous": event("open", "2030-01-01T10:02:00Z", email_id=html_email,
                           contact="alice@example.com", anonymous=True, user_agent=CHROME),
        "proxy": event("open", "2030-01-01T10:03:00Z", email_id=numbers,
                       contact="bob@example.com", verdict="proxy",
                       reason="Apple Mail Privacy Protection"),
        "bob_click": event("click", "2030-01-01T10:04:00Z", email_id=numbers,
                           contact="bob@example.com", url="https://example.com/<script>"),
        "self": event("open", "2030-01-01T10:05:00Z", email_id=numbers,
                      contact="bob@example.com", verdict="self", reason="your own machine"),
        "failed": event("delivery_failed", "2030-01-01T10:06:00Z", email_id=numbers,
                        server_id=None, local_key="failed:1", reason="550 no such user",
                        details={"recipients": ["bob@example.com"]}),
    }
    ids: dict[str, int] = {}
    for name, record in specs.items():
        stored = store.add_event(record)
        assert stored is not None
        ids[name] = stored
    return ids
