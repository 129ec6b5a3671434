"""One sent email's view: recipients with human counts, Someone apart, failures, copy."""

from __future__ import annotations

from mailbeacon.agent.records.email_view import email_view, email_view_by_message_id
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.contacts import fill_records
from tests.helpers.records import event, sent_email


def test_each_recipient_has_human_counts_and_the_logged_copy(store: RecordsStore) -> None:
    ids = fill_records(store)
    view = email_view(store, ids["logged"])
    assert view is not None
    [alice] = view.recipients
    assert (alice.email, alice.name, alice.field) == ("alice@example.com", "Alicja Nowak", "to")
    # The scanner's open is in the events but counts for nobody (rule 5).
    assert (alice.opens, alice.clicks, alice.replies) == (1, 1, 0)
    assert alice.last_open == "2030-01-01T10:00:00.000Z"
    assert alice.last_click == "2030-01-01T10:05:00.000Z"
    assert view.someone is None and view.failed == () and view.not_engaged == ()
    assert [r.event.id for r in view.human_events] == [ids["alice_click"], ids["alice_open"]]
    assert [r.event.id for r in view.other_events] == [ids["bot_open"]]
    assert view.copy is not None and view.copy.text == "Hello Alicja, here is the offer."


def test_anonymous_opens_are_someone_and_credit_no_recipient(store: RecordsStore) -> None:
    ids = fill_records(store)
    view = email_view(store, ids["unlogged"])
    assert view is not None
    [bob] = view.recipients
    assert (bob.opens, bob.replies, bob.last_reply) == (0, 1, "2030-01-02T11:00:00.000Z")
    assert view.someone is not None and view.someone.opens == 1 and view.someone.email == ""
    assert view.copy is None


def test_a_delivery_failure_names_the_address_and_leaves_it_out_of_follow_ups(
    store: RecordsStore,
) -> None:
    email_id = store.record_sent(
        sent_email("ewa@client.example", "typo@client.exmaple", "jan@client.example")
    )
    store.add_event(event("open", email_id=email_id, contact="ewa@client.example"))
    store.add_event(event(
        "delivery_failed", server_id=None, local_key="delivery_failed:x", email_id=email_id,
        reason="550 5.1.1 no such user", details={"recipients": ["Typo@client.exmaple"]},
    ))
    view = email_view(store, email_id)
    assert view is not None
    assert view.failed == ("typo@client.exmaple",)
    assert [r.failed for r in view.recipients] == [False, True, False]
    assert view.not_engaged == ("jan@client.example",)
    assert [r.event.type for r in view.human_events] == ["delivery_failed", "open"]


def test_unknown_emails_have_no_view_and_message_ids_find_the_newest(
    store: RecordsStore,
) -> None:
    assert email_view(store, 999) is None
    first = store.record_sent(sent_email("a@x.example", message_id="<same@x>"))
    second = store.record_sent(
        sent_email("a@x.example", message_id="<same@x>", sent_at="2030-01-02T09:00:00Z")
    )
    found = email_view_by_message_id(store, "same@x")
    assert found is not None and found.email.id == second != first
    assert email_view_by_message_id(store, "<none@x>") is None
