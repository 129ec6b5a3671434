"""Outbox logic with a scripted transport and virtual time (no sockets, no real waits).

The spool is a real folder; only the upstream is a fake, and time moves only
when the outbox sleeps (the injected sleep advances the injected clock).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import (
    DeliveryError,
    DeliveryFailure,
    ItemState,
    MessageSource,
    OutboxItem,
    QueuedItem,
    RetryPolicy,
    SendResult,
)
from tests.helpers.fakes import FakeClock

Outcome = SendResult | DeliveryError


@dataclass
class Call:
    at: float
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass
class ScriptedTransport:
    """Answers each send with the next scripted outcome, then with success."""

    clock: FakeClock
    script: list[Outcome] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    closed: bool = False
    observe: Callable[[], None] | None = None

    async def send(
        self, mail_from: str, recipients: Sequence[str], message: MessageSource
    ) -> SendResult:
        data = await message.read()
        if self.observe is not None:
            self.observe()
        self.calls.append(Call(self.clock(), mail_from, tuple(recipients), data))
        outcome = self.script.pop(0) if self.script else SendResult({}, "250 OK")
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    async def close(self) -> None:
        self.closed = True


@dataclass
class Seen:
    delivered: list[QueuedItem] = field(default_factory=list)
    failed: list[tuple[QueuedItem, DeliveryFailure]] = field(default_factory=list)

    async def on_delivered(self, item: QueuedItem) -> None:
        assert item.path.exists(), "the message is still readable during the callback"
        self.delivered.append(item)

    async def on_failed(self, item: QueuedItem, failure: DeliveryFailure) -> None:
        self.failed.append((item, failure))


@dataclass
class Rig:
    spool: Path
    clock: FakeClock
    transport: ScriptedTransport
    seen: Seen
    outbox: Outbox

    def restart(self, sleep: Callable[[float], Awaitable[None]] | None = None) -> Outbox:
        self.outbox = make_outbox(self.spool, self.clock, self.transport, self.seen, sleep)
        return self.outbox


POLICY = RetryPolicy(base=30.0, factor=2.0, cap=3600.0, jitter=0.2, give_up_after=86400.0)


async def frozen_time(seconds: float) -> None:
    """A sleep that never ends: the outbox waits until woken."""
    await asyncio.Event().wait()


def make_outbox(
    spool: Path,
    clock: FakeClock,
    transport: ScriptedTransport,
    seen: Seen,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Outbox:
    async def virtual_sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return Outbox(
        spool,
        transport,
        on_delivered=seen.on_delivered,
        on_failed=seen.on_failed,
        policy=POLICY,
        clock=clock,
        sleep=sleep or virtual_sleep,
        rng=random.Random(7),
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FakeClock()
    transport = ScriptedTransport(clock)
    seen = Seen()
    spool = tmp_path / "outbox"
    made = Rig(spool, clock, transport, seen, make_outbox(spool, clock, transport, seen))
    yield made
    await made.outbox.stop()


def item(n: int, *rcpts: str) -> OutboxItem:
    data = f"Message-ID: <{n}@x.example>\r\n\r\nbody {n}\r\n".encode()
    return OutboxItem("rep@x.example", rcpts or ("b@y.example",), data, {"n": n})


def temporary(reply: str = "451 4.3.0 later", *, connection: bool = False) -> DeliveryError:
    return DeliveryError(reply, code=int(reply[:3]), connection=connection)


def test_backoff_grows_exponentially_with_bounded_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=10.0, factor=2.0, cap=100.0, jitter=0.2)
    rng = random.Random(1)
    for attempts, nominal in [(1, 10), (2, 20), (3, 40), (4, 80)]:
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert nominal * 0.8 <= min(delays) and max(delays) <= nominal * 1.2
        assert len(set(delays)) > 100  # jittered: a retry storm spreads out
    assert all(policy.delay(n, rng) <= 100.0 for n in range(5, 60))


def test_item_state_round_trips_through_json() -> None:
    state = ItemState(
        attempts=3,
        next_attempt=12.5,
        last_error="451 later",
        delivered_to=("a@y.example",),
        failures=(DeliveryFailure(("b@y.example",), 550, "no such user", 9.0),),
        delivered_notified=True,
    )
    assert ItemState.from_json(json.loads(json.dumps(state.to_json()))) == state


async def test_enqueue_returns_only_once_the_item_is_in_the_queue_folder(rig: Rig) -> None:
    item_id = await rig.outbox.enqueue(item(1))
    path = rig.spool / "queue" / f"{item_id}.eml"
    assert path.exists() and not list((rig.spool / "tmp").iterdir())
    assert path.read_bytes().split(b"\n", 1)[1] == item(1).data
    assert path.stat().st_mode & 0o077 == 0  # message content is private to the rep


async def test_items_go_out_oldest_first_exactly_once(rig: Rig) -> None:
    for n in range(5):
        await rig.outbox.enqueue(item(n))
    await rig.outbox.start()
    await rig.outbox.wait_drained(5)
    assert [c.data for c in rig.transport.calls] == [item(n).data for n in range(5)]
    assert [d.meta["n"] for d in rig.seen.delivered] == list(range(5))
    assert not list((rig.spool / "queue").iterdir()) and not list((rig.spool / "sent").iterdir())


async def test_temporary_failures_back_off_then_deliver_once(rig: Rig) -> None:
    rig.transport.script = [temporary(), temporary(), temporary()]
    await rig.outbox.start()
    await rig.outbox.enqueue(item(1))
    await rig.outbox.wait_drained(5)
    times = [c.at for c in rig.transport.calls]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 4
    for gap, nominal in zip(gaps, [30, 60, 120], strict=True):
        assert nominal * 0.8 <= gap <= nominal * 1.2
    assert len(rig.seen.delivered) == 1 and not rig.seen.failed


async def test_attempts_and_last_error_are_persisted_and_survive_restart(rig: Rig) -> None:
    rig.transport.script = [temporary("452 4.2.2 mailbox full")]
    outbox = rig.restart(sleep=frozen_time)
    await outbox.start()
    item_id = await outbox.enqueue(item(1))
    await outbox.wait_idle(5)  # tried once, now waiting for its next attempt
    await outbox.stop()
    assert len(rig.transport.calls) == 1
    saved = json.loads((rig.spool / "queue" / f"{item_id}.json").read_text())
    assert saved["attempts"] == 1 and saved["last_error"] == "452 4.2.2 mailbox full"
    assert saved["next_attempt"] > rig.transport.calls[0].at
    restarted = rig.restart()
    await restarted.start()
    [pending] = restarted.pending()
    assert pending.state.attempts == 1
    await restarted.wait_drained(5)
    assert len(rig.seen.delivered) == 1


@pytest.mark.expect_log("refused for good")
async def test_permanent_failure_keeps_the_message_and_reports_it(rig: Rig) -> None:
    rig.transport.script = [DeliveryError("554 5.7.1 rejected as spam", code=554, permanent=True)]
    await rig.outbox.start()
    item_id = await rig.outbox.enqueue(item(1, "a@y.example", "b@y.example"))
    await rig.outbox.wait_drained(5)
    [(failed_item, failure)] = rig.seen.failed
    assert failure.recipients == ("a@y.example", "b@y.example")
    assert failure.code == 554 and "spam" in failure.reply
    [kept] = rig.outbox.failed()
    assert kept.id == item_id == failed_item.id
    assert kept.read_data() == item(1).data
    assert not rig.seen.delivered and len(rig.transport.calls) == 1


async def test_partial_refusal_delivers_to_the_others_and_records_the_refused(rig: Rig) -> None:
    rig.transport.script = [
        SendResult({"bad@y.example": (550, "5.1.1 no such user"),
                    "busy@y.example": (450, "4.2.1 try later")}, "250 OK"),
    ]  # fmt: skip
    await rig.outbox.start()
    await rig.outbox.enqueue(item(1, "a@y.example", "bad@y.example", "busy@y.example"))
    await rig.outbox.wait_drained(5)
    assert [c.recipients for c in rig.transport.calls] == [
        ("a@y.example", "bad@y.example", "busy@y.example"),
        ("busy@y.example",),  # only the deferred one is retried
    ]
    [(_, failure)] = rig.seen.failed
    assert failure.recipients == ("bad@y.example",) and failure.code == 550
    [delivered] = rig.seen.delivered
    assert set(delivered.state.delivered_to) == {"a@y.example", "busy@y.example"}


async def test_unreachable_upstream_pauses_the_queue_and_keeps_its_order(rig: Rig) -> None:
    down = "Cannot reach upstream: connection refused"
    rig.transport.script = [DeliveryError(down, connection=True) for _ in range(4)]
    for n in range(3):
        await rig.outbox.enqueue(item(n))
    await rig.outbox.start()
    await rig.outbox.wait_drained(5)
    order = [c.data for c in rig.transport.calls]
    assert order[:4] == [item(0).data] * 4  # while down, only the head is tried
    assert order[4:] == [item(n).data for n in range(3)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(rig.transport.calls[:4])]
    assert gaps[0] < gaps[1] < gaps[2]


@pytest.mark.expect_log("refused for good")
async def test_gives_up_after_the_policy_limit_and_reports(rig: Rig) -> None:
    rig.transport.script = [temporary() for _ in range(1000)]
    await rig.outbox.start()
    await rig.outbox.enqueue(item(1))
    await rig.outbox.wait_drained(5)
    [(_, failure)] = rig.seen.failed
    assert "gave up" in failure.reply and "451" in failure.reply
    assert rig.clock() - rig.transport.calls[0].at >= POLICY.give_up_after
    assert len(rig.transport.calls) < 40  # capped backoff, not a busy loop


@pytest.mark.expect_log("cannot read queued item", "moved unreadable item")
async def test_recovery_after_a_crash_in_every_state(rig: Rig) -> None:
    queue, sent, tmp = rig.spool / "queue", rig.spool / "sent", rig.spool / "tmp"
    delivered_id = await rig.outbox.enqueue(item(1))
    waiting_id = await rig.outbox.enqueue(item(2))
    # As a kill -9 would leave it: one item moved to sent/ before on_delivered ran,
    # a half-written enqueue in tmp/, a state file whose item is gone, a damaged item.
    (queue / f"{delivered_id}.eml").rename(sent / f"{delivered_id}.eml")
    (tmp / "0000-half.eml").write_bytes(b"MBQ1 {")
    (queue / "0000-gone.json").write_text("{}")
    (queue / "0001-damaged.eml").write_bytes(b"not a queue file")
    await rig.restart().start()
    await rig.outbox.wait_drained(5)
    assert [d.id for d in rig.seen.delivered] == [delivered_id, waiting_id]
    assert [c.data for c in rig.transport.calls] == [item(2).data]  # sent ones aren't resent
    assert not list(tmp.iterdir()) and not list(queue.iterdir()) and not list(sent.iterdir())
    assert (rig.spool / "damaged" / "0001-damaged.eml").exists()


@pytest.mark.expect_log("refused for good")
async def test_failure_notice_is_repeated_after_a_crash_before_it_was_given(rig: Rig) -> None:
    rig.transport.script = [DeliveryError("550 no", code=550, permanent=True)]
    await rig.outbox.start()
    item_id = await rig.outbox.enqueue(item(1))
    await rig.outbox.wait_drained(5)
    await rig.outbox.stop()
    state_file = rig.spool / "failed" / f"{item_id}.json"
    state = json.loads(state_file.read_text())
    assert state["failed_notified"] is True
    state["failed_notified"] = False  # as if killed before on_failed returned
    state_file.write_text(json.dumps(state))
    await rig.restart().start()
    await rig.outbox.wait_idle(5)
    assert [f[0].id for f in rig.seen.failed] == [item_id, item_id]


@pytest.mark.expect_log("refused for good")
async def test_a_failed_item_can_be_retried(rig: Rig) -> None:
    rig.transport.script = [DeliveryError("550 no", code=550, permanent=True)]
    await rig.outbox.start()
    item_id = await rig.outbox.enqueue(item(1))
    await rig.outbox.wait_drained(5)
    await rig.outbox.retry_failed(item_id)
    await rig.outbox.wait_drained(5)
    assert [d.id for d in rig.seen.delivered] == [item_id]
    assert rig.outbox.failed() == []


async def test_per_recipient_copies_are_queued_together(rig: Rig) -> None:
    ids = await rig.outbox.enqueue_many([item(1, "a@y.example"), item(2, "b@y.example")])
    assert len(set(ids)) == 2 and ids == sorted(ids)
    await rig.outbox.start()
    await rig.outbox.wait_drained(5)
    assert [c.recipients for c in rig.transport.calls] == [("a@y.example",), ("b@y.example",)]


async def test_meta_that_is_not_json_is_refused_before_anything_is_written(rig: Rig) -> None:
    bad = OutboxItem("rep@x.example", ("b@y.example",), b"x", {"when": object()})
    with pytest.raises(TypeError):
        await rig.outbox.enqueue_many([item(1), bad])
    assert not (rig.spool / "queue").exists() or not list((rig.spool / "queue").iterdir())


@pytest.mark.expect_log("could not process item")
async def test_a_transport_bug_does_not_stop_the_worker(rig: Rig) -> None:
    class Broken(ScriptedTransport):
        async def send(
            self, mail_from: str, recipients: Sequence[str], message: MessageSource
        ) -> SendResult:
            if not self.calls:
                self.calls.append(Call(self.clock(), mail_from, (), b""))
                raise RuntimeError("bug")
            return await super().send(mail_from, recipients, message)

    rig.transport = Broken(rig.clock)
    outbox = rig.restart()
    await outbox.start()
    await outbox.enqueue(item(1))
    await outbox.wait_drained(5)
    assert len(rig.transport.calls) == 2 and len(rig.seen.delivered) == 1


async def test_unreachable_upstream_never_bounces_mail_and_says_why(rig: Rig) -> None:
    down = "Cannot reach smtp.example.com:465: connection refused"
    rig.transport.script = [DeliveryError(down, connection=True) for _ in range(60)]
    reasons: list[str | None] = []
    rig.transport.observe = lambda: reasons.append(rig.outbox.blocked_reason)
    await rig.outbox.enqueue(item(1))
    await rig.outbox.start()
    await rig.outbox.wait_drained(5)
    assert rig.clock() - rig.transport.calls[0].at > POLICY.give_up_after * 2
    assert not rig.seen.failed and len(rig.seen.delivered) == 1
    assert reasons[0] is None and set(reasons[1:]) == {down}  # what the tray shows
    assert rig.outbox.blocked_reason is None


async def test_mail_queued_long_ago_is_not_bounced_on_its_first_refusal(rig: Rig) -> None:
    await rig.outbox.enqueue(item(1))  # e.g. written on a laptop that then stayed offline
    rig.clock.advance(POLICY.give_up_after * 3)
    rig.transport.script = [temporary()]
    await rig.outbox.start()
    await rig.outbox.wait_drained(5)
    assert not rig.seen.failed and len(rig.transport.calls) == 2
