"""The outbox delivering to a real aiosmtpd sink through the real Upstream (aiosmtplib)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import (
    DeliveryFailure,
    OutboxItem,
    QueuedItem,
    RetryPolicy,
)
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from tests.helpers.smtp import SmtpSink

FAST = RetryPolicy(base=0.01, cap=0.05, jitter=0.1)


@dataclass
class Seen:
    delivered: list[QueuedItem] = field(default_factory=list)
    failed: list[tuple[QueuedItem, DeliveryFailure]] = field(default_factory=list)

    async def on_delivered(self, item: QueuedItem) -> None:
        self.delivered.append(item)

    async def on_failed(self, item: QueuedItem, failure: DeliveryFailure) -> None:
        self.failed.append((item, failure))


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def outbox_to(port: int, spool: Path, seen: Seen) -> Outbox:
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{port}"), lambda: None, timeout=5)
    return Outbox(
        spool, upstream, on_delivered=seen.on_delivered, on_failed=seen.on_failed, policy=FAST
    )


@pytest.fixture
async def outbox(tmp_path: Path, sink: SmtpSink) -> AsyncIterator[tuple[Outbox, Seen]]:
    seen = Seen()
    running = outbox_to(sink.port, tmp_path / "outbox", seen)
    await running.start()
    yield running, seen
    await running.stop()


def message(n: int, size: int = 0) -> bytes:
    filler = (b"x" * 76 + b"\r\n") * (size // 78)
    return f"Message-ID: <{n}@x.example>\r\nSubject: {n}\r\n\r\nbody\r\n".encode() + filler


def item(n: int, *rcpts: str, size: int = 0) -> OutboxItem:
    return OutboxItem("rep@x.example", rcpts or ("b@y.example",), message(n, size))


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("stage", ["MAIL", "DATA"])
@pytest.mark.parametrize("reply", ["421 4.3.2 Service shutting down", "451 4.3.0 Try again later"])
async def test_temporary_refusals_are_retried_and_delivered_once(
    outbox: tuple[Outbox, Seen], sink: SmtpSink, reply: str, stage: str
) -> None:
    box, seen = outbox
    sink.fail(reply, times=2, stage=stage)
    await box.enqueue(item(1))
    await box.wait_drained(10)
    assert [m.message_id for m in sink.received] == ["<1@x.example>"]
    assert len(seen.delivered) == 1 and not seen.failed


@pytest.mark.expect_log("refused for good")
async def test_permanent_refusal_keeps_the_message_and_calls_on_failed(
    outbox: tuple[Outbox, Seen], sink: SmtpSink
) -> None:
    box, seen = outbox
    sink.fail("550 5.7.1 Message rejected by policy", times=1)
    item_id = await box.enqueue(item(1, "a@y.example", "b@y.example"))
    await box.wait_drained(10)
    [(failed, failure)] = seen.failed
    assert failed.id == item_id
    assert failure.code == 550 and "rejected by policy" in failure.reply
    assert failure.recipients == ("a@y.example", "b@y.example")
    [kept] = box.failed()
    assert kept.read_data() == message(1)
    assert sink.received == [] and sink.handler.transactions == 1


async def test_refused_recipient_does_not_stop_the_others(
    outbox: tuple[Outbox, Seen], sink: SmtpSink
) -> None:
    box, seen = outbox
    sink.refuse("nobody@y.example", "550 5.1.1 No such user")
    await box.enqueue(item(1, "a@y.example", "nobody@y.example", "c@y.example"))
    await box.wait_drained(10)
    [got] = sink.received
    assert got.rcpt_tos == ("a@y.example", "c@y.example")
    [(_, failure)] = seen.failed
    assert failure.recipients == ("nobody@y.example",) and failure.code == 550
    [delivered] = seen.delivered
    assert delivered.state.delivered_to == ("a@y.example", "c@y.example")


async def test_deferred_recipient_gets_its_copy_later_and_only_once(
    outbox: tuple[Outbox, Seen], sink: SmtpSink
) -> None:
    box, seen = outbox
    sink.refuse("busy@y.example", "450 4.2.1 Mailbox busy")
    await box.enqueue(item(1, "a@y.example", "busy@y.example"))
    await sink.until(1)
    sink.handler.refused.clear()
    await box.wait_drained(10)
    assert [m.rcpt_tos for m in sink.received] == [("a@y.example",), ("busy@y.example",)]
    assert not seen.failed


async def test_queue_survives_restart_and_resumes_oldest_first(
    tmp_path: Path, sink: SmtpSink
) -> None:
    seen = Seen()
    spool = tmp_path / "outbox"
    down = outbox_to(closed_port(), spool, seen)
    await down.start()
    for n in range(5):
        await down.enqueue(item(n))
    await down.wait_idle(10)  # tried, refused, now waiting
    await down.stop()
    assert len(down.pending()) == 5 and down.pending()[0].state.attempts >= 1

    up = outbox_to(sink.port, spool, seen)
    await up.start()
    await up.wait_drained(10)
    await up.stop()
    assert [m.message_id for m in sink.received] == [f"<{n}@x.example>" for n in range(5)]


async def test_large_message_is_delivered_byte_for_byte(
    outbox: tuple[Outbox, Seen], sink: SmtpSink
) -> None:
    box, _ = outbox
    big = item(1, size=5 * 1024 * 1024)
    await box.enqueue(big)
    [got] = await sink.until(1)
    assert got.data == big.data
    assert f"SIZE={len(big.data)}" in got.mail_options  # declared up front


async def test_many_messages_reuse_one_upstream_connection(
    outbox: tuple[Outbox, Seen], sink: SmtpSink
) -> None:
    box, _ = outbox
    await box.enqueue_many([item(n) for n in range(20)])
    await box.wait_drained(10)
    assert len(sink.received) == 20
    assert sink.handler.ehlos == 1
