""" "Remind me if no reply" over the real relay, sender and records, replies recorded by the
real reply recorder; the clock is moved (issue 17, part 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.agent.mailbox.replies import ReplyRecorder
from mailbeacon.agent.notifications.policy import PolicyConfig
from tests.helpers import replies
from tests.helpers.followup import START, FollowupRig, email
from tests.helpers.smtp import SmtpSink

DAY = 86400.0
TWO = "Alicja Nowak <alicja@client.example>, Piotr Lis <piotr@client.example>"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


async def _incoming(rig: FollowupRig, raw: bytes) -> None:
    assert rig.records is not None
    recorder = ReplyRecorder(rig.records, PolicyConfig, lambda _n: None, rig.clock)
    await recorder.handle(replies.FakeIncoming(raw))


async def test_a_reminder_per_recipient_fires_without_a_reply_and_a_reply_cancels_it(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        message = email(
            TWO, "Oferta na rok 2027 dla działu zakupów i logistyki", ("X-MailBeacon-Remind", "3d")
        )
        message["Message-ID"] = "<oferta@rep.example>"
        await rig.submit(message)
        [got] = await sink.until(1, within=10)
        assert b"X-MailBeacon" not in got.data
        assert rig.store is not None
        assert [r.recipient for r in rig.store.reminders()] == [
            "alicja@client.example",
            "piotr@client.example",
        ]
        # Alicja's out-of-office and a bounce do not count; Piotr answers as a person.
        await _incoming(rig, replies.out_of_office("<oferta@rep.example>", "alicja@client.example"))
        await _incoming(
            rig, replies.reply("<oferta@rep.example>", "Piotr Lis <piotr@client.example>")
        )
        rig.clock.advance(3 * DAY - 1)
        await rig.tick()
        assert rig.notifications == []
        rig.clock.advance(1)
        await rig.tick()
        await rig.tick()
        [reminder] = rig.notifications
        assert reminder.type == "reminder"
        assert reminder.title == (
            "No reply from Alicja Nowak to “Oferta na rok 2027 dla działu zakupów i…” in 3 days"
        )
        assert reminder.recipient == "alicja@client.example" and reminder.email_id is not None
        assert reminder.body == (
            "Sent Mon 7 Dec 09:00. Click to open the record, write a follow-up or snooze."
        )
        states = {r.recipient: r.state for r in rig.store.reminders(("fired", "replied"))}
        assert states == {"alicja@client.example": "fired", "piotr@client.example": "replied"}


async def test_the_default_from_settings_a_header_saying_no_and_snooze(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        rig.settings.defaults.remind_days = 2
        await rig.submit(email("alicja@client.example", "Default"))
        await rig.submit(email("piotr@client.example", "Off", ("X-MailBeacon-Remind", "no")))
        await sink.until(2, within=10)
        assert rig.store is not None
        [default] = rig.store.reminders()
        assert default.recipient == "alicja@client.example" and default.delay == "2d"
        rig.clock.advance(2 * DAY)
        await rig.tick()
        assert len(rig.notifications) == 1
        assert rig.store.snooze_reminder(default.id, rig.clock() + DAY)
        await rig.restart()  # the snooze is on disk
        rig.clock.advance(DAY - 1)
        await rig.tick()
        assert len(rig.notifications) == 1
        rig.clock.advance(1)
        await rig.tick()
        await rig.tick()
        assert len(rig.notifications) == 2


async def test_a_reminder_of_scheduled_mail_counts_from_when_it_went(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        await rig.submit(
            email(
                "alicja@client.example", "Later",
                ("X-MailBeacon-Send-At", "2026-12-08T09:00:00+01:00"),
                ("X-MailBeacon-Remind", "1d"),
            )
        )  # fmt: skip
        assert rig.store is not None and rig.store.reminders() == []
        rig.clock.advance(DAY)
        await rig.tick()
        [reminder] = rig.store.reminders()
        assert reminder.due_at == START + 2 * DAY
        rig.clock.advance(DAY)
        await rig.tick()
        assert [n.type for n in rig.notifications] == ["reminder"]


@pytest.mark.parametrize("value", ["soon", "3 weeks", "-1d"])
async def test_an_unreadable_remind_header_is_refused(
    tmp_path: Path, sink: SmtpSink, value: str
) -> None:
    import smtplib

    async with FollowupRig(tmp_path, sink) as rig:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await rig.submit(email("alicja@client.example", "x", ("X-MailBeacon-Remind", value)))
        assert refused.value.smtp_code == 554 and b"Remind" in refused.value.smtp_error
