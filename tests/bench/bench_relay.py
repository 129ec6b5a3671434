"""Relay figures (docs/performance.md: 100+ messages/s to a local sink; a 25 MB attachment passes
with memory growth under twice its size).

Run: ``.venv/bin/python -m tests.bench.bench_relay``. Each row: metric, value, target/note.

Throughput: relay and outbox run in this process on one asyncio loop, exactly as
in the agent; the SMTP client (4 connections) and the upstream sink are separate
processes, so their CPU and memory do not count against the relay (they still
share the machine's cores). Each message is a ~10 KB HTML email to one
recipient. "pass-through" queues the message as received; "rewrite" runs
``core.rewrite.rewrite_message`` (pixel + link rewriting with real token minting)
in a worker thread before queueing, as the agent's accept does.

Memory: a fresh child process receives one message with a 25 MiB attachment
(35.9 MB on the wire) through the relay into the outbox, then delivers it to the
sink. Growth is measured with tracemalloc (peak Python allocations above the
baseline) and as the rise of the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem
from mailbeacon.agent.sending.relay import IncomingMessage, Relay
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "bench-Pw1"
MESSAGES = 600
CONNECTIONS = 4
ATTACHMENT = 25 * 1024 * 1024
MB = 1_000_000

SINK = """
import sys
from tests.helpers.smtp import SmtpSink
want = int(sys.argv[1])
with SmtpSink(data_size_limit=64 * 1024 * 1024) as sink:
    print("READY", sink.port, flush=True)
    sink.wait_for(want, timeout=600)
    print("DONE", flush=True)
    sys.stdin.read()
"""

CLIENT = """
import smtplib, sys, threading
port, count, connections, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
template = open(path, "rb").read()
def work(offset):
    with smtplib.SMTP("127.0.0.1", port, timeout=600) as client:
        client.login("mailbeacon", sys.argv[5])
        for n in range(offset, count, connections):
            data = template.replace(b"@MSGID@", b"%d" % n)
            assert client.sendmail("rep@x.example", ["ann@y.example"], data) == {}
threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
for t in threads: t.start()
for t in threads: t.join()
print("SENT", flush=True)
"""


def _html_message(size: int = 10_000) -> bytes:
    paragraph = (
        '<p>Hello Ann, here is <a href="https://example.com/offer?id=7">our offer</a> '
        'and <a href="https://example.com/pricing">the pricing</a>.</p>\r\n'
    )
    html = paragraph * (size // len(paragraph))
    return (
        "From: Rep <rep@x.example>\r\nTo: Ann <ann@y.example>\r\nSubject: Offer\r\n"
        "Message-ID: <bench-@MSGID@@x.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Ann\r\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body>\r\n{html}</body></html>\r\n--b1--\r\n"
    ).encode()


def _big_message(path: Path) -> int:
    encoded = base64.encodebytes(os.urandom(ATTACHMENT)).replace(b"\n", b"\r\n")
    head = (
        b"From: rep@x.example\r\nTo: ann@y.example\r\nSubject: big\r\n"
        b"Message-ID: <big@x.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>Hi <a href="https://example.com/">there</a></p>\r\n'
        b'--B\r\nContent-Type: application/pdf; name="f.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    data = head + encoded + b"\r\n--B--\r\n"
    path.write_bytes(data)
    return len(data)


async def _spawn(code: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _line(process: asyncio.subprocess.Process, within: float = 600) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(within):
        return (await process.stdout.readline()).decode().strip()


async def _finish(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        assert process.stdin is not None
        process.stdin.close()
        async with asyncio.timeout(60):
            await process.wait()


Accept = Callable[[IncomingMessage], Awaitable[str]]


def _rewrite_accept(outbox: Outbox) -> Accept | None:
    """The agent's accept without the records store: rewrite in a thread, then queue."""
    try:
        from mailbeacon.core.enrollment import Enrollment
        from mailbeacon.core.rewrite import Plan, rewrite_message
        from mailbeacon.core.urls import TrackingUrls
    except ImportError:
        return None
    minter = TrackingUrls(Enrollment("https://t.example.com", 42, "token", b"k" * 32))
    plan = Plan(track=True, clicks=True, per_recipient=False)

    async def accept(message: IncomingMessage) -> str:
        result = await asyncio.to_thread(
            rewrite_message, message.data, message.recipients, plan, minter
        )
        items = [OutboxItem(message.mail_from, c.recipients, c.pieces) for c in result.copies]
        return (await outbox.enqueue_many(items))[0]

    return accept


async def _throughput(rewrite: bool, folder: Path) -> tuple[float, float] | None:
    template = folder / "message.eml"
    template.write_bytes(_html_message())
    sink = await _spawn(SINK, str(MESSAGES))
    sink_port = int((await _line(sink)).split()[1])
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink_port}"), lambda: None)
    outbox = Outbox(folder / f"spool-{rewrite}", upstream)

    async def passthrough(message: IncomingMessage) -> str:
        return await outbox.enqueue(OutboxItem(message.mail_from, message.recipients, message.data))

    accept = _rewrite_accept(outbox) if rewrite else passthrough
    if accept is None:
        await _finish(sink)
        return None
    relay = Relay(accept, PASSWORD)
    await outbox.start()
    await relay.start()
    try:
        start = time.perf_counter()
        client = await _spawn(
            CLIENT, str(relay.port), str(MESSAGES), str(CONNECTIONS), str(template), PASSWORD
        )
        assert await _line(client) == "SENT"
        accepted = time.perf_counter() - start
        assert await _line(sink) == "DONE"
        delivered = time.perf_counter() - start
        await _finish(client)
    finally:
        await relay.stop()
        await outbox.stop()
        await _finish(sink)
    return MESSAGES / accepted, MESSAGES / delivered


