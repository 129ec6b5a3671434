"""The time rules of follow-up: send times, delays, business days, send windows, DST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from mailbeacon.core.control import decide
from mailbeacon.core.followup_time import (
    Delay,
    TimeRuleError,
    Window,
    add_delay,
    due_after,
    next_monday_nine,
    parse_delay,
    parse_send_at,
    parse_window,
    tomorrow_morning,
)

WARSAW = ZoneInfo("Europe/Warsaw")


@pytest.mark.parametrize(
    "text",
    [
        "Tue, 08 Dec 2026 09:00:00 +0100",
        "2026-12-08T09:00:00+01:00",
        "2026-12-08T08:00:00Z",
        "  Tue, 08 Dec 2026\r\n 09:00:00 +0100",
    ],
)
def test_a_send_time_with_a_zone_is_one_utc_instant(text: str) -> None:
    assert parse_send_at(text) == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "tomorrow", "2026-12-08T09:00:00", "Tue, 08 Dec 2026 09:00:00 -0000", "09:00"]
)
def test_a_send_time_without_a_zone_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(TimeRuleError, match="Send-At"):
        parse_send_at(text)


def test_delays() -> None:
    assert parse_delay("3d") == Delay(3, "d")
    assert parse_delay(" 30S ") == Delay(30, "s")
    assert parse_delay("5") == Delay(5, "d")
    assert parse_delay("2h").seconds == 7200
    for bad in ("", "3w", "-1d", "d3", "1.5d"):
        with pytest.raises(TimeRuleError):
            parse_delay(bad)


def test_the_control_channel_reads_and_removes_send_at_and_remind() -> None:
    raw = (
        b"X-MailBeacon-Send-At: 2026-12-08T09:00:00+01:00\r\nX-MailBeacon-Remind: 3d\r\n"
        b"From: a@x.example\r\nTo: b@y.example\r\nSubject: Hi\r\n\r\nbody\r\n"
    )
    decision = decide(["b@y.example"], raw)
    assert decision.send_at == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
    assert decision.remind == Delay(3, "d")
    assert decision.refusal is None
    assert b"X-MailBeacon" not in decision.message
    off = decide(["b@y.example"], b"X-MailBeacon-Remind: no\r\nSubject: x\r\n\r\nb")
    assert off.remind == Delay(0, "d")


def test_a_bad_send_at_becomes_a_refusal_never_a_send_now() -> None:
    raw = b"X-MailBeacon-Send-At: next tuesday\r\nSubject: Hi\r\n\r\nbody\r\n"
    decision = decide(["b@y.example"], raw)
    assert decision.send_at is None
    assert decision.refusal is not None and "next tuesday" in decision.refusal


def test_business_days_skip_the_weekend_and_keep_the_local_hour() -> None:
    window = parse_window(["mon", "tue", "wed", "thu", "fri"], "08:00-18:00", "Europe/Warsaw", 50)
    friday = datetime(2026, 12, 4, 10, 0, tzinfo=WARSAW)
    assert add_delay(friday, Delay(1, "d"), window, UTC) == datetime(
        2026, 12, 7, 10, 0, tzinfo=WARSAW
    )
    assert add_delay(friday, Delay(2, "d"), window, UTC).astimezone(WARSAW).day == 8
    # Without named days, d is a calendar day.
    assert add_delay(friday, Delay(1, "d"), Window(), WARSAW).astimezone(WARSAW).day == 5


def test_a_day_across_a_dst_change_keeps_the_wall_clock_time() -> None:
    saturday = datetime(2026, 3, 28, 9, 0, tzinfo=WARSAW)  # DST starts on the 29th
    monday = add_delay(saturday, Delay(2, "d"), Window(), WARSAW)
    assert monday.astimezone(WARSAW).time() == time(9, 0)
    assert (monday - saturday).total_seconds() == 2 * 86400 - 3600


def test_the_window_moves_a_due_time_to_its_next_opening() -> None:
    window = parse_window(["mon", "tue", "wed", "thu", "fri"], "08:00-18:00", "Europe/Warsaw", None)
    late_friday = datetime(2026, 12, 4, 19, 30, tzinfo=WARSAW)
    assert window.next_open(late_friday, UTC) == datetime(2026, 12, 7, 8, 0, tzinfo=WARSAW)
    early = datetime(2026, 12, 7, 6, 0, tzinfo=WARSAW)
    assert window.next_open(early, UTC) == datetime(2026, 12, 7, 8, 0, tzinfo=WARSAW)
    inside = datetime(2026, 12, 7, 12, 0, tzinfo=WARSAW)
    assert window.next_open(inside, UTC) == inside
    assert window.next_day_open(inside, UTC) == datetime(2026, 12, 8, 8, 0, tzinfo=WARSAW)
    assert due_after(late_friday, Delay(30, "s"), window, UTC) == datetime(
        2026, 12, 7, 8, 0, tzinfo=WARSAW
    )


def test_a_window_without_zone_follows_the_reps_zone_as_it_changes() -> None:
    window = parse_window(None, "09:00-17:00", None, None)
    at = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)  # 08:30 in Warsaw, 07:30 in London
    assert window.next_open(at, WARSAW) == datetime(2026, 12, 7, 9, 0, tzinfo=WARSAW)
    assert window.next_open(at, ZoneInfo("Europe/London")) == datetime(
        2026, 12, 7, 9, 0, tzinfo=UTC
    )


def test_bad_windows_are_refused() -> None:
    for days, hours, zone, cap in (
        (["mon", "funday"], None, None, None), ([], None, None, None),
        (None, "18:00-08:00", None, None), (None, "8-18", None, None),
        (None, None, "Mars/Olympus", None), (None, None, None, 0),
    ):  # fmt: skip
        with pytest.raises(TimeRuleError):
            parse_window(days, hours, zone, cap)


def test_compose_shortcuts_are_in_the_reps_zone() -> None:
    now = datetime(2026, 12, 7, 22, 30, tzinfo=WARSAW)  # Monday evening
    assert tomorrow_morning(now, WARSAW) == datetime(2026, 12, 8, 8, 0, tzinfo=WARSAW)
    assert next_monday_nine(now, WARSAW) == datetime(2026, 12, 14, 9, 0, tzinfo=WARSAW)
    sunday = datetime(2026, 12, 6, 12, 0, tzinfo=WARSAW)
    assert next_monday_nine(sunday, WARSAW) == datetime(2026, 12, 7, 9, 0, tzinfo=WARSAW)
