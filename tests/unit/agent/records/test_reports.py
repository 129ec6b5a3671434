"""Report numbers on a small known dataset: only human events count, "Someone" counts in
an email's numbers and the totals but never per contact, days fill the period."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailbeacon.agent.records.model import Recipient
from mailbeacon.agent.records.reports import (
    DayStats,
    Period,
    Report,
    build_report,
    contacts_table,
    csv_text,
    days_table,
    emails_table,
    format_duration,
    last_days,
    read_report_data,
    totals_text,
    write_csv,
)
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.records import event, sent_email

PERIOD = Period(since="2030-01-01T00:00:00.000Z")
TODAY = date(2030, 1, 3)


@pytest.fixture
def ids(store: RecordsStore) -> dict[str, int]:
    store.upsert_contact("alice@example.com", name="Alicja Nowak", company="Client Ltd")
    old = store.record_sent(sent_email("alice@example.com", sent_at="2029-12-01T09:00:00Z"))
    first = store.record_sent(
        sent_email("alice@example.com", subject="<b>html</b>", sent_at="2030-01-01T09:00:00Z")
    )
    shared = store.record_sent(
        sent_email(
            "alice@example.com", shared=True, subject="Team offer",
            sent_at="2030-01-02T08:00:00Z",
            recipients=(Recipient("alice@example.com", "to"), Recipient("bob@example.com", "cc")),
        )
    )
    plain = store.record_sent(
        sent_email("carol@example.com", subject="Plain", sent_at="2030-01-03T08:00:00Z",
                   tracked=False, untracked_reason="plain text only")
    )
    alice = {"email_id": first, "contact": "alice@example.com"}
    store.add_event(event("open", "2030-01-01T09:00:01Z", verdict="bot", reason="scanner",
                          **alice))
    store.add_event(event("open", "2030-01-01T09:30:00Z", **alice))
    store.add_event(event("open", "2030-01-01T09:31:00Z", verdict="proxy", **alice))
    store.add_event(event("open", "2030-01-02T10:00:00Z", **alice))
    store.add_event(event("click", "2030-01-02T10:01:00Z", url="https://example.com/", **alice))
    store.add_event(event("open", "2030-01-02T11:00:00Z", email_id=old,
                          contact="alice@example.com"))
    store.add_event(event("open", "2030-01-02T12:00:00Z", email_id=shared, anonymous=True))
    store.add_event(event("click", "2030-01-03T07:00:00Z", email_id=shared, anonymous=True,
                          url="https://example.com/"))
    store.add_event(event("reply", "2030-01-03T09:00:00Z", email_id=shared,
                          contact="bob@example.com", server_id=None, local_key="reply:1"))
    store.add_event(event("open", "2029-12-31T23:00:00Z", email_id=old,
                          contact="alice@example.com"))  # before the period
    return {"old": old, "first": first, "shared": shared, "plain": plain}


@pytest.fixture
def report(store: RecordsStore, ids: dict[str, int]) -> Report:
    return build_report(read_report_data(store, PERIOD), PERIOD, TODAY, UTC)


def test_per_email_numbers(report: Report, ids: dict[str, int]) -> None:
    by_id = {e.email_id: e for e in report.emails}
    assert [e.email_id for e in report.emails] == [ids["plain"], ids["shared"], ids["first"]]
    first = by_id[ids["first"]]
    assert (first.recipients, first.opens, first.opened_by, first.clicks, first.replies) == (
        1, 2, 1, 1, 0
    )
    assert first.seconds_to_first_open == 30 * 60  # the bot's hit at +1 s does not count
    shared = by_id[ids["shared"]]
    assert (shared.recipients, shared.opens, shared.anonymous_opens, shared.opened_by) == (
        2, 1, 1, 0
    )
    assert (shared.clicks, shared.anonymous_clicks, shared.replies) == (1, 1, 1)
    assert shared.seconds_to_first_open == 4 * 3600
    plain = by_id[ids["plain"]]
    assert not plain.tracked and plain.opens == 0 and plain.seconds_to_first_open is None


def test_per_contact_numbers_leave_someone_out(report: Report) -> None:
    by_email = {c.email: c for c in report.contacts}
    assert set(by_email) == {"alice@example.com", "bob@example.com", "carol@example.com"}
    alice = by_email["alice@example.com"]
    # Two emails sent in the period; opens of an older email in the period count too;
    # the anonymous open and click of the shared email are not hers.
    assert (alice.name, alice.company, alice.emails) == ("Alicja Nowak", "Client Ltd", 2)
    assert (alice.opens, alice.clicks, alice.replies) == (3, 1, 0)
    assert alice.last_engagement == "2030-01-02T11:00:00.000Z"
    bob = by_email["bob@example.com"]
    assert (bob.emails, bob.opens, bob.clicks, bob.replies) == (1, 0, 0, 1)
    assert report.contacts[0].email == "alice@example.com"  # most engaged first


def test_days_fill_the_period_and_keep_someone_apart(report: Report) -> None:
    assert report.days == (
        DayStats(date(2030, 1, 1), opens=1, anonymous_opens=0, clicks=0, anonymous_clicks=0),
        DayStats(date(2030, 1, 2), opens=2, anonymous_opens=1, clicks=1, anonymous_clicks=0),
        DayStats(date(2030, 1, 3), opens=0, anonymous_opens=0, clicks=0, anonymous_clicks=1),
    )


def test_totals_count_anonymous_events_and_say_what_was_not_counted(report: Report) -> None:
    t = report.totals
    assert (t.emails, t.untracked, t.recipients) == (3, 1, 4)
    assert (t.opens, t.anonymous_opens, t.clicks, t.anonymous_clicks, t.replies) == (
        4, 1, 2, 1, 1
    )
    assert t.filtered == 2
    assert totals_text(t) == (
        "3 emails to 4 recipients (1 not tracked) · 4 opens (1 by Someone) · "
        "2 clicks (1 by Someone) · 1 reply · 2 not counted (scanners, proxies, your own)"
    )


def test_days_are_local_calendar_days() -> None:
    warsaw = timezone(timedelta(hours=1))
    period = last_days(2, datetime(2030, 1, 3, 15, 0, tzinfo=UTC), warsaw)
    assert period == Period(since="2030-01-01T23:00:00.000Z")
    assert last_days(None, datetime(2030, 1, 3, tzinfo=UTC)) == Period()


def test_tables_show_plain_text_subjects_and_someone(report: Report) -> None:
    emails = emails_table(report, UTC)
    assert emails.headers[:4] == ("Sent", "Subject", "Recipients", "Opens")
    texts = [[cell.text for cell in row] for row in emails.rows]
    assert texts[2] == ["2030-01-01 09:00", "<b>html</b>", "1", "2", "1 of 1", "1", "0",
                        "30 min"]
    assert texts[1][3] == "1 (1 by Someone)" and texts[1][7] == "4 h 00 min"
    assert texts[0][7] == "not tracked: plain text only"
    contacts = [[cell.text for cell in row] for row in contacts_table(report, UTC).rows]
    assert contacts[0][:7] == ["Alicja Nowak", "alice@example.com", "Client Ltd", "2", "3",
                               "1", "0"]
    days = [[cell.text for cell in row] for row in days_table(report).rows]
    assert days[1] == ["2030-01-02", "2", "1", "1", "0"]


def test_an_empty_store_gives_an_empty_report(tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "empty.db") as empty:
        report = build_report(read_report_data(empty, Period()), Period(), TODAY, UTC)
    assert report.emails == () and report.contacts == () and report.days == ()
    assert totals_text(report.totals).startswith("0 emails to 0 recipients")


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (None, 5, 59, 60, 3599, 3600, 3660, 90000)] == [
        "—", "5 s", "59 s", "1 min", "59 min", "1 h 00 min", "1 h 01 min", "1 d 1 h"
    ]


def test_csv_defuses_formulas_and_round_trips(tmp_path: Path) -> None:
    rows = [["=HYPERLINK(\"http://evil\")", "3"], ["<b>html</b>", "1 (1 by Someone)"]]
    text = csv_text(["Subject", "Opens"], rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["Subject", "Opens"], ["'=HYPERLINK(\"http://evil\")", "3"],
        ["<b>html</b>", "1 (1 by Someone)"],
    ]
    path = tmp_path / "out.csv"
    write_csv(path, ["Subject", "Opens"], rows)
    assert path.read_bytes() == b"\xef\xbb\xbf" + text.encode("utf-8")
