"""Pixel hit to desktop notification, through the real server, stream and agent.

Target (docs/performance.md): under 100 ms on loopback, with the settle window at 0.
Run alone: ``.venv/bin/python -m tests.bench.bench_notify``.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import statistics
import tempfile
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import httpx

from mailbeacon.core.botlists import Thresholds
from mailbeacon.core.classify import Context, Decision, Hit, classify
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import AgentProcess, run_cli
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink

SAMPLES = 10
# The flood guard summarises more than 3 notifications in 10 s: stay under it.
SPACING_S = 3.4
PIXEL = re.compile(rb'src="(http://127\.0\.0\.1:\d+/o/[A-Za-z0-9_-]+\.gif)"')
PASSWORD = "bench"


def _fast(hit: Hit, context: Context) -> Decision:
    return classify(hit, replace(context, thresholds=Thresholds(min_open_s=0, min_click_s=0)))


def _send(port: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login("mailbeacon", PASSWORD)
        for n in range(count):
            message = EmailMessage()
            message["From"] = "rep@rep.example"
            message["To"] = f"r{n}@client.example"
            message["Subject"] = f"Bench {n}"
            message.add_alternative(f"<p>Hello {n}</p>", subtype="html")
            client.send_message(message)


async def _measure(folder: Path) -> list[float]:
    server = TrackingServer(ServerConfig(db_path=folder / "server.db"), classifier=_fast)
    await server.start()
    enrollment = await server.add_user("bench")
    profile, keyring_file = folder / "agent", folder / "keyring.json"
    await run_cli(profile, keyring_file, "config", "set", "tracking.settle_seconds", "0")
    relay_port = free_port()
    latencies: list[float] = []
    with SmtpSink() as sink:
        agent = await AgentProcess(
            profile, keyring_file, "--enroll", enrollment.encode(),
            "--smtp-listen", f"127.0.0.1:{relay_port}",
            "--upstream", f"smtp://127.0.0.1:{sink.port}", "--relay-password", PASSWORD,
        ).start()
        try:
            await asyncio.to_thread(_send, relay_port, SAMPLES)
            received = await sink.until(SAMPLES, within=60)
            pixels = [PIXEL.search(r.data) for r in received]
            transport = httpx.AsyncHTTPTransport(local_address="127.0.0.9")
            async with httpx.AsyncClient(transport=transport,
                                         headers={"User-Agent": "Thunderbird/128.0"}) as viewer:
                for match in pixels:
                    assert match is not None
                    started = time.perf_counter()
                    await viewer.get(match.group(1).decode())
                    await agent.notification(within=10)
                    latencies.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(SPACING_S)
        finally:
            await agent.stop()
            await server.stop()
    return latencies


def run() -> list[tuple[str, float, str]]:
    """Hit-to-notification latency figures."""
    with tempfile.TemporaryDirectory() as folder:
        latencies = asyncio.run(_measure(Path(folder)))
    return [
        ("hit -> notification p50", statistics.median(latencies), "ms (target < 100)"),
        ("hit -> notification max", max(latencies), f"ms over {len(latencies)} hits"),
    ]


if __name__ == "__main__":
    for metric, value, note in run():
        print(f"{metric}: {value:.1f} {note}")
