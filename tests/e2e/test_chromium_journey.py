"""The whole journey with real clients only (docs/architecture.md, interfaces.md, rules.md rule 5).

swaks sends an HTML email with a link and a PDF through the headless agent's relay;
the upstream (an aiosmtpd sink) receives the tracked copy; a recipient on another host
(a network namespace joined by a veth pair) opens it in Chromium, which loads the
pixel from the tracking server (``mailbeacon server serve`` on the host side of the
veth), and then follows the tracked link, landing on the original target. The agent
prints "open" then "click" for that recipient, each within a second of the server
seeing the browser's request, and the contact's record keeps the logged copy with the
attachment's SHA-256.

Real life demands one wait here: a hit less than 2 s (open) or 5 s (click) after the
email was sent is "faster than a human" (rule 5) and `server serve` has no option to
change that, so the browser runs only once those thresholds have passed. The mint time
is known from outside: tokens are minted before the relay answers 250, so waiting from
the moment swaks returned is enough.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from datetime import datetime
from pathlib import Path

from tests.e2e.harness import (
    CHROME_UA,
    OUT,
    LandingPage,
    Netns,
    Rep,
    ServerProcess,
    chromium_dump_dom,
    html_of,
    need_programs,
    need_root,
    recipient_namespace,
    stopped_at_end,
    swaks,
)
from tests.helpers.agent_process import AgentProcess
from tests.helpers.smtp import SmtpSink

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
RECIPIENT = "alicja@client.example"
MIN_OPEN_S, MIN_CLICK_S = 2.0, 5.0  # the classifier's human thresholds (core/botlists.py)
MARGIN_S = 0.2
LATENCY_S = 1.0


def _ts(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


async def _until(moment: float) -> None:
    """The one real-life wait: until the human-delay threshold has passed."""
    await asyncio.sleep(max(0.0, moment - time.time()))


async def test_swaks_then_chromium_opens_and_clicks_from_another_host(tmp_path: Path) -> None:
    need_root("a network namespace for the recipient's browser")
    need_programs("ip", "chromium", "swaks")
    with recipient_namespace() as ns, SmtpSink() as sink:
        server = ServerProcess(tmp_path / "server", host=ns.host_ip)
        await server.astart()
        try:
            user = server.add_user("rep")
            rep = Rep(tmp_path / "rep")
            await rep.configure(
                tracking__settle_seconds="0",  # latency is measured at 0
                # The server is another host over plain http, on this machine's own veth:
                # the rep allows it, as a rep must for any http:// server elsewhere.
                server__allow_plain="true",
            )
            marker = f"MB-LANDED-{secrets.token_hex(6)}"
            async with LandingPage(ns.host_ip, marker) as landing:
                agent = rep.agent(user["enrollment_key"], sink.port)
                async with stopped_at_end(agent):
                    await _journey(tmp_path, rep, server, sink, landing, agent, ns)
        finally:
            server.stop()


async def _journey(
    tmp_path: Path,
    rep: Rep,
    server: ServerProcess,
    sink: SmtpSink,
    landing: LandingPage,
    agent: AgentProcess,
    ns: Netns,
) -> None:
    target = f"{landing.url}/offer?ref=q4&x=1"
    (tmp_path / "body.html").write_text(
        "<html><body><p>Dzień dobry Alicjo,</p>"
        f'<p>please <a href="{target.replace("&", "&amp;")}">see our offer</a>.</p>'
        "</body></html>",
        encoding="utf-8",
    )
    (tmp_path / "oferta.pdf").write_bytes(PDF)
    await swaks(
        "--server", f"127.0.0.1:{rep.relay_port}", "--auth", "PLAIN",
        "--auth-user", "mailbeacon", "--auth-password", rep.relay_password,
        "--from", "rep@rep.example", "--to", RECIPIENT,
        "--header", "Subject: Oferta Q4", "--header", "X-MailBeacon-Log: yes",
        "--attach-type", "text/html", "--attach-body", f"@{tmp_path / 'body.html'}",
        "--attach-type", "application/pdf", "--attach-name", "oferta.pdf",
        "--attach", f"@{tmp_path / 'oferta.pdf'}",
    )
    sent = time.time()  # every token of the email was minted before this moment

    [delivered] = await sink.until(1, within=30)
    assert delivered.rcpt_tos == (RECIPIENT,)
    assert b"X-MailBeacon" not in delivered.data
    html = html_of(delivered.data)
    base = re.escape(server.public_url)
    pixels = re.findall(rf'src="({base}/o/[A-Za-z0-9_-]+\.gif)"', html)
    links = re.findall(rf'href="({base}/c/[A-Za-z0-9_-]+)"[^>]*>see our offer</a>', html)
    assert len(pixels) == 1 and len(links) == 1, html
    assert target not in html  # the visible link goes through the tracking server
    page = tmp_path / "delivered.html"
    page.write_text(html, encoding="utf-8")

    # The recipient reads the email: Chromium renders it and fetches the pixel.
    await _until(sent + MIN_OPEN_S + MARGIN_S)
    reading = asyncio.create_task(chromium_dump_dom(ns, page.as_uri()))
    opened = await agent.notification(within=15)  # while Chromium may still be running
    opened_seen = time.time()
    viewer = await reading
    assert "see our offer" in viewer.dom
    assert opened["type"] == "open", opened
    assert opened["recipient"] == RECIPIENT and not opened["anonymous"]
    assert opened["subject"] == "Oferta Q4"
    assert "Chrome" in opened["body"], opened  # the recipient's client, as the rep sees it

    # ... and follows the link: the tracking server redirects to the original target.
    await _until(sent + MIN_CLICK_S + MARGIN_S)
    following = asyncio.create_task(chromium_dump_dom(ns, links[0]))
    clicked = await agent.notification(within=15)
    clicked_seen = time.time()
    browser = await following
    assert landing.marker in browser.dom, browser.dom[:2000]  # the browser landed on the target
    # (Chromium may also ask the landing host for /favicon.ico.)
    offers = [(peer, path) for _at, peer, path in landing.requests if path.startswith("/offer")]
    assert offers == [(ns.ns_ip, "/offer?ref=q4&x=1")], landing.requests
    assert clicked["type"] == "click", clicked
    assert clicked["recipient"] == RECIPIENT and clicked["url"] == target
    assert not clicked["inferred"]  # the open came first

    open_latency = opened_seen - _ts(opened["at"])
    click_latency = clicked_seen - _ts(clicked["at"])
    timings = {
        "open_server_at_to_notification_s": round(open_latency, 3),
        "click_server_at_to_notification_s": round(click_latency, 3),
        "open_chromium_launch_to_notification_s": round(opened_seen - viewer.launched, 3),
        "click_chromium_launch_to_notification_s": round(clicked_seen - browser.launched, 3),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "chromium_journey_timings.json").write_text(json.dumps(timings, indent=2))
    # Chromium's own start-up (0.5-1.5 s here, more on a busy CI machine) is outside
    # MailBeacon: the promise is measured from the moment the server saw the request.
    assert 0 <= open_latency < LATENCY_S, timings
    assert 0 <= click_latency < LATENCY_S, timings
    # From launch it is usually under a second too (0.5-0.9 s seen), but that includes
    # Chromium's start-up; only a gross regression is an error here.
    assert opened_seen - viewer.launched < 5 and clicked_seen - browser.launched < 5, timings

    # The server saw the browser's address, not the rep's: a human, not "self".
    rows = await rep.activity()
    by_type = {row["type"]: row for row in rows if row["verdict"] == "human"}
    assert by_type["open"]["ip"] == ns.ns_ip and by_type["click"]["ip"] == ns.ns_ip
    assert by_type["open"]["user_agent"] == CHROME_UA

    record = await rep.cli_json("record", RECIPIENT, "--json")
    assert record["last_open"] and record["last_click"]
    [entry] = [e for e in record["timeline"] if e["kind"] == "sent"]
    [attachment] = entry["copy"]["attachments"]
    assert attachment["filename"] == "oferta.pdf"
    assert attachment["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert "see our offer" in entry["copy"]["html"]
