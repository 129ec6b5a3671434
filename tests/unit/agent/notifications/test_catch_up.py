"""Catch-up (the stream's backlog, up to ``caught_up``) is one summary, however recent."""

from __future__ import annotations

from mailbeacon.agent.notifications.model import NotificationType
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.events import CaughtUp, Revision, StreamHello
from tests.unit.agent.notifications.test_notify import Harness, event, send


async def test_recent_backlog_is_one_summary_and_a_withdrawn_one_is_left_out(
    store: RecordsStore,
) -> None:
    harness = Harness(store, PolicyConfig(settle_seconds=0))
    keys = [f"{n:02d}" * 12 for n in range(10, 19)]
    for n, key in enumerate(keys):
        send(store, key, (f"p{n}@x.example", f"r{n}"))
    await harness.notifier.handle(StreamHello("d", 1))
    events = [event(key, f"r{n}") for n, key in enumerate(keys)]
    for one in events:  # all "now": no age rule would summarise them
        await harness.notifier.handle(one)
    await harness.notifier.handle(Revision(events[0].id, "bot", "burst"))
    await harness.notifier.handle(CaughtUp(events[-1].id))
    assert [n.type for n in harness.shown] == [NotificationType.SUMMARY]
    # The summary names people (issue 20) and says how many came while away.
    assert harness.shown[0].title == "p1@x.example, p2@x.example and 6 others opened 8 emails"
    assert harness.shown[0].body.startswith("8 opens while you were away.")
    live = "19" * 12
    send(store, live, ("live@x.example", "rl"))
    await harness.notifier.handle(event(live, "rl"))
    assert [n.type for n in harness.shown] == [NotificationType.SUMMARY, "open"]


async def test_an_empty_catch_up_shows_nothing(store: RecordsStore) -> None:
    harness = Harness(store, PolicyConfig(settle_seconds=0))
    await harness.notifier.handle(StreamHello("d", 1))
    await harness.notifier.handle(CaughtUp(0))
    assert harness.shown == []
