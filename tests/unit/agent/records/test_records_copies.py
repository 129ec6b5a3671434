"""Records store: logged copies, attachments stored once, and a contact's record."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.agent.records.model import Attachment, EventEntry, LoggedCopy, SentEntry
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.records import event, sent_email

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordsStore]:
    with RecordsStore(tmp_path / "data" / "records.db") as opened:
        yield opened


def attachment_files(store: RecordsStore) -> list[Path]:
    root = store.files.root
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_a_logged_copy_keeps_body_and_attachments(store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email("alice@example.com", log=True))
    copy = LoggedCopy(
        html="<p>Hello</p>", text="Hello",
        attachments=(Attachment("offer.pdf", "application/pdf", PDF),
                     Attachment("notes.txt", "text/plain", b"notes")),
    )
    stored = store.log_copy(email_id, copy)
    again = store.logged_copy(email_id)
    assert again == stored
    assert (again.html, again.text) == ("<p>Hello</p>", "Hello")
    assert [(a.filename, a.content_type, a.size) for a in again.attachments] == [
        ("offer.pdf", "application/pdf", len(PDF)), ("notes.txt", "text/plain", 5),
    ]
    assert again.attachments[0].sha256 == hashlib.sha256(PDF).hexdigest()
    assert store.attachment_content(again.attachments[0].sha256) == PDF
    assert store.email(email_id).logged  # type: ignore[union-attr]


def test_the_same_attachment_sent_twice_is_stored_once(store: RecordsStore) -> None:
    for name in ("a.pdf", "b.pdf"):
        email_id = store.record_sent(sent_email("alice@example.com", log=True))
        store.log_copy(email_id, LoggedCopy(None, "see attached",
                                            (Attachment(name, "application/pdf", PDF),)))
    assert [p.name for p in attachment_files(store)] == [hashlib.sha256(PDF).hexdigest()]
    rows = store._conn.execute("SELECT count(*) FROM attachments").fetchone()
    assert rows[0] == 1


def test_a_damaged_attachment_file_is_rewritten(store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email(log=True))
    ref = store.log_copy(email_id, LoggedCopy(None, "x", (Attachment("a", "x/y", PDF),)))
    path = store.attachment_path(ref.attachments[0].sha256)
    path.write_bytes(PDF[:10])
    store.log_copy(email_id, LoggedCopy(None, "x", (Attachment("a", "x/y", PDF),)))
    assert path.read_bytes() == PDF


def test_attachment_paths_accept_only_hashes(store: RecordsStore) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        store.attachment_path("../../etc/passwd")


def test_tracking_without_logging_stores_no_body(store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email("alice@example.com", track=True, log=False))
    assert store.logged_copy(email_id) is None
    assert attachment_files(store) == []
    record = store.contact_record("alice@example.com")
    assert record is not None
    entry = record.timeline[0]
    assert isinstance(entry, SentEntry) and entry.copy is None


def test_logging_a_copy_of_an_unknown_email_is_refused(store: RecordsStore) -> None:
    with pytest.raises(ValueError, match="no sent email"):
        store.log_copy(404, LoggedCopy("<p>x</p>", None))


def test_contact_record_holds_properties_and_timeline_newest_first(
    store: RecordsStore,
) -> None:
    first = store.record_sent(sent_email("alice@example.com", sent_at="2030-01-01T09:00:00Z",
                                         subject="First", log=True))
    store.log_copy(first, LoggedCopy("<p>one</p>", "one"))
    second = store.record_sent(sent_email("alice@example.com", "bob@example.com",
                                          sent_at="2030-01-02T09:00:00Z", subject="Second"))
    store.add_event(event("open", "2030-01-01T10:00:00Z", email_id=first,
                          contact="alice@example.com"))
    store.update_contact_engagement("alice@example.com", "open", "2030-01-01T10:00:00Z")
    store.add_event(event("click", "2030-01-02T09:00:01Z", email_id=second,
                          contact="alice@example.com", verdict="bot", reason="scanner"))
    store.add_event(event("open", "2030-01-02T11:00:00Z", email_id=second,
                          contact="bob@example.com"))
    record = store.contact_record("ALICE@example.com")
    assert record is not None
    assert record.contact.last_open == "2030-01-01T10:00:00.000Z"
    assert (record.opens, record.clicks, record.replies) == (1, 0, 0)
    kinds = [(type(e).__name__, e.at[:10]) for e in record.timeline]
    assert kinds == [("SentEntry", "2030-01-02"), ("EventEntry", "2030-01-01"),
                     ("SentEntry", "2030-01-01")]
    oldest = record.timeline[-1]
    assert isinstance(oldest, SentEntry) and oldest.copy is not None
    assert oldest.copy.html == "<p>one</p>"
    data = record.to_json()
    assert data["email"] == "alice@example.com" and data["opens"] == 1
    assert [e["kind"] for e in data["timeline"]] == ["sent", "event", "sent"]
    assert data["timeline"][1]["subject"] == "First"

    everything = store.contact_record("alice@example.com", include_non_human=True)
    assert everything is not None
    events = [e.event for e in everything.timeline if isinstance(e, EventEntry)]
    assert [(e.type, e.verdict) for e in events] == [("click", "bot"), ("open", "human")]
    assert everything.clicks == 0  # no human click counts


def test_contact_record_leaves_out_anonymous_events(store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email("alice@example.com"))
    store.add_event(event(email_id=email_id, contact="alice@example.com", anonymous=True))
    record = store.contact_record("alice@example.com", include_non_human=True)
    assert record is not None
    assert not [e for e in record.timeline if isinstance(e, EventEntry)]
    assert record.opens == 0


def test_contact_record_of_an_unknown_address_is_none(store: RecordsStore) -> None:
    assert store.contact_record("nobody@example.com") is None