def _peak_rss() -> int:
    """This process's peak RSS in bytes.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent that
    forked us, which would hide our own growth.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _memory_child(path: Path, trace: bool, rewrite: bool) -> dict[str, float]:
    """Runs in a fresh process: one big message through relay, outbox and upstream."""
    folder = Path(tempfile.mkdtemp(prefix="mb-bench-"))
    sink = await _spawn(SINK, "1")
    sink_port = int((await _line(sink)).split()[1])
    upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink_port}"), lambda: None)
    outbox = Outbox(folder / "spool", upstream)

    async def passthrough(message: IncomingMessage) -> str:
        return await outbox.enqueue(OutboxItem(message.mail_from, message.recipients, message.data))

    accept = _rewrite_accept(outbox) if rewrite else passthrough
    assert accept is not None
    relay = Relay(accept, PASSWORD)
    await relay.start()
    gc.collect()
    if trace:
        tracemalloc.start()
    base_traced = tracemalloc.get_traced_memory()[0] if trace else 0
    base_rss = _peak_rss()
    start = time.perf_counter()
    client = await _spawn(CLIENT, str(relay.port), "1", "1", str(path), PASSWORD)
    assert await _line(client) == "SENT"
    received = time.perf_counter() - start
    figures = {"receive_s": received, "receive_rss": _peak_rss() - base_rss}
    if trace:
        figures["receive_traced"] = tracemalloc.get_traced_memory()[1] - base_traced
        tracemalloc.reset_peak()
    start = time.perf_counter()
    await outbox.start()
    assert await _line(sink) == "DONE"
    await outbox.wait_drained(600)
    figures["deliver_s"] = time.perf_counter() - start
    figures["total_rss"] = _peak_rss() - base_rss
    if trace:
        figures["deliver_traced"] = tracemalloc.get_traced_memory()[1] - base_traced
    await relay.stop()
    await outbox.stop()
    await _finish(client)
    await _finish(sink)
    return figures


def _memory(path: Path, trace: bool, rewrite: bool = False) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_relay", "--memory-child", str(path),
         "trace" if trace else "rss", "rewrite" if rewrite else "pass-through"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run() -> list[tuple[str, float, str]]:
    """All relay figures."""
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="mb-bench-") as tmp:
        folder = Path(tmp)
        for rewrite in (False, True):
            label = "rewrite" if rewrite else "pass-through"
            figures = asyncio.run(_throughput(rewrite, folder))
            if figures is None:
                rows.append((f"relay throughput, {label}", 0.0, "core.rewrite not available"))
                continue
            rows.append((f"relay: messages accepted (250) per s, {label}", figures[0], "-"))
            rows.append((f"relay->outbox->sink: delivered per s, {label}", figures[1],
                         "target >= 100"))  # fmt: skip
        big = folder / "big.eml"
        size = _big_message(big)
        timed = _memory(big, trace=False)
        traced = _memory(big, trace=True)
        rewritten = _memory(big, trace=False, rewrite=True) if _rewrite_available() else None
    rows += [
        ("25 MiB attachment: message size on the wire (MB)", size / MB, "base64 + MIME"),
        ("25 MiB attachment: relay receive + queue (s)", timed["receive_s"], "-"),
        ("25 MiB attachment: delivery to sink (s)", timed["deliver_s"], "-"),
        ("25 MiB attachment: receive+queue traced peak growth (MB)",
         traced["receive_traced"] / MB,
         f"{traced['receive_traced'] / ATTACHMENT:.2f}x attachment; target < 2x"),
        ("25 MiB attachment: delivery traced peak growth (MB)", traced["deliver_traced"] / MB,
         f"{traced['deliver_traced'] / ATTACHMENT:.2f}x attachment"),
        ("25 MiB attachment: peak RSS growth, receive (MB)", timed["receive_rss"] / MB,
         f"{timed['receive_rss'] / ATTACHMENT:.2f}x attachment"),
        ("25 MiB attachment: peak RSS growth, whole pass (MB)", timed["total_rss"] / MB,
         f"{timed['total_rss'] / ATTACHMENT:.2f}x attachment"),
    ]  # fmt: skip
    if rewritten is not None:
        rows.append(
            ("25 MiB attachment: peak RSS growth with core.rewrite in accept (MB)",
             rewritten["total_rss"] / MB,
             f"{rewritten['total_rss'] / ATTACHMENT:.2f}x attachment; rewrite's own share"),
        )  # fmt: skip
    return rows


def _rewrite_available() -> bool:
    try:
        import mailbeacon.core.rewrite  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        child = _memory_child(Path(sys.argv[2]), sys.argv[3] == "trace", sys.argv[4] == "rewrite")
        print(json.dumps(asyncio.run(child)))
    else:
        for metric, value, note in run():
            print(f"{metric:60s} {value:10.2f}   {note}")
