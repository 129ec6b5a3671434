"""Why an event counts as a person or not, in the rep's language (issue 19): the server
stores the classifier's reason in English; the activity window, the email view and the
contact record read it back (core/reasons.py) and say it in Polish. A reason no template
fits (an older event) is shown as stored."""

from __future__ import annotations

import pytest

from mailbeacon.agent.records.model import ActivityFilter
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.language import Language
from mailbeacon.tray.views.activity.model import Column, cell_text
from mailbeacon.tray.views.contacts.record import timeline_rows
from mailbeacon.tray.views.email.model import details_text
from tests.helpers.records import event, sent_email

CLOCK_SKEW = (
    "opened in Gmail (fetched through Google's image proxy) "
    "(clock skew: the hit came 2.5 s before the send time, timing not judged)"
)
REASONS = {
    "followed the hidden honeypot link": "wejście w ukryty link-pułapkę",
    "3 links clicked within 1.2 s from one address": (
        "3 linki kliknięte w ciągu 1,2 s z jednego adresu"
    ),
    "Mimecast URL Protect scanner": "skaner Mimecast URL Protect",
    CLOCK_SKEW: (
        "otwarcie w Gmailu (pobrane przez serwer proxy obrazów Google) (rozbieżność zegarów: "
        "trafienie 2,5 s przed czasem wysłania, czasu nie oceniono)"
    ),
    "an old reason nobody worded": "an old reason nobody worded",
}


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


@pytest.fixture
def stored(store: RecordsStore) -> RecordsStore:
    email_id = store.record_sent(sent_email("alice@example.com"))
    for number, reason in enumerate(REASONS):
        store.add_event(
            event(
                "open",
                at=f"2030-01-01T10:0{number}:00Z",
                email_id=email_id,
                contact="alice@example.com",
                verdict="bot",
                reason=reason,
            )
        )
    return store


def test_the_activity_window_shows_the_reason_in_polish(stored: RecordsStore, pl: Language) -> None:
    rows = stored.activity(filters=ActivityFilter())
    shown = {row.event.reason: cell_text(row, Column.REASON, pl) for row in rows}
    assert shown == REASONS


def test_the_email_view_says_the_verdict_and_reason_in_polish(
    stored: RecordsStore, pl: Language
) -> None:
    row = next(r for r in stored.activity() if r.event.reason == "Mimecast URL Protect scanner")
    assert "Nie człowiek: skaner Mimecast URL Protect" in details_text(row, pl)


def test_the_contact_record_shows_the_reason_in_polish(stored: RecordsStore, pl: Language) -> None:
    record = stored.contact_record("alice@example.com", include_non_human=True)
    assert record is not None
    reasons = {row.reason for row in timeline_rows(record, pl) if row.reason}
    assert reasons == set(REASONS.values())
