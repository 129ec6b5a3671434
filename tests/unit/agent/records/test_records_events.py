"""Records store: events stored once, verdicts revised, notified once, stream resume."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mailbeacon.agent.records.model import ActivityFilter
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.records import event, sent_email


def test_the_same_server_event_is_stored_once(store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email())
    first = store.add_event(event(server_id=7, email_id=email_id))
    again = store.add_event(event(server_id=7, email_id=email_id, verdict="bot"))
    assert first is not None and again is None
    assert store.count_events() == 1
    assert store.event_by_server_id(7).verdict == "human"  # type: ignore[union-attr]


def test_the_same_server_event_is_stored_once_across_restarts(tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "r.db") as store:
        assert store.add_event(event(server_id=3)) is not None
    with RecordsStore(tmp_path / "r.db") as store:
        assert store.add_event(event(server_id=3)) is None
        assert store.last_stream_id() == 3


def test_local_events_are_stored_once_by_their_key(store: RecordsStore) -> None:
    reply = event("reply", server_id=None, local_key="reply:<r1@x>", contact="a@example.com")
    assert store.add_event(reply) is not None
    assert store.add_event(reply) is None
    assert store.event_by_local_key("reply:<r1@x>").type == "reply"  # type: ignore[union-attr]
    # Local events do not move the stream's resume point.
    assert store.last_stream_id() == 0


def test_events_of_another_stream_source_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with RecordsStore(path, stream_source="https://old.example|1") as old:
        old.add_event(event(server_id=5))
    with RecordsStore(path, stream_source="https://new.example|9") as new:
        assert new.last_stream_id() == 0
        assert new.add_event(event(server_id=5)) is not None
        assert new.count_events() == 2


def test_every_field_of_an_event_is_kept(store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email("alice@example.com"))
    event_id = store.add_event(
        event(
            "click", "2030-01-01T10:00:01.250Z", server_id=42, email_id=email_id,
            contact="Alice@Example.com", verdict="human", reason="no bot signal",
            ip="127.0.0.9", user_agent="Mozilla/5.0", url="https://example.com/pricing",
            link=2, inferred=False, possibly_forwarded=True, details={"device": "new"},
        )
    )
    assert event_id is not None
    stored = store.event(event_id)
    assert stored is not None
    assert stored.to_json() == {
        "id": event_id, "event": 42, "local_key": None, "email_id": email_id, "type": "click",
        "verdict": "human", "reason": "no bot signal", "recipient": "alice@example.com",
        "anonymous": False, "inferred": False, "possibly_forwarded": True,
        "at": "2030-01-01T10:00:01.250Z", "url": "https://example.com/pricing", "link": 2,
        "ip": "127.0.0.9", "user_agent": "Mozilla/5.0", "notified": False,
        "details": {"device": "new"},
    }


def test_unknown_type_and_email_are_refused(store: RecordsStore) -> None:
    with pytest.raises(ValueError, match="event type"):
        store.add_event(event("bounce"))
    with pytest.raises(ValueError, match="no sent email"):
        store.add_event(event(email_id=999))
    assert store.count_events() == 0


def test_an_event_for_an_unknown_email_can_be_stored(store: RecordsStore) -> None:
    assert store.add_event(event(email_id=None)) is not None


def test_revise_changes_the_verdict_and_keeps_the_old_one(store: RecordsStore) -> None:
    store.add_event(event(server_id=11, verdict="human", reason="no bot signal"))
    revised = store.revise_event(11, "bot", "every link clicked within 2 s")
    assert revised is not None
    assert (revised.verdict, revised.reason) == ("bot", "every link clicked within 2 s")
    assert revised.details["revisions"][0]["verdict"] == "human"
    assert store.revise_event(12, "bot", "x") is None


def test_an_event_is_notified_once_also_across_restarts(tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "r.db") as store:
        event_id = store.add_event(event(server_id=21))
        assert event_id is not None
        assert not store.was_notified(21)
        assert store.mark_notified(event_id) is True
        assert store.mark_notified(event_id) is False
    with RecordsStore(tmp_path / "r.db") as store:
        assert store.was_notified(21)
        assert store.mark_notified(event_id) is False
        assert not store.was_notified(22)


def test_flags_and_details_can_be_added_later(store: RecordsStore) -> None:
    event_id = store.add_event(event(details={"a": 1}))
    assert event_id is not None
    updated = store.set_event_flags(event_id, possibly_forwarded=True, details={"b": 2})
    assert updated is not None and updated.possibly_forwarded
    assert updated.details == {"a": 1, "b": 2}
    assert store.set_event_flags(event_id + 1, possibly_forwarded=True) is None


def test_stream_resume_point_follows_stored_events(store: RecordsStore) -> None:
    assert store.last_stream_id() == 0
    store.add_event(event(server_id=5))
    store.add_event(event(server_id=9))
    store.add_event(event(server_id=7))  # a late one never moves it back
    assert store.last_stream_id() == 9
    store.set_last_stream_id(3)
    assert store.last_stream_id() == 3


def test_activity_is_newest_first_with_email_and_verdict(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com", subject="<b>Hi</b>")
    email_id = store.record_sent(sent)
    store.add_event(event("open", "2030-01-01T10:00:00Z", email_id=email_id,
                          contact="alice@example.com"))
    store.add_event(event("click", "2030-01-01T10:05:00Z", email_id=email_id,
                          contact="alice@example.com", verdict="bot", reason="scanner"))
    store.add_event(event("open", "2030-01-01T10:01:00Z", email_id=email_id, anonymous=True))
    rows = store.activity()
    assert [(r.event.type, r.event.at[11:16]) for r in rows] == [
        ("click", "10:05"), ("open", "10:01"), ("open", "10:00"),
    ]
    first = rows[0].to_json()
    assert first["verdict"] == "bot" and first["reason"] == "scanner"
    assert first["subject"] == "<b>Hi</b>" and first["message_id"] == sent.message_id
    assert rows[1].to_json()["recipient"] is None and rows[1].event.anonymous


def test_activity_paging_and_filters(store: RecordsStore) -> None:
    for minute in range(10):
        store.add_event(
            event("open" if minute % 2 else "click", f"2030-01-01T10:{minute:02d}:00Z",
                  verdict="human" if minute < 5 else "proxy", contact="a@example.com")
        )
    assert [r.event.at[14:16] for r in store.activity(limit=3, offset=2)] == ["07", "06", "05"]
    assert len(store.activity(limit=None)) == 10
    humans = ActivityFilter(verdicts=("human",))
    assert store.count_events(humans) == 5
    assert store.count_events(ActivityFilter(types=("click",), verdicts=("human",))) == 3
    window = ActivityFilter(since="2030-01-01T10:02:00Z", until="2030-01-01T10:04:00Z")
    assert store.count_events(window) == 2
    assert store.count_events(ActivityFilter(contact="A@example.com")) == 10


def test_the_activity_feed_pages_from_the_time_index_without_sorting(
    store: RecordsStore,
) -> None:
    # Not a timed test: the newest page must come straight off the index, so a feed of
    # 100,000 events opens as fast as one of ten.
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    store.activity(limit=50)
    store._conn.set_trace_callback(None)
    query = next(s for s in statements if "FROM events e" in s)
    plan = " | ".join(
        str(row[-1]) for row in store._conn.execute("EXPLAIN QUERY PLAN " + query)
    )
    assert "events_by_time" in plan
    assert "TEMP B-TREE" not in plan


def test_concurrent_writers_from_threads_and_a_second_connection(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    shared = RecordsStore(path)
    other = RecordsStore(path)  # as a second process would
    email_id = shared.record_sent(sent_email("alice@example.com"))
    errors: list[BaseException] = []

    def write(target: RecordsStore, start: int) -> None:
        try:
            for server_id in range(start, start + 50):
                target.add_event(event(server_id=server_id, email_id=email_id))
                target.update_contact_engagement(
                    "alice@example.com", "open", f"2030-01-01T10:00:{server_id % 60:02d}Z"
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    # Overlapping id ranges: duplicates across writers must still be stored once.
    threads = [
        threading.Thread(target=write, args=(shared, 0)),
        threading.Thread(target=write, args=(shared, 25)),
        threading.Thread(target=write, args=(other, 40)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert shared.count_events() == 90
    assert shared.last_stream_id() == 89
    assert shared.contact("alice@example.com").last_open == "2030-01-01T10:00:59.000Z"  # type: ignore[union-attr]
    shared.close()
    other.close()
