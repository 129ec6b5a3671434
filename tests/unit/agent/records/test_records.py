"""Records store: sent emails, resolution of keys, contacts and their properties."""

from __future__ import annotations

import pytest

from mailbeacon.agent.records.model import Recipient, normalize_at
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.profile import Profile
from tests.helpers.records import event, sent_email


def test_store_lives_in_the_profiles_data_dir(profile: Profile) -> None:
    with RecordsStore.for_profile(profile) as store:
        assert store.path == profile.data_dir / "records.db"
    assert (profile.data_dir / "records.db").exists()


def test_times_are_stored_in_one_sortable_utc_form() -> None:
    assert normalize_at("2030-01-01T10:00:00Z") == "2030-01-01T10:00:00.000Z"
    assert normalize_at("2030-01-01T11:00:00.123456+01:00") == "2030-01-01T10:00:00.123Z"
    assert normalize_at("2030-01-01T10:00:00") == "2030-01-01T10:00:00.000Z"
    with pytest.raises(ValueError):
        normalize_at("yesterday")


def test_record_sent_creates_contacts_from_recipients(store: RecordsStore) -> None:
    sent = sent_email(
        recipients=(
            Recipient("Alice@Example.COM", "to", "Alice A", "aa" * 8),
            Recipient("bob@example.com", "cc", recipient_key="bb" * 8),
            Recipient("carol@example.com", "bcc", recipient_key="cc" * 8),
        ),
        per_recipient=True,
    )
    email_id = store.record_sent(sent)
    stored = store.email(email_id)
    assert stored is not None
    assert stored.message_key == sent.message_key
    assert stored.sent_at == "2030-01-01T09:00:00.000Z"
    assert stored.per_recipient and stored.tracked and not stored.logged
    assert [(r.email, r.field) for r in stored.recipients] == [
        ("alice@example.com", "to"), ("bob@example.com", "cc"), ("carol@example.com", "bcc"),
    ]
    alice = store.contact("ALICE@example.com")
    assert alice is not None and alice.name == "Alice A" and alice.last_open is None


