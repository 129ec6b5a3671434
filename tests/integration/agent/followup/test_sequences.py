"""Sequences over the real sender, records, outbox and an aiosmtpd sink, replies and bounces
recorded by the real reply recorder; the clock is moved (issue 17, part 3, and its rules:
nothing twice, nothing skipped, nobody written to after answering or bouncing)."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailbeacon.agent.followup.status import sequence_status
from mailbeacon.agent.mailbox.replies import ReplyRecorder
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.core.events import EventType
from tests.helpers import replies
from tests.helpers.followup import START, FollowupRig
from tests.helpers.smtp import ReceivedEnvelope, SmtpSink

THREE_STEPS = """
name = "q2"
from = "Anna Kowalska <anna@rep.example>"
[[step]]
delay = "0s"
subject = "Oferta dla {company}"
html = "<p>Dzień dobry {first_name}</p>"
[[step]]
delay = "30s"
text = "Czy oferta dotarła, {first_name}?"
[[step]]
delay = "60s"
html = "<p>Ostatnia wiadomość</p>"
"""
PEOPLE = {
    "alicja@client.example": {"name": "Alicja Nowak", "company": "Nowak SA"},
    "piotr@client.example": {"name": "Piotr Lis", "company": "Lis sp. j."},
    "ewa@client.example": {"name": "Ewa Zielińska", "company": "Zieleń"},
}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def _create(
    rig: FollowupRig, source: str = THREE_STEPS, people: dict[str, dict[str, str]] | None = None
) -> None:
    assert rig.store is not None
    assert rig.store.add_sequence("q2", source, rig.clock())
    contacts = list((people or PEOPLE).items())
    assert rig.store.enroll("q2", contacts, rig.clock()) == []


async def _incoming(rig: FollowupRig, raw: bytes) -> None:
    assert rig.records is not None
    recorder = ReplyRecorder(rig.records, PolicyConfig, lambda _n: None, rig.clock)
    await recorder.handle(replies.FakeIncoming(raw))


def _to(got: list[ReceivedEnvelope], address: str) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(g.data, policy=default_policy)  # type: ignore[misc]
        for g in got
        if g.rcpt_tos == (address,)
    ]


def _states(rig: FollowupRig) -> dict[str, tuple[int, str]]:
    assert rig.store is not None
    return {e.email: (e.sent, e.state) for e in rig.store.enrollments("q2")}


async def test_three_contacts_one_replies_one_bounces_one_gets_every_step_threaded(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        _create(rig)
        await rig.tick()
        got = await sink.until(3, within=10)
        [first] = _to(got, "ewa@client.example")
        assert first["Subject"] == "Oferta dla Zieleń"
        assert first["To"] == "Ewa Zielińska <ewa@client.example>"
        assert "Dzień dobry Ewa" in first.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert b"/o/" in got[0].data  # tracked like any email
        alicja = _to(got, "alicja@client.example")[0]["Message-ID"]
        piotr = _to(got, "piotr@client.example")[0]["Message-ID"]
        await _incoming(rig, replies.reply(alicja, "Alicja Nowak <alicja@client.example>"))
        await _incoming(rig, replies.bounce("piotr@client.example", piotr))
        await rig.restart()  # between steps
        rig.clock.advance(30)
        await rig.tick()
        got = await sink.until(4, within=10)
        [second] = _to(got, "ewa@client.example")[1:]
        assert second["Subject"] == "Re: Oferta dla Zieleń"
        assert second["In-Reply-To"] == first["Message-ID"]
        assert second["References"] == first["Message-ID"]
        assert "Czy oferta dotarła, Ewa?" in second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        rig.clock.advance(59)
        await rig.tick()
        assert len(sink.handler.received) == 4
        rig.clock.advance(1)
        await rig.tick()
        got = await sink.until(5, within=10)
        third = _to(got, "ewa@client.example")[2]
        assert third["Subject"] == "Re: Oferta dla Zieleń"
        assert third["In-Reply-To"] == second["Message-ID"]
        assert third["References"].split() == [first["Message-ID"], second["Message-ID"]]
        for _ in range(3):
            rig.clock.advance(3600)
            await rig.restart()
            await rig.tick()
        assert len(sink.handler.received) == 5  # nothing twice, nobody who answered
        assert _states(rig) == {
            "alicja@client.example": (1, "replied"),
            "piotr@client.example": (1, "bounced"),
            "ewa@client.example": (3, "finished"),
        }
        assert rig.store is not None and rig.records is not None
        status = sequence_status(rig.store, rig.records, "q2")
        assert status is not None
        assert status.to_json(lambda at: at) == {
            "name": "q2", "state": "active", "steps": 3,
            "contacts": [
                {"email": "alicja@client.example", "sent": 1, "state": "replied", "next_at": None},
                {"email": "piotr@client.example", "sent": 1, "state": "bounced", "next_at": None},
                {"email": "ewa@client.example", "sent": 3, "state": "finished", "next_at": None},
            ],
        }  # fmt: skip
        assert [(s.sent, s.replies) for s in status.steps] == [(3, 1), (1, 0), (1, 0)]


async def test_a_reply_one_second_before_a_step_stops_it_and_a_later_one_does_not_recall(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        _create(rig, people={k: PEOPLE[k] for k in ("alicja@client.example", "ewa@client.example")})
        await rig.tick()
        got = await sink.until(2, within=10)
        rig.clock.advance(29)
        first = _to(got, "alicja@client.example")[0]["Message-ID"]
        await _incoming(rig, replies.reply(first, "Alicja Nowak <alicja@client.example>"))
        rig.clock.advance(1)
        await rig.tick()
        got = await sink.until(3, within=10)
        assert [g.rcpt_tos for g in got[2:]] == [("ewa@client.example",)]
        # Ewa answers step 1 just after step 2 went: step 2 stays sent, both on the record.
        ewa_first = _to(got, "ewa@client.example")[0]["Message-ID"]
        ewa_second = _to(got, "ewa@client.example")[1]["Message-ID"]
        rig.clock.advance(1)
        await _incoming(rig, replies.reply(ewa_first, "Ewa Zielińska <ewa@client.example>"))
        rig.clock.advance(3600)
        await rig.tick()
        assert len(sink.handler.received) == 3
        assert _states(rig)["ewa@client.example"] == (2, "replied")
        assert rig.records is not None
        record = rig.records.contact_record("ewa@client.example")
        assert record is not None
        sent = [e.email.message_id for e in record.timeline if hasattr(e, "email")]
        assert ewa_second in sent and ewa_first in sent
        assert any(getattr(e, "event", None) and e.event.type == EventType.REPLY
                   for e in record.timeline)  # type: ignore[union-attr]  # fmt: skip


async def test_sleeping_through_due_times_skips_no_step_and_sends_none_twice(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        _create(rig, people={"ewa@client.example": PEOPLE["ewa@client.example"]})
        await rig.tick()
        rig.clock.advance(10 * 86400)  # the laptop slept for ten days
        await rig.tick()
        await rig.tick()
        await sink.until(2, within=10)
        assert _states(rig)["ewa@client.example"] == (2, "active")  # step 3 waits its 60 s
        rig.clock.advance(59)
        await rig.tick()
        assert len(sink.handler.received) == 2
        rig.clock.advance(-7200)  # the clock set back
        await rig.tick()
        rig.clock.advance(7201)
        await rig.tick()
        got = await sink.until(3, within=10)
        assert [len(_to(got, "ewa@client.example"))] == [3]


async def test_a_crash_between_claim_and_queue_neither_skips_nor_doubles_a_step(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        _create(rig, people={k: PEOPLE[k] for k in ("alicja@client.example", "ewa@client.example")})
        assert rig.store is not None
        alicja, ewa = rig.store.enrollments("q2")
        # Alicja's step 1 was claimed and the agent died; Ewa's was claimed, queued, not marked.
        assert rig.store.claim_step(alicja.id, 0, "<lost@rep.example>", "x", rig.clock())
        await rig.tick()
        await sink.until(1, within=10)
        steps = rig.store.steps(ewa.id)
        assert steps[0].state == "sent"
        # Ewa's step is done; make it look claimed but never marked, as after a crash.
        with rig.store._tx() as conn:
            conn.execute("UPDATE step_sends SET state = 'handing' WHERE enrollment = ?", (ewa.id,))
            conn.execute("UPDATE enrollments SET sent = 0 WHERE id = ?", (ewa.id,))
        await rig.restart()
        await rig.tick()
        got = await sink.until(2, within=10)
        assert sorted(g.rcpt_tos[0] for g in got) == ["alicja@client.example", "ewa@client.example"]
        assert _states(rig) == {
            "alicja@client.example": (1, "active"),
            "ewa@client.example": (1, "active"),
        }


async def test_window_business_days_daily_cap_dst_and_the_reps_zone(
    tmp_path: Path, sink: SmtpSink
) -> None:
    source = (
        'name = "q2"\nfrom = "anna@rep.example"\n[window]\ndays = ["mon","tue","wed","thu","fri"]\n'
        'hours = "09:00-17:00"\ndaily_cap = 2\n[[step]]\nsubject = "Hello {first_name}"\n'
        'text = "a"\n[[step]]\ndelay = "1d"\ntext = "b"\n'
    )
    warsaw = ZoneInfo("Europe/Warsaw")
    friday_evening = datetime(2027, 3, 26, 16, 30, tzinfo=warsaw)  # DST starts on the 28th
    async with FollowupRig(tmp_path, sink) as rig:
        rig.clock.now = friday_evening.timestamp()
        _create(rig, source)
        await rig.tick()
        await sink.until(2, within=10)  # the cap: two today
        assert rig.store is not None
        waiting = {e.email: e.next_at for e in rig.store.enrollments("q2")}
        monday_nine = datetime(2027, 3, 29, 9, 0, tzinfo=warsaw).timestamp()
        assert sorted(waiting.values()) == [
            monday_nine,  # the third: the cap was reached on Friday
            datetime(2027, 3, 29, 16, 30, tzinfo=warsaw).timestamp(),  # 1 business day, after DST
            datetime(2027, 3, 29, 16, 30, tzinfo=warsaw).timestamp(),
        ]
        rig.clock.now = datetime(2027, 3, 27, 12, 0, tzinfo=warsaw).timestamp()  # Saturday
        await rig.tick()
        assert len(sink.handler.received) == 2
        rig.zone = ZoneInfo("America/New_York")  # the rep flew; the window has no zone of its own
        rig.clock.now = monday_nine
        await rig.tick()
        assert len(sink.handler.received) == 2  # 03:00 in New York: closed
        new_york = ZoneInfo("America/New_York")
        rig.clock.now = datetime(2027, 3, 29, 9, 0, tzinfo=new_york).timestamp()
        await rig.tick()
        await sink.until(3, within=10)  # the third's step 1, at 09:00 where the rep is now
        rig.clock.now = datetime(2027, 3, 29, 11, 0, tzinfo=new_york).timestamp()
        await rig.tick()
        await rig.tick()
        await sink.until(4, within=10)  # one step 2: the cap of two for this day is reached
        assert len(sink.handler.received) == 4
        rig.clock.now = datetime(2027, 3, 30, 9, 0, tzinfo=new_york).timestamp()
        await rig.tick()
        await rig.tick()
        got = await sink.until(6, within=10)
        assert len(got) == 6
        for _ in range(3):
            rig.clock.advance(86400)
            await rig.tick()
        assert len(sink.handler.received) == 6
        assert {s for _sent, s in _states(rig).values()} == {"finished"}


async def test_pause_resume_and_removal(tmp_path: Path, sink: SmtpSink) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        _create(rig, people={k: PEOPLE[k] for k in ("alicja@client.example", "ewa@client.example")})
        assert rig.store is not None
        assert rig.store.set_sequence_state("q2", "paused")
        await rig.tick()
        assert sink.handler.received == []
        assert rig.store.set_sequence_state("q2", "active")
        await rig.tick()
        await sink.until(2, within=10)
        alicja = rig.store.enrollments("q2")[0]
        assert rig.store.leave(alicja.id, "removed", "removed by the rep")
        rig.clock.advance(3600)
        for _ in range(3):
            await rig.tick()
            rig.clock.advance(3600)
        got = await sink.until(4, within=10)
        assert [g.rcpt_tos[0] for g in got[2:]] == ["ewa@client.example"] * 2
        assert _states(rig)["alicja@client.example"] == (1, "removed")


def test_start_is_a_monday_morning() -> None:
    start = datetime.fromtimestamp(START, UTC).astimezone(ZoneInfo("Europe/Warsaw"))
    assert (start.weekday(), start.hour) == (0, 9)


async def test_the_tracking_policy_seam_sends_steps_untracked_and_keeps_the_contact(
    tmp_path: Path, sink: SmtpSink
) -> None:
    async with FollowupRig(tmp_path, sink) as rig:
        assert rig.sequences is not None
        # The running agent answers this seam from the team policy (runtime.py, team.py).
        rig.sequences._tracking_allowed = lambda address: address != "ewa@client.example"
        _create(rig, people={k: PEOPLE[k] for k in ("alicja@client.example", "ewa@client.example")})
        await rig.tick()
        got = await sink.until(2, within=10)
        tracked = {g.rcpt_tos[0]: b"/o/" in g.data for g in got}
        assert tracked == {"alicja@client.example": True, "ewa@client.example": False}
        assert _states(rig)["ewa@client.example"] == (1, "active")


async def test_a_step_from_a_saved_template_and_an_unthreaded_step(
    tmp_path: Path, sink: SmtpSink
) -> None:
    templates = tmp_path / "templates.json"
    templates.write_text(
        json.dumps({"version": 1, "templates": [
            {"name": "Oferta", "subject": "Oferta dla {company}",
             "html": "<p>Dzień dobry {first_name}, <b>oferta</b>.</p>"},
        ]}),
        encoding="utf-8",
    )  # fmt: skip
    source = (
        'name = "q2"\nfrom = "anna@rep.example"\n[[step]]\ntemplate = "Oferta"\n'
        '[[step]]\ndelay = "1m"\nthread = false\nsubject = "Nowy cennik"\ntext = "Cennik"\n'
    )
    async with FollowupRig(tmp_path, sink, templates=templates) as rig:
        _create(rig, source, {"ewa@client.example": PEOPLE["ewa@client.example"]})
        await rig.tick()
        rig.clock.advance(60)
        await rig.tick()
        got = await sink.until(2, within=10)
    first, second = _to(got, "ewa@client.example")
    assert first["Subject"] == "Oferta dla Zieleń"
    assert "<b>oferta</b>" in first.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert second["Subject"] == "Nowy cennik" and second["In-Reply-To"] is None
