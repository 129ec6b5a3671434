"""A refused or bounced email is told in the rep's words with what to do (issue 20: a
bounce showed raw SMTP text and "The message is kept" without saying where or offering
to fix and resend)."""

from __future__ import annotations

import pytest

from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.notifications.policy import Notifier, PolicyConfig
from mailbeacon.agent.notifications.refusals import OURS, refusal_body, refusal_meaning
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.fakes import FakeClock
from tests.helpers.records import sent_email


@pytest.mark.parametrize(
    ("reply", "status", "meaning"),
    [
        (
            "550 5.1.1 <typo@client.exmaple>: Recipient address rejected: User unknown",
            None,
            "the address does not exist",
        ),
        ("550 Requested action not taken: mailbox unavailable", None, "the address does not exist"),
        ("smtp; 550 user unknown", "5.1.1", "the address does not exist"),
        (
            "550 5.1.2 bad destination system",
            None,
            "the recipient's domain does not exist or takes no mail",
        ),
        ("452 4.2.2 Mailbox full", None, "the recipient's mailbox is full"),
        (
            "552 5.3.4 Message size exceeds fixed limit",
            None,
            "the email is too large for the recipient's mail server",
        ),
        (
            "550 5.7.1 Message rejected as spam",
            None,
            "the recipient's mail server refused it as spam or by its own rules",
        ),
        ("554 Transaction failed", None, "the recipient's mail server refused it"),
    ],
)
def test_the_meaning_of_a_refusal_in_plain_words(
    reply: str, status: str | None, meaning: str
) -> None:
    assert refusal_meaning(reply, status) == meaning


def test_the_body_says_what_to_do_and_never_the_servers_words() -> None:
    reply = "550 5.1.1 <typo@client.exmaple>: Recipient address rejected: User unknown"
    assert refusal_body(reply) == (
        "The address does not exist. Click to see the email, correct the address and send it again."
    )
    assert refusal_body("550 5.7.1 relaying denied", server=OURS) == (
        "Your outgoing mail server refused it as spam or by its own rules. Click to see "
        "the email and what the server said."
    )
    assert refusal_body(reply, in_records=False) == "The address does not exist."


async def test_a_refusal_for_good_is_told_once_in_plain_words_naming_the_email(
    store: RecordsStore,
) -> None:
    shown: list[Notification] = []
    notifier = Notifier(
        store, lambda: PolicyConfig(settle_seconds=0), shown.append, FakeClock(1_900_000_000.0)
    )
    email_id = store.record_sent(sent_email("typo@client.exmaple", subject="Offer Q4"))
    reply = "550 5.1.1 <typo@client.exmaple>: Recipient address rejected: User unknown"
    notifier.delivery_failed("q1", email_id, ("typo@client.exmaple",), reply)
    notifier.delivery_failed("q1", email_id, ("typo@client.exmaple",), reply)  # once
    [note] = shown
    assert note.title == "Could not deliver “Offer Q4” to typo@client.exmaple"
    assert note.body == (
        "The address does not exist. Click to see the email, correct the address and send it again."
    )
    assert "550" not in note.body and "kept" not in note.body
    assert note.email_id == email_id  # the click opens the email, where Resend is
    [stored] = [r.event for r in store.activity()]
    assert stored.reason == reply  # the server's own words stay on the event
