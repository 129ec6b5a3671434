"""Test-only process: relay -> outbox -> upstream, nothing else (no rewrite, no records).

    python -m tests.helpers.relay_runner --spool DIR --upstream smtp://127.0.0.1:PORT --password P

Prints ``READY <relay port>`` once listening and ``DELIVERED <item id>`` after
each delivery (including those a killed predecessor did not report), one line
each, flushed, so a test can follow it without sleeping. SIGTERM stops it cleanly;
the durability tests use SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem, QueuedItem, RetryPolicy
from mailbeacon.agent.sending.relay import IncomingMessage, Relay
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    # A predecessor's queue starts going out as soon as the outbox starts, before the
    # relay listens: those lines wait, so READY is always the first line.
    early: list[str] | None = []

    async def delivered(item: QueuedItem) -> None:
        line = f"DELIVERED {item.id}"
        if early is None:
            say(line)
        else:
            early.append(line)

    upstream = Upstream(parse_upstream(args.upstream), lambda: None, timeout=5)
    policy = RetryPolicy(base=args.retry, cap=args.retry * 4, jitter=0.1)
    outbox = Outbox(Path(args.spool), upstream, on_delivered=delivered, policy=policy)

    async def accept(message: IncomingMessage) -> str:
        return await outbox.enqueue(OutboxItem(message.mail_from, message.recipients, message.data))

    relay = Relay(accept, args.password, port=args.port)
    await outbox.start()
    await relay.start()
    say(f"READY {relay.port}")
    for line in early:
        say(line)
    early = None
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    await stop.wait()
    await relay.stop()
    await outbox.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--spool", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--retry", type=float, default=0.05)
    asyncio.run(main(parser.parse_args()))