def test_recording_the_same_message_key_twice_returns_the_first_id(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com")
    assert store.record_sent(sent) == store.record_sent(sent)
    assert len(store.emails_for_message_id(sent.message_id)) == 1


def test_untracked_email_keeps_its_reason(store: RecordsStore) -> None:
    email_id = store.record_sent(
        sent_email(tracked=False, untracked_reason="plain-text email: no pixel can work")
    )
    stored = store.email(email_id)
    assert stored is not None and not stored.tracked
    assert stored.untracked_reason == "plain-text email: no pixel can work"


def test_bad_recipient_field_is_refused(store: RecordsStore) -> None:
    with pytest.raises(ValueError, match="field"):
        store.record_sent(sent_email(recipients=(Recipient("a@example.com", "reply-to"),)))


def test_resolve_names_the_recipient_of_its_key(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com", "bob@example.com")
    store.record_sent(sent)
    bob_key = sent.recipients[1].recipient_key
    found = store.resolve(sent.message_key, bob_key)
    assert found is not None
    assert found.email.subject == sent.subject
    assert found.contact is not None and found.contact.email == "bob@example.com"
    assert found.field == "to"


def test_resolve_shared_pixel_has_no_contact(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com", "bob@example.com", shared=True)
    store.record_sent(sent)
    found = store.resolve(sent.message_key, None)
    assert found is not None and found.contact is None and found.field is None


def test_resolve_single_recipient_without_key_is_that_recipient(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com", shared=True)
    store.record_sent(sent)
    found = store.resolve(sent.message_key, None)
    assert found is not None and found.contact is not None
    assert found.contact.email == "alice@example.com"


def test_resolve_unknown_keys(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com", "bob@example.com")
    store.record_sent(sent)
    assert store.resolve("00" * 12, None) is None
    found = store.resolve(sent.message_key, "ff" * 8)
    assert found is not None and found.contact is None


def test_emails_for_message_id_ignores_angle_brackets(store: RecordsStore) -> None:
    sent = sent_email()
    store.record_sent(sent)
    bare = sent.message_id.strip("<>")
    assert [e.message_key for e in store.emails_for_message_id(bare)] == [sent.message_key]
    assert store.emails_for_message_id("<other@x>") == []


def test_properties_never_move_backwards(store: RecordsStore) -> None:
    store.update_contact_engagement("alice@example.com", "open", "2030-01-02T10:00:00Z")
    store.update_contact_engagement("alice@example.com", "open", "2030-01-01T10:00:00Z")
    contact = store.update_contact_engagement(
        "alice@example.com", "click", "2030-01-01T12:00:00Z"
    )
    assert contact.last_open == "2030-01-02T10:00:00.000Z"
    assert contact.last_click == "2030-01-01T12:00:00.000Z"
    assert contact.last_engagement == "2030-01-02T10:00:00.000Z"
    contact = store.update_contact_engagement("alice@example.com", "reply", "2030-01-03T08:00:00Z")
    assert contact.last_engagement == "2030-01-03T08:00:00.000Z"
    # Sub-second precision orders correctly too (fixed-width times).
    contact = store.update_contact_engagement(
        "alice@example.com", "reply", "2030-01-03T08:00:00.500Z"
    )
    assert contact.last_reply == "2030-01-03T08:00:00.500Z"
    contact = store.update_contact_engagement("alice@example.com", "reply", "2030-01-03T08:00:00Z")
    assert contact.last_reply == "2030-01-03T08:00:00.500Z"


def test_only_engagements_move_properties(store: RecordsStore) -> None:
    with pytest.raises(ValueError, match="engagement"):
        store.update_contact_engagement("a@example.com", "delivery_failed", "2030-01-01T00:00Z")


def test_anonymous_events_never_touch_properties_or_name_a_contact(store: RecordsStore) -> None:
    sent = sent_email("alice@example.com")
    email_id = store.record_sent(sent)
    event_id = store.add_event(
        event(email_id=email_id, contact="alice@example.com", anonymous=True)
    )
    assert event_id is not None
    stored = store.event(event_id)
    assert stored is not None and stored.contact is None and stored.anonymous
    alice = store.contact("alice@example.com")
    assert alice is not None
    assert (alice.last_open, alice.last_engagement) == (None, None)


def test_lawful_basis_set_and_cleared(store: RecordsStore) -> None:
    contact = store.set_lawful_basis("New@Example.com", "consent")
    assert (contact.email, contact.lawful_basis) == ("new@example.com", "consent")
    assert store.set_lawful_basis("new@example.com", None).lawful_basis is None


def test_contact_details_and_bounce(store: RecordsStore) -> None:
    store.upsert_contact("alice@example.com", name="Alice", company="Acme")
    contact = store.upsert_contact("alice@example.com", company="Acme Ltd")
    assert (contact.name, contact.company) == ("Alice", "Acme Ltd")
    assert store.set_bounced("alice@example.com").bounced
    # A later send with a display name does not overwrite the name the rep set.
    store.record_sent(sent_email(recipients=(Recipient("alice@example.com", name="A."),)))
    assert store.contact("alice@example.com").name == "Alice"  # type: ignore[union-attr]


def test_contacts_most_recently_engaged_first(store: RecordsStore) -> None:
    store.upsert_contact("zed@example.com")
    store.update_contact_engagement("old@example.com", "open", "2030-01-01T00:00:00Z")
    store.update_contact_engagement("new@example.com", "click", "2030-02-01T00:00:00Z")
    assert [c.email for c in store.contacts()] == [
        "new@example.com", "old@example.com", "zed@example.com",
    ]
    assert [c.email for c in store.contacts(limit=1, offset=1)] == ["old@example.com"]
