"""What the agent records and notifies for incoming mail (real SQLite records store)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mailbeacon.agent.mailbox.replies import ReplyRecorder
from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.records.model import ActivityFilter, EventRecord, LoggedCopy
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.records import sent_email
from tests.helpers.replies import (
    FakeIncoming,
    bounce,
    out_of_office,
    reply,
    reply_with_attachment,
    unrelated,
)

ARRIVED = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)
NOW = ARRIVED.timestamp()


class Harness:
    def __init__(self, store: RecordsStore) -> None:
        self.store = store
        self.config = PolicyConfig(settle_seconds=0)
        self.notes: list[Notification] = []
        self.recorder = ReplyRecorder(store, lambda: self.config, self.notes.append, lambda: NOW)

    async def deliver(self, raw: bytes) -> FakeIncoming:
        message = FakeIncoming(raw, arrived_at=ARRIVED)
        await self.recorder.handle(message)
        return message


@pytest.fixture
def harness(store: RecordsStore) -> Harness:
    return Harness(store)


def send(store: RecordsStore, *addresses: str, log: bool = False) -> tuple[int, str]:
    sent = sent_email(*(addresses or ("alicja@example.com",)), subject="Oferta Q4", log=log)
    store.upsert_contact("alicja@example.com", name="Alicja")
    return store.record_sent(sent), sent.message_id


async def test_a_reply_is_recorded_on_the_contact_and_notified_once(harness: Harness) -> None:
    email_id, mid = send(harness.store)
    raw = reply(mid, message_id="<r1@example.com>")
    await harness.deliver(raw)
    await harness.deliver(raw)  # the same message again (a restart): nothing new

    [note] = harness.notes
    assert note.type == "reply"
    assert note.title == "Alicja replied to “Oferta Q4”"
    assert note.recipient == "alicja@example.com"
    assert note.message_id == mid and note.email_id == email_id
    assert note.anonymous is False
    assert note.at == "2030-01-01T11:00:00.000Z"

    event = harness.store.event_by_local_key("reply:<r1@example.com>")
    assert event is not None and event.notified and event.verdict == "human"
    assert event.email_id == email_id and event.contact == "alicja@example.com"
    record = harness.store.contact_record("alicja@example.com")
    assert record is not None and record.replies == 1
    assert record.contact.last_reply == "2030-01-01T11:00:00.000Z"
    assert record.contact.last_engagement == "2030-01-01T11:00:00.000Z"


async def test_a_reply_without_an_open_records_an_inferred_open(harness: Harness) -> None:
    email_id, mid = send(harness.store)
    await harness.deliver(reply(mid, message_id="<r2@example.com>"))
    opened = harness.store.event_by_local_key("inferred-open:<r2@example.com>")
    assert opened is not None and opened.inferred and opened.type == "open"
    assert opened.verdict == "human" and opened.email_id == email_id
    record = harness.store.contact_record("alicja@example.com")
    assert record is not None and record.opens == 1
    assert record.contact.last_open == "2030-01-01T11:00:00.000Z"
    assert harness.notes[0].inferred is True


async def test_no_inferred_open_when_a_human_open_was_seen(harness: Harness) -> None:
    email_id, mid = send(harness.store)
    harness.store.add_event(
        EventRecord("open", "2030-01-01T10:30:00Z", email_id, "alicja@example.com", server_id=7)
    )
    await harness.deliver(reply(mid, message_id="<r3@example.com>"))
    assert harness.store.event_by_local_key("inferred-open:<r3@example.com>") is None
    assert harness.notes[0].inferred is False


async def test_a_reply_from_someone_else_on_the_thread_counts_for_its_sender(
    harness: Harness,
) -> None:
    _email_id, mid = send(harness.store)
    await harness.deliver(
        reply(mid, sender="Bob Kowalski <bob@example.com>", message_id="<r4@example.com>")
    )
    [note] = harness.notes
    assert note.title == "Bob Kowalski replied to “Oferta Q4”"
    assert note.recipient == "bob@example.com"
    assert "not one of the recipients" in note.body
    bob = harness.store.contact_record("bob@example.com")
    assert bob is not None and bob.replies == 1 and bob.contact.last_reply is not None
    alicja = harness.store.contact("alicja@example.com")
    assert alicja is not None and alicja.last_reply is None


async def test_a_reply_further_down_the_thread_is_matched_by_references(
    harness: Harness,
) -> None:
    email_id, mid = send(harness.store)
    await harness.deliver(
        reply("<theirs@example.com>", references=f"{mid} <theirs@example.com>",
              message_id="<r5@example.com>")
    )
    event = harness.store.event_by_local_key("reply:<r5@example.com>")
    assert event is not None and event.email_id == email_id


async def test_mail_that_answers_nothing_we_sent_records_nothing(harness: Harness) -> None:
    send(harness.store)
    before = harness.store.count_events()
    await harness.deliver(unrelated())
    await harness.deliver(reply("<someone-elses@example.org>"))
    assert harness.store.count_events() == before
    assert harness.notes == []


async def test_the_reps_own_message_in_the_thread_is_not_a_reply(harness: Harness) -> None:
    _, mid = send(harness.store)
    await harness.deliver(reply(mid, sender="Rep <rep@example.net>"))
    assert harness.store.count_events() == 0
    assert harness.notes == []


async def test_an_out_of_office_is_recorded_as_automatic_and_never_notifies(
    harness: Harness,
) -> None:
    _email_id, mid = send(harness.store)
    await harness.deliver(out_of_office(mid))
    assert harness.notes == []
    [row] = harness.store.activity(filters=ActivityFilter(types=("reply",)))
    assert row.event.verdict == "bot"
    assert "automatic reply" in row.event.reason
    assert row.event.details["auto"] is True
    contact = harness.store.contact("alicja@example.com")
    assert contact is not None and contact.last_reply is None and contact.last_engagement is None
    record = harness.store.contact_record("alicja@example.com")
    assert record is not None and record.replies == 0
    assert harness.store.count_events(ActivityFilter(types=("open",))) == 0


async def test_privacy_without_lawful_basis_makes_the_reply_anonymous(
    harness: Harness,
) -> None:
    harness.config = replace(harness.config, privacy_enabled=True)
    _, mid = send(harness.store, log=True)
    await harness.deliver(reply(mid, message_id="<r6@example.com>"))
    [note] = harness.notes
    assert note.title == "Someone replied to “Oferta Q4”"
    assert note.anonymous is True and note.recipient is None
    event = harness.store.event_by_local_key("reply:<r6@example.com>")
    assert event is not None and event.anonymous and event.contact is None
    assert "logged" not in event.details
    contact = harness.store.contact("alicja@example.com")
    assert contact is not None and contact.last_reply is None and contact.last_open is None
    record = harness.store.contact_record("alicja@example.com")
    assert record is not None and record.replies == 0


async def test_privacy_with_a_lawful_basis_names_the_contact(harness: Harness) -> None:
    harness.config = replace(harness.config, privacy_enabled=True)
    _, mid = send(harness.store)
    harness.store.set_lawful_basis("alicja@example.com", "contract")
    await harness.deliver(reply(mid))
    assert harness.notes[0].title.startswith("Alicja replied")


async def test_a_reply_to_a_logged_email_is_logged_with_its_attachment(
    harness: Harness,
) -> None:
    email_id, mid = send(harness.store, log=True)
    harness.store.log_copy(email_id, _copy())
    message = await harness.deliver(reply_with_attachment(mid, data=b"%PDF-1.4 signed"))
    assert message.body_requests == [None]  # the whole message was fetched
    [row] = harness.store.activity(filters=ActivityFilter(types=("reply",)))
    logged = row.event.details["logged"]
    assert harness.store.attachment_content(logged["text"]["sha256"]).decode() == (
        "Podpisana umowa w załączniku."
    )
    [pdf] = logged["attachments"]
    assert pdf["filename"] == "umowa.pdf" and pdf["content_type"] == "application/pdf"
    assert harness.store.attachment_content(pdf["sha256"]) == b"%PDF-1.4 signed"
    assert "Podpisana umowa" in harness.notes[0].body


async def test_a_reply_to_an_email_that_was_not_logged_fetches_only_headers(
    harness: Harness,
) -> None:
    _, mid = send(harness.store)
    message = await harness.deliver(reply(mid))
    assert message.body_requests == []


async def test_an_oversized_reply_is_recorded_but_not_logged(store: RecordsStore) -> None:
    notes: list[Notification] = []
    recorder = ReplyRecorder(store, PolicyConfig, notes.append, max_logged_bytes=100)
    email_id, mid = send(store, log=True)
    store.log_copy(email_id, _copy())
    message = FakeIncoming(reply_with_attachment(mid))
    await recorder.handle(message)
    assert message.body_requests == []
    assert len(notes) == 1


async def test_a_bounce_marks_the_recipient_bouncing_and_records_the_reason(
    harness: Harness,
) -> None:
    email_id, mid = send(harness.store, "bob@example.com")
    message = await harness.deliver(bounce("bob@example.com", mid))
    await harness.deliver(message.raw)  # the same bounce again: recorded once
    contact = harness.store.contact("bob@example.com")
    assert contact is not None and contact.bounced
    [row] = harness.store.activity(filters=ActivityFilter(types=("delivery_failed",)))
    assert row.event.email_id == email_id and row.event.contact == "bob@example.com"
    assert "User unknown" in row.event.reason
    assert message.body_requests == [256 * 1024]  # only the start of the bounce
    [note] = harness.notes
    assert note.type == "delivery_failed"
    assert note.title == "Could not deliver “Oferta Q4” to bob@example.com"
    # The rep's words and what to do (issue 20), not the remote server's reply.
    assert note.body == (
        "The address does not exist. Click to see the email, correct the address and "
        "send it again."
    )


async def test_a_bounce_for_an_address_we_never_wrote_to_changes_nothing(
    harness: Harness,
) -> None:
    await harness.deliver(bounce("stranger@example.org", "<not-ours@x>"))
    assert harness.store.contact("stranger@example.org") is None
    assert harness.store.count_events() == 0


async def test_a_delay_notice_is_not_a_bounce(harness: Harness) -> None:
    _, mid = send(harness.store, "bob@example.com")
    await harness.deliver(bounce("bob@example.com", mid, action="delayed", status="4.4.7"))
    contact = harness.store.contact("bob@example.com")
    assert contact is not None and not contact.bounced


async def test_reply_notifications_can_be_switched_off_and_paused(harness: Harness) -> None:
    _, mid = send(harness.store)
    harness.config = replace(harness.config, kinds=frozenset({"open"}))
    await harness.deliver(reply(mid, message_id="<off@example.com>"))
    harness.config = replace(harness.config, kinds=frozenset({"reply"}), paused_until=NOW + 60)
    await harness.deliver(reply(mid, message_id="<paused@example.com>"))
    assert harness.notes == []
    assert harness.store.event_by_local_key("reply:<off@example.com>") is not None


async def test_a_reply_recorded_but_never_notified_is_notified_on_the_next_look(
    harness: Harness,
) -> None:
    _, mid = send(harness.store)
    raw = reply(mid, message_id="<crash@example.com>")
    harness.config = replace(harness.config, paused_until=NOW + 60)
    await harness.deliver(raw)
    harness.config = replace(harness.config, paused_until=None)
    await harness.deliver(raw)
    await harness.deliver(raw)
    assert len(harness.notes) == 1


async def test_an_old_reply_recorded_but_never_notified_stays_quiet(store: RecordsStore) -> None:
    notes: list[Notification] = []
    now = {"t": NOW}
    config = {"c": PolicyConfig(paused_until=NOW + 60)}
    recorder = ReplyRecorder(store, lambda: config["c"], notes.append, lambda: now["t"])
    _, mid = send(store)
    raw = reply(mid, message_id="<old@example.com>")
    await recorder.handle(FakeIncoming(raw, arrived_at=ARRIVED))
    config["c"] = PolicyConfig()
    now["t"] = NOW + 3600  # seen again an hour later (a renumbered mailbox)
    await recorder.handle(FakeIncoming(raw, arrived_at=ARRIVED))
    assert notes == []


async def test_per_recipient_copies_attribute_the_reply_to_the_copy_of_its_sender(
    harness: Harness,
) -> None:
    first = sent_email("alicja@example.com", message_id="<same@rep.example.net>")
    second = sent_email("bob@example.com", message_id="<same@rep.example.net>")
    harness.store.record_sent(first)
    bob_copy = harness.store.record_sent(second)
    await harness.deliver(reply("<same@rep.example.net>", sender="bob@example.com"))
    [row] = harness.store.activity(filters=ActivityFilter(types=("reply",)))
    assert row.event.email_id == bob_copy


async def test_broken_replies_are_handled(harness: Harness) -> None:
    email_id, mid = send(harness.store, log=True)
    harness.store.log_copy(email_id, _copy())
    broken = (
        b"From: \xff\xfe <alicja@example.com>\r\nSubject: Re: \xe9\xe9\r\n"
        b"In-Reply-To: " + mid.encode() + b"\r\n"
        b"Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n--never-closed\r\nContent-Type: text/pla"
    )
    await harness.deliver(broken)
    [note] = harness.notes
    assert note.type == "reply"
    assert harness.store.count_events(ActivityFilter(types=("reply",))) == 1


def _copy() -> LoggedCopy:
    return LoggedCopy(html=None, text="Oferta", attachments=())
