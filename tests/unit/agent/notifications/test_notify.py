"""The notification policy: what the rep hears about (docs/rules.md rules 5 to 9)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.notifications.policy import Notifier, PolicyConfig
from mailbeacon.agent.records.model import ActivityFilter, Recipient, SentEmail
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.events import Revision, ServerEvent
from tests.helpers.fakes import FakeClock

SENT = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
NOW = SENT + timedelta(minutes=5)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def send(store: RecordsStore, key: str, *recipients: tuple[str, str | None]) -> int:
    return store.record_sent(
        SentEmail(
            message_id=f"<{key}@rep.example>",
            message_key=key,
            subject="Oferta <b>Q4</b>",
            sender="rep@rep.example",
            sent_at=iso(SENT),
            recipients=tuple(Recipient(addr, "to", "", rkey) for addr, rkey in recipients),
            track=True,
            log=False,
            tracked=True,
        )
    )


_ids = iter(range(1, 10_000))


def event(
    key: str,
    recipient: str | None,
    *,
    type: str = "open",
    verdict: str = "human",
    at: datetime = NOW,
    ip: str = "127.0.0.9",
    ua: str = "Thunderbird",
    **extra: object,
) -> ServerEvent:
    return ServerEvent(
        id=next(_ids), type=type, message=key, recipient=recipient, at=iso(at), ip=ip,
        user_agent=ua, verdict=verdict, reason="test", **extra,  # type: ignore[arg-type]
    )


class Harness:
    def __init__(self, store: RecordsStore, config: PolicyConfig) -> None:
        self.clock = FakeClock(NOW.timestamp())
        self.config = config
        self.shown: list[Notification] = []
        self.changed = asyncio.Event()
        self.notifier = Notifier(store, lambda: self.config, self._show, self.clock)

    def _show(self, notification: Notification) -> None:
        self.shown.append(notification)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.shown) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def harness(store: RecordsStore) -> Harness:
    return Harness(store, PolicyConfig(settle_seconds=0))


async def test_a_human_open_notifies_naming_the_recipient(
    store: RecordsStore, harness: Harness
) -> None:
    send(store, "aa" * 12, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event("aa" * 12, "r1"))
    [shown] = harness.shown
    assert shown.title == "alicja@client.example opened “Oferta <b>Q4</b>”"
    assert shown.recipient == "alicja@client.example" and not shown.anonymous
    assert shown.message_id == "<" + "aa" * 12 + "@rep.example>"
    assert "5 min after sending" in shown.body
    contact = store.contact("alicja@client.example")
    assert contact is not None and contact.last_open is not None


@pytest.mark.parametrize("verdict", ["bot", "proxy", "self"])
async def test_non_human_hits_are_recorded_but_never_notify(
    store: RecordsStore, harness: Harness, verdict: str
) -> None:
    send(store, "ab" * 12, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event("ab" * 12, "r1", verdict=verdict))
    assert harness.shown == []
    [row] = store.activity()
    assert row.event.verdict == verdict and not row.event.notified
    contact = store.contact("alicja@client.example")
    assert contact is not None and contact.last_open is None


async def test_a_proxy_fetch_that_counts_notifies_and_says_via(
    store: RecordsStore, harness: Harness
) -> None:
    send(store, "ac" * 12, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event("ac" * 12, "r1", verdict="proxy", counts=True, via="Gmail"))
    [shown] = harness.shown
    assert "via Gmail" in shown.body


async def test_the_same_event_never_notifies_twice_even_after_a_restart(
    store: RecordsStore, harness: Harness
) -> None:
    send(store, "ad" * 12, ("alicja@client.example", "r1"))
    hit = event("ad" * 12, "r1")
    await harness.notifier.handle(hit)
    await harness.notifier.handle(hit)
    restarted = Harness(store, harness.config)
    await restarted.notifier.handle(hit)
    assert len(harness.shown) == 1 and restarted.shown == []


async def test_repeated_opens_within_the_window_notify_once_but_count(
    store: RecordsStore, harness: Harness
) -> None:
    key = "ae" * 12
    email_id = send(store, key, ("alicja@client.example", "r1"))
    for seconds in (0, 10, 50):
        await harness.notifier.handle(event(key, "r1", at=NOW + timedelta(seconds=seconds)))
    assert len(harness.shown) == 1
    await harness.notifier.handle(event(key, "r1", at=NOW + timedelta(seconds=200)))
    assert len(harness.shown) == 2
    opens = store.count_events(ActivityFilter(types=("open",), email_id=email_id))
    assert opens == 4


async def test_an_inferred_open_travels_with_its_click(
    store: RecordsStore, harness: Harness
) -> None:
    key = "af" * 12
    send(store, key, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event(key, "r1", inferred=True))
    await harness.notifier.handle(
        event(key, "r1", type="click", url="https://shop.example/pricing", link=0)
    )
    [shown] = harness.shown
    assert shown.type == "click" and shown.inferred
    assert "opened and clicked shop.example/pricing" in shown.title


async def test_a_shared_pixel_notifies_as_someone_and_leaves_contacts_alone(
    store: RecordsStore, harness: Harness
) -> None:
    key = "b0" * 12
    send(store, key, ("a@client.example", None), ("b@client.example", None))
    await harness.notifier.handle(event(key, None))
    [shown] = harness.shown
    assert shown.title.startswith("Someone opened") and shown.anonymous
    assert shown.recipient is None
    for address in ("a@client.example", "b@client.example"):
        contact = store.contact(address)
        assert contact is not None and contact.last_open is None and contact.last_engagement is None
    record = store.contact_record("a@client.example")
    assert record is not None and record.opens == 0


async def test_privacy_without_lawful_basis_is_anonymous(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, privacy_enabled=True)
    send(store, "b1" * 12, ("alicja@client.example", "r1"))
    send(store, "b2" * 12, ("jan@client.example", "r2"))
    store.set_lawful_basis("jan@client.example", "legitimate interest")
    await harness.notifier.handle(event("b1" * 12, "r1"))
    await harness.notifier.handle(event("b2" * 12, "r2"))
    anonymous, named = harness.shown
    assert anonymous.title.startswith("Someone") and anonymous.recipient is None
    assert named.recipient == "jan@client.example"
    alicja = store.contact("alicja@client.example")
    assert alicja is not None and alicja.last_open is None
    jan = store.contact("jan@client.example")
    assert jan is not None and jan.last_open is not None


async def test_a_revision_within_the_settle_window_withdraws_the_notification(
    store: RecordsStore,
) -> None:
    harness = Harness(store, PolicyConfig(settle_seconds=0.05))
    send(store, "b3" * 12, ("alicja@client.example", "r1"))
    first = event("b3" * 12, "r1", type="click", url="https://a.example/", link=0)
    await harness.notifier.handle(first)
    await harness.notifier.handle(Revision(first.id, "bot", "3 links clicked within 1 s"))
    kept = event("b3" * 12, "r1", at=NOW + timedelta(seconds=1))
    await harness.notifier.handle(kept)
    await harness.wait_for(1)
    assert [n.event for n in harness.shown] == [kept.id]
    stored = store.event_by_server_id(first.id)
    assert stored is not None and stored.verdict == "bot"


async def test_backlog_after_being_away_becomes_one_summary(
    store: RecordsStore, harness: Harness
) -> None:
    # Long enough that a loaded machine still handles all eight inside one window.
    harness.config = replace(harness.config, flood_window_seconds=1.0)
    old = NOW - timedelta(hours=3)
    for n in range(7):
        key = f"c{n}" * 12
        send(store, key, (f"p{n}@client.example", f"r{n}"))
        await harness.notifier.handle(event(key, f"r{n}", at=old))
    await harness.notifier.handle(event("c0" * 12, "r0", type="click", at=old, url="https://x.y/"))
    await harness.wait_for(1)
    [summary] = harness.shown
    assert summary.title == (
        "p0@client.example, p1@client.example and 5 others opened and clicked links in 7 emails"
    )
    assert summary.body == (
        "7 opens and 1 click while you were away. Open the activity feed for details."
    )
    assert len(summary.events) == 8
    assert all(row.event.notified for row in store.activity())


async def test_a_burst_never_floods(store: RecordsStore, harness: Harness) -> None:
    harness.config = replace(harness.config, flood_window_seconds=1.0, flood_count=3)
    for n in range(10):
        key = f"d{n}" * 12
        send(store, key, (f"p{n}@client.example", f"r{n}"))
        await harness.notifier.handle(event(key, f"r{n}"))
    await harness.wait_for(4)
    assert len(harness.shown) == 4
    assert harness.shown[-1].title == (
        "p3@client.example, p4@client.example and 5 others opened 7 emails"
    )
    assert harness.shown[-1].body.startswith("7 opens in the last few seconds.")


async def test_an_open_from_a_new_device_and_network_is_possibly_forwarded(
    store: RecordsStore, harness: Harness
) -> None:
    key = "e0" * 12
    send(store, key, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event(key, "r1", ip="127.0.0.9", ua="Thunderbird"))
    later = NOW + timedelta(hours=2)
    await harness.notifier.handle(event(key, "r1", at=later, ip="127.0.9.9", ua="iPhone Mail"))
    first, second = harness.shown
    assert not first.possibly_forwarded
    assert second.possibly_forwarded and "possibly forwarded" in second.body


async def test_paused_notifications_are_recorded_silently(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, paused_until=NOW.timestamp() + 3600)
    send(store, "e1" * 12, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event("e1" * 12, "r1"))
    assert harness.shown == []
    assert store.count_events() == 1


async def test_switched_off_kinds_do_not_notify(store: RecordsStore, harness: Harness) -> None:
    harness.config = replace(harness.config, kinds=frozenset({"click"}))
    send(store, "e2" * 12, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event("e2" * 12, "r1"))
    assert harness.shown == []


async def test_events_of_unknown_emails_are_recorded_without_notifying(
    store: RecordsStore, harness: Harness
) -> None:
    await harness.notifier.handle(event("f0" * 12, None))
    assert harness.shown == []
    assert store.count_events() == 1


async def test_agent_made_notifications_share_the_flood_guard(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, flood_window_seconds=1.0, flood_count=2)
    for n in range(5):
        harness.notifier.deliver(
            Notification(event=None, type="reply", message_id=f"<{n}@x>", subject="S",
                         recipient=f"p{n}@client.example", anonymous=False,
                         title=f"p{n} replied to “S”", body="", at=iso(NOW))
        )
    await harness.wait_for(3)
    assert [n.type for n in harness.shown] == ["reply", "reply", "summary"]
    assert harness.shown[-1].title == (
        "p2@client.example, p3@client.example and p4@client.example replied to 3 emails"
    )
    assert harness.shown[-1].body.startswith("3 replies in the last few seconds.")


async def test_several_clicks_by_one_person_within_the_window_notify_once(
    store: RecordsStore, harness: Harness
) -> None:
    key = "e3" * 12
    send(store, key, ("alicja@client.example", "r1"))
    await harness.notifier.handle(event(key, "r1"))
    for n, seconds in enumerate((5, 20, 40)):
        await harness.notifier.handle(event(key, "r1", type="click", link=n,
                                            url=f"https://shop.example/{n}",
                                            at=NOW + timedelta(seconds=seconds)))
    assert [n.type for n in harness.shown] == ["open", "click"]
    assert store.count_events(ActivityFilter(types=("click",))) == 3


async def test_a_hit_withdrawn_in_the_settle_window_moves_no_property_and_hides_nothing(
    store: RecordsStore,
) -> None:
    harness = Harness(store, PolicyConfig(settle_seconds=0.05))
    key = "e4" * 12
    send(store, key, ("alicja@client.example", "r1"))
    scanner = event(key, "r1", type="click", url="https://shop.example/a", link=0)
    await harness.notifier.handle(scanner)
    await harness.notifier.handle(Revision(scanner.id, "bot", "3 links within 1 s"))
    person = event(key, "r1", type="click", url="https://shop.example/a", link=0,
                   at=NOW + timedelta(seconds=20))  # inside the 60 s repeat window
    await harness.notifier.handle(person)
    await harness.wait_for(1)
    assert [n.event for n in harness.shown] == [person.id]
    contact = store.contact("alicja@client.example")
    assert contact is not None
    assert contact.last_click is not None and contact.last_click.startswith("2030-01-01T12:05:20")


async def test_a_click_revised_to_bot_never_becomes_the_contacts_last_click(
    store: RecordsStore,
) -> None:
    harness = Harness(store, PolicyConfig(settle_seconds=0.05))
    key = "e5" * 12
    send(store, key, ("alicja@client.example", "r1"))
    scanner = event(key, "r1", type="click", url="https://shop.example/a", link=0)
    await harness.notifier.handle(scanner)
    await harness.notifier.handle(Revision(scanner.id, "bot", "followed the honeypot"))
    await harness.notifier.handle(event(key, "r1", at=NOW + timedelta(minutes=1)))
    await harness.wait_for(1)  # the open's settle window has passed, and the click's
    contact = store.contact("alicja@client.example")
    assert contact is not None and contact.last_open is not None
    assert contact.last_click is None


# ---------------------------------------------------------------- summaries name people

DEMO = "Demo of the new pricing for Q4, with the numbers you asked for"
DEMO_SHORT = "“Demo of the new pricing for Q4, with…”"  # cut at a word, in 40 characters
PEOPLE = (("ewa@client.example", "Ewa Lis"), ("piotr@client.example", "Piotr Nowak"),
          ("jan@client.example", "Jan Kot"), ("ola@client.example", "Ola Wrona"),
          ("iza@client.example", "Iza Bąk"))


def send_demo(store: RecordsStore, key: str, people: tuple[tuple[str, str], ...]) -> int:
    for address, name in people:
        store.upsert_contact(address, name=name)
    return store.record_sent(
        SentEmail(message_id=f"<{key}@rep.example>", message_key=key, subject=DEMO,
                  sender="rep@rep.example", sent_at=iso(SENT),
                  recipients=tuple(Recipient(a, "to", "", f"k{n}")
                                   for n, (a, _name) in enumerate(people)),
                  track=True, log=False, tracked=True)
    )


async def test_a_summary_of_one_email_names_the_people_and_opens_that_email(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, flood_window_seconds=0.2)
    key = "5a" * 12
    email_id = send_demo(store, key, PEOPLE)
    old = NOW - timedelta(hours=3)
    for n in range(len(PEOPLE)):
        await harness.notifier.handle(event(key, f"k{n}", at=old))
    await harness.wait_for(1)
    [summary] = harness.shown
    assert summary.title == f"Ewa Lis, Piotr Nowak and 3 others opened {DEMO_SHORT}"
    assert summary.body == "5 opens while you were away. Click to see the email."
    # One email: a click on the summary opens that email's view (tray/wiring.py).
    assert (summary.email_id, summary.subject, summary.recipient) == (email_id, DEMO, None)


async def test_a_summary_names_up_to_three_and_counts_someone_once(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, flood_window_seconds=0.2)
    key = "5b" * 12
    send_demo(store, key, PEOPLE[:2])
    shared = "5c" * 12
    store.record_sent(SentEmail(
        message_id="<shared@rep.example>", message_key=shared, subject="Shared", sender="r@x",
        sent_at=iso(SENT), recipients=(Recipient("a@x.example"), Recipient("b@x.example")),
        track=True, log=False, tracked=True,
    ))
    old = NOW - timedelta(hours=3)
    await harness.notifier.handle(event(key, "k0", at=old))
    await harness.notifier.handle(event(key, "k1", type="click", at=old, url="https://x.y/"))
    await harness.notifier.handle(event(shared, None, at=old))  # a shared pixel: Someone
    await harness.wait_for(1)
    [summary] = harness.shown
    assert summary.title == (
        "Ewa Lis, Piotr Nowak and someone else opened and clicked links in 2 emails"
    )
    assert summary.body == (
        "2 opens and 1 click while you were away. Open the activity feed for details."
    )
    assert summary.email_id is None and summary.recipient is None


async def test_a_summary_of_one_person_opens_their_record(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, flood_window_seconds=0.2)
    old = NOW - timedelta(hours=3)
    for key in ("5d" * 12, "5e" * 12):
        send_demo(store, key, PEOPLE[:1])
        await harness.notifier.handle(event(key, "k0", at=old))
    await harness.wait_for(1)
    [summary] = harness.shown
    assert summary.title == "Ewa Lis opened 2 emails"
    assert summary.body.endswith("Click to see their record.")
    assert summary.recipient == "ewa@client.example" and summary.email_id is None


async def test_an_agent_made_summary_takes_the_contacts_name(
    store: RecordsStore, harness: Harness
) -> None:
    harness.config = replace(harness.config, flood_window_seconds=0.2, flood_count=0)
    email_id = send_demo(store, "5f" * 12, PEOPLE[:2])
    for address, _name in PEOPLE[:2]:
        harness.notifier.deliver(
            Notification(event=None, type="reply", message_id="<5f@rep.example>", subject=DEMO,
                         recipient=address, anonymous=False, title="t", body="",
                         at=iso(NOW), email_id=email_id)
        )
    await harness.wait_for(1)
    [summary] = harness.shown
    assert summary.title == f"Ewa Lis and Piotr Nowak replied to {DEMO_SHORT}"
    assert summary.email_id == email_id


def test_summary_names_never_say_one_other() -> None:
    from mailbeacon.agent.notifications.wording import people

    assert people([], True) == "Someone"
    assert people(["Ewa Lis"], False) == "Ewa Lis"
    assert people(["Ewa Lis", "Jan Kot", "Ola Wrona"], False) == "Ewa Lis, Jan Kot and Ola Wrona"
    assert people(["Ewa Lis", "Jan Kot", "Ola Wrona"], True) == "Ewa Lis, Jan Kot and 2 others"
