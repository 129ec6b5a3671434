"""Send later over the real relay, sender, outbox and an aiosmtpd sink; the clock is moved.

Issue 17, part 1: X-MailBeacon-Send-At, a durable schedule, tokens minted at send time,
nothing twice and nothing skipped across restarts, clock changes and sleep.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.sending.submit import RelaySubmitter
from mailbeacon.core.followup_time import Delay
from mailbeacon.core.tokens import parse_unverified
from tests.helpers.followup import PASSWORD, START, FollowupRig, email
from tests.helpers.smtp import SmtpSink

IN_ONE_HOUR = "2026-12-07T10:00:00+01:00"  # START + 3600


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def _pixel_minted_at(data: bytes) -> int:
    token = re.search(rb"/o/([A-Za-z0-9_-]+)\.gif", data)
    assert token is not None, data
    claims = parse_unverified(token.group(1).decode())
    assert claims is not None
    return claims.minted_at


async def test_mail_waits_until_its_time_then_goes_out_once_without_the_header(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        await rig.submit(
            email("alicja@client.example", "Oferta", ("X-MailBeacon-Send-At", IN_ONE_HOUR))
        )
        assert rig.store is not None and rig.records is not None
        [waiting] = rig.store.scheduled()
        assert waiting.send_at == START + 3600 and waiting.subject == "Oferta"
        assert rig.records.emails_for_message_id(waiting.message_id) == []  # not recorded yet
        rig.clock.advance(3599)
        await rig.tick()
        assert sink.handler.received == []
        rig.clock.advance(1)
        await rig.tick()
        await rig.tick()
        [got] = await sink.until(1, within=10)
        assert b"X-MailBeacon" not in got.data
        assert got.message_id == waiting.message_id
        # Dated when it went, in the rep's zone (a mail client shows and sorts by it).
        [date] = re.findall(rb"(?m)^Date: (.*)\r$", got.data.split(b"\r\n\r\n")[0])
        assert parsedate_to_datetime(date.decode()) == datetime.fromtimestamp(START + 3600, UTC)
        assert date.endswith(b"+0100")
        # Tokens are minted when it goes, not when it was scheduled.
        assert _pixel_minted_at(got.data) == int(START + 3600)
        assert rig.store.scheduled() == []
        [record] = rig.records.emails_for_message_id(waiting.message_id)
        assert record.tracked
        assert rig.notifications == []  # on time: nothing to tell


@pytest.mark.parametrize("value", ["next tuesday", "2026-12-08T09:00:00", "Tue, 8 Dec 2026"])
async def test_a_bad_send_at_is_refused_with_a_clear_error_and_never_sent(
    tmp_path: Path, sink: SmtpSink, value: str
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await rig.submit(
                email("alicja@client.example", "Oferta", ("X-MailBeacon-Send-At", value))
            )
        assert refused.value.smtp_code == 554
        assert b"time zone" in refused.value.smtp_error
        await rig.tick()
        assert rig.store is not None and rig.store.scheduled() == []
        assert sink.handler.received == []


async def test_scheduled_mail_survives_a_restart_and_is_sent_once(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        await rig.submit(
            email("alicja@client.example", "Oferta", ("X-MailBeacon-Send-At", IN_ONE_HOUR))
        )
        await rig.restart()
        rig.clock.advance(3600)
        await rig.tick()
        await rig.restart()
        await rig.tick()
        rig.clock.advance(86400)
        await rig.tick()
        await sink.until(1, within=10)
        assert len(sink.handler.received) == 1


async def test_time_passed_while_stopped_goes_out_at_start_with_a_notification(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        await rig.submit(
            email("alicja@client.example", "Oferta", ("X-MailBeacon-Send-At", IN_ONE_HOUR))
        )
        await rig.stop()
        rig.clock.advance(8 * 3600)  # the laptop was off (or asleep) all morning
        await rig.start()
        await rig.tick()
        await sink.until(1, within=10)
        [late] = rig.notifications
        assert late.type == "sent_late"
        assert late.title == "Sent late: “Oferta”"
        assert "Mon 7 Dec 10:00" in late.body and "alicja@client.example" in late.body
        assert late.email_id is not None


async def test_a_crash_between_claim_and_queue_is_settled_by_the_records(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        await rig.submit(email("a@client.example", "Queued", ("X-MailBeacon-Send-At", IN_ONE_HOUR)))
        await rig.submit(
            email("b@client.example", "Not queued", ("X-MailBeacon-Send-At", IN_ONE_HOUR))
        )
        assert rig.store is not None and rig.followup is not None
        first, second = rig.store.scheduled()
        rig.clock.advance(3600)
        # The first was queued and the agent died before marking it; the second was
        # claimed and the agent died before queuing it.
        assert rig.store.claim_scheduled(first.id, rig.clock())
        await rig.followup.send_now(_as_incoming(rig, first.id))
        assert rig.store.claim_scheduled(second.id, rig.clock())
        await rig.restart()
        await rig.tick()
        got = await sink.until(2, within=10)
        assert sorted(g.rcpt_tos for g in got) == [("a@client.example",), ("b@client.example",)]
        await rig.tick()
        assert len(sink.handler.received) == 2


def _as_incoming(rig: FollowupRig, item_id: int) -> IncomingMessage:
    assert rig.store is not None
    item = rig.store.scheduled_item(item_id)
    assert item is not None
    return IncomingMessage(
        item.mail_from, item.recipients, rig.store.scheduled_data(item_id), None, None
    )


async def test_cancel_send_now_and_a_new_time_act_on_the_running_loop(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        for to in ("a@client.example", "b@client.example", "c@client.example"):
            await rig.submit(email(to, "Later", ("X-MailBeacon-Send-At", IN_ONE_HOUR)))
        assert rig.store is not None
        a, b, c = rig.store.scheduled()
        assert rig.store.cancel_scheduled(a.id)
        assert rig.store.reschedule(b.id, rig.clock())  # send now
        assert rig.store.reschedule(c.id, START + 7200)  # change the time
        await rig.tick()
        [now] = await sink.until(1, within=10)
        assert now.rcpt_tos == ("b@client.example",)
        rig.clock.advance(3600)
        await rig.tick()
        assert len(sink.handler.received) == 1  # a cancelled, c not yet
        rig.clock.advance(3600)
        await rig.tick()
        got = await sink.until(2, within=10)
        assert got[1].rcpt_tos == ("c@client.example",)
        assert not rig.store.cancel_scheduled(c.id)  # already sent: nothing to cancel


async def test_the_reps_zone_changing_or_the_clock_jumping_sends_nothing_twice_or_early(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        await rig.submit(email("a@client.example", "Later", ("X-MailBeacon-Send-At", IN_ONE_HOUR)))
        rig.zone = ZoneInfo("America/New_York")  # the rep flew to New York
        rig.clock.advance(1800)
        await rig.tick()
        assert sink.handler.received == []  # the instant did not move with the zone
        rig.clock.advance(-3600)  # the clock was set back (NTP, DST done wrong)
        await rig.tick()
        rig.clock.advance(3 * 86400)  # then the machine slept for three days
        await rig.tick()
        await rig.tick()
        await sink.until(1, within=10)
        rig.clock.advance(-86400)
        await rig.tick()
        assert len(sink.handler.received) == 1
        assert [n.type for n in rig.notifications] == ["sent_late"]


async def test_the_compose_windows_way_in_schedules_with_its_reminder(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        assert rig.relay is not None and rig.store is not None
        submit = RelaySubmitter(rig.relay.host, rig.relay.port, "mailbeacon", lambda: PASSWORD)
        message_raw = email("alicja@client.example", "Z okna")
        message_raw["Date"] = "Mon, 07 Dec 2026 08:00:00 +0000"
        raw = message_raw.as_bytes()
        at = datetime.fromtimestamp(START + 7200, UTC)
        message = IncomingMessage(
            "anna@rep.example", ("alicja@client.example",), raw, True, None,
            send_at=at, remind=Delay(2, "d"),
        )  # fmt: skip
        answer = await asyncio.to_thread(submit, message)
        assert "queued as scheduled-" in answer
        [waiting] = rig.store.scheduled()
        assert (waiting.send_at, waiting.remind, waiting.track) == (at.timestamp(), "2d", True)
        rig.clock.advance(7200)
        await rig.tick()
        [got] = await sink.until(1, within=10)
        assert b"X-MailBeacon" not in got.data
        assert (
            got.data.count(b"\nDate: ") == 1
            and b"Date: Mon, 07 Dec 2026 11:00:00 +0100" in got.data
        )
        [reminder] = rig.store.reminders()
        assert reminder.due_at == START + 7200 + 2 * 86400
