"""The administrator's console in a real browser (headless Chromium through Playwright)
against the real tracking server, with a real agent enrolled from the console's link.

One journey: set the password from ``server add-admin``'s link, log in, add a rep, read
the enrollment link, enroll a real ``mailbeacon agent`` with it, turn tracking off for
the account and see the agent's next email leave untracked (and the agent obey within
2 s), turn it back on; a cross-site form post and a wrong CSRF token refused; the rep
removed: their agent disconnected and their links answered but recording nothing; a
wrong password; the login limit. Every page is photographed (``MAILBEACON_CONSOLE_SHOTS``
names a folder to keep the pictures in, e.g. packaging/screenshots).
"""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailbeacon import __version__
from mailbeacon.core.enrollment import Enrollment, key_from_link
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import AgentProcess, run_cli
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.net import free_port
from tests.helpers.server import RECIPIENT, query, recipient
from tests.helpers.smtp import ReceivedEnvelope, SmtpSink

pytestmark = [
    pytest.mark.needs_program("chromium"),
    pytest.mark.timeout(300),
    pytest.mark.expect_log("refused a form post", "failed login", "held back", "access revoked"),
]

RELAY_PASSWORD = "relay-secret-for-tests"
ADMIN, PASSWORD = "olga", "correct horse battery staple"
OBEY_WITHIN = 2.0
STEP_MS = 20_000
PIXEL = re.compile(rb"(http://127\.0\.0\.1:\d+/o/[A-Za-z0-9_-]+\.gif)")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def offer(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "alicja@example.net"
    message["To"] = "client@client.example"
    message["Subject"] = f"Offer {n}"
    message.set_content("Our offer: https://example.com/offer\n")
    message.add_alternative(
        '<p>Our <a href="https://example.com/offer">offer</a>.</p>', subtype="html"
    )
    return message


async def send(relay_port: int, sink: SmtpSink, n: int) -> ReceivedEnvelope:
    def run() -> None:
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
            client.login("mailbeacon", RELAY_PASSWORD)
            client.send_message(offer(n))

    await asyncio.to_thread(run)
    return (await sink.until(n, within=20))[n - 1]


def tracked(got: ReceivedEnvelope) -> bool:
    return b"/o/" in got.data or b"/c/" in got.data


class Shots:
    """Screenshots of the console's pages: in the test's folder, and kept where
    ``MAILBEACON_CONSOLE_SHOTS`` says."""

    def __init__(self, tmp_path: Path) -> None:
        self.folders = [tmp_path]
        kept = os.environ.get("MAILBEACON_CONSOLE_SHOTS")
        if kept:
            self.folders.append(Path(kept))

    async def take(self, page: Any, name: str) -> None:
        for folder in self.folders:
            await page.screenshot(path=str(folder / f"console_{name}.png"), full_page=True)


async def main_text(page: Any) -> str:
    return str(await page.inner_text("main"))


async def test_an_administrator_runs_the_team_from_the_console(
    tmp_path: Path, sink: SmtpSink
) -> None:
    from playwright.async_api import async_playwright

    db = tmp_path / "server.db"
    # Opens count from the moment of sending (the recipient here is quicker than any
    # person; docs/rules.md, verdicts): the report then has a person's open to show.
    config = ServerConfig(db_path=db, host="127.0.0.1", port=free_port(), min_open_seconds=0)
    server = TrackingServer(config)
    await server.start()
    agent: AgentProcess | None = None
    shots = Shots(tmp_path)
    base = server.url
    try:
        async with httpx.AsyncClient(timeout=5) as plain:
            assert (await plain.get(f"{base}/admin/login")).status_code == 404  # off
        code, out, err = await run_cli(tmp_path / "ops", tmp_path / "keyring.json",
                                       "server", "add-admin", ADMIN, "--db", str(db))  # fmt: skip
        assert code == 0, err
        setup_link = out.strip()
        assert setup_link.startswith(f"{base}/admin/setup/")

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1200, "height": 800})
            page = await context.new_page()
            page.set_default_timeout(STEP_MS)
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Refused" in m.text else None)

            # -- set up and log in -----------------------------------------------------
            await page.goto(setup_link)
            await shots.take(page, "setup")
            await page.fill("#password", PASSWORD)
            await page.fill("#again", PASSWORD)
            await page.click("button[type=submit]")
            assert "your password is set" in await main_text(page)
            again = await page.goto(setup_link)
            assert again is not None and again.status == 404  # once only
            await page.goto(f"{base}/admin")
            assert page.url == f"{base}/admin/login"
            await shots.take(page, "login")
            async with httpx.AsyncClient(timeout=5) as plain:
                headers = (await plain.get(f"{base}/admin/login")).headers
            assert "default-src 'none'" in headers["content-security-policy"]
            assert "script-src" not in headers["content-security-policy"]
            await page.fill("#name", ADMIN)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            assert page.url == f"{base}/admin/reps"
            cookie = next(c for c in await context.cookies() if c["name"] == "mb_admin")
            assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

            # -- a rep, enrolled from the link -----------------------------------------
            await page.fill("#name", "Alicja Nowak")
            await page.click("form.inline button[type=submit]")
            await page.wait_for_selector("#enroll-link")
            link = str(await page.get_attribute("#enroll-link", "href"))
            assert link.startswith("mailbeacon://enroll?key=mbk1_")
            await shots.take(page, "rep_added")
            profile, keyring = tmp_path / "alicja", tmp_path / "alicja-keyring.json"
            code, out, err = await run_cli(profile, keyring, "enroll", link)
            assert code == 0, err
            relay_port = free_port()
            agent = await AgentProcess(
                profile, keyring, "--smtp-listen", f"127.0.0.1:{relay_port}",
                "--upstream", f"smtp://127.0.0.1:{sink.port}",
                "--relay-password", RELAY_PASSWORD,
            ).start()  # fmt: skip
            await agent.wait_log("stream from database", within=20)
            first = await send(relay_port, sink, 1)
            assert tracked(first)
            await page.goto(f"{base}/admin/reps")
            reps = await main_text(page)
            assert "Alicja Nowak" in reps and "connected" in reps and __version__ in reps
            await shots.take(page, "reps")

            # -- tracking off for the account, then on again ---------------------------
            await page.goto(f"{base}/admin/policy")
            row = page.locator("form[id='policy-tracking.enabled']")
            await row.locator("select[name=value]").select_option("false")
            changed = time.monotonic()
            await row.locator("button[type=submit]").click()
            assert "policy version 1" in await main_text(page)
            await agent.wait_log("team policy version 1", within=OBEY_WITHIN)
            assert time.monotonic() - changed < OBEY_WITHIN + 1.0  # the click's round trip
            assert not tracked(await send(relay_port, sink, 2))
            privacy = page.locator("form[id='policy-privacy.enabled']")
            await privacy.locator("select[name=value]").select_option("true")
            await privacy.locator("select[name=mode]").select_option("default")
            await privacy.locator("button[type=submit]").click()
            await shots.take(page, "policy")
            row = page.locator("form[id='policy-tracking.enabled']")
            await row.locator("select[name=value]").select_option("true")
            await row.locator("button[type=submit]").click()
            await agent.wait_log("team policy version 3", within=OBEY_WITHIN)
            third = await send(relay_port, sink, 3)
            assert tracked(third)

            # -- the team report and health --------------------------------------------
            pixel = PIXEL.search(third.data.replace(b"=\r\n", b"").replace(b"=3D", b"="))
            assert pixel is not None
            async with recipient(RECIPIENT) as client:
                assert (await client.get(pixel.group(1).decode())).status_code == 200
            await agent.notification(within=10)  # the open reached the rep
            await page.goto(f"{base}/admin/report")
            report = await main_text(page)
            assert "Alicja Nowak" in report
            await shots.take(page, "report")
            csv = await page.request.get(f"{base}/admin/report.csv")
            assert csv.status == 200 and "attachment" in csv.headers["content-disposition"]
            lines = (await csv.text()).splitlines()
            assert lines[0].startswith("week,rep,emails_tracked,human_opens,clicks,replies")
            assert ",Alicja Nowak,2,1," in lines[1]  # two tracked sends, one person's open
            await page.goto(f"{base}/admin/health")
            health = await main_text(page)
            assert "answers" in health and "Agents connected here\n1" in health.replace("\t", "\n")
            await shots.take(page, "health")

            # -- forged posts are refused ----------------------------------------------
            users_before = query(db, "SELECT count(*) FROM users")
            evil = await context.new_page()
            await evil.set_content(
                f'<form method="post" action="{base}/admin/reps/add">'
                '<input name="name" value="Mallory"><input name="csrf" value="guess"></form>'
            )
            async with evil.expect_navigation():
                await evil.evaluate("document.forms[0].submit()")
            assert "refused" in (await evil.inner_text("body")).lower()
            forged = await page.request.post(
                f"{base}/admin/reps/add", form={"name": "Mallory", "csrf": "guess"},
                headers={"Origin": base},
            )  # fmt: skip
            assert forged.status == 403  # the session's cookie, but not its token
            assert query(db, "SELECT count(*) FROM users") == users_before

            # -- a key rotated: the old one refused at once, the new one works --------
            await page.goto(f"{base}/admin/reps")
            await page.fill("#name", "Bartek Zieliński")
            await page.click("form.inline button[type=submit]")
            old_key = key_from_link(str(await page.get_attribute("#enroll-link", "href")))
            old = Enrollment.decode(old_key)
            await page.goto(f"{base}/admin/reps")
            await page.click(f"form[action='/admin/reps/{old.user_id}/rotate'] button")
            new = Enrollment.decode(await page.inner_text("#enroll-key"))
            assert (new.user_id, new.server_url) == (old.user_id, old.server_url)
            async with httpx.AsyncClient(timeout=5) as plain:
                for enrollment, status in ((old, 401), (new, 200)):
                    answer = await plain.get(
                        f"{base}/v1/policy",
                        headers={"Authorization": f"Bearer {enrollment.api_token}"},
                    )
                    assert answer.status_code == status

            # -- the rep removed: agent cut off, links record nothing -----------------
            await page.goto(f"{base}/admin/reps")
            await page.click("form[action='/admin/reps/1/remove'] button")  # Alicja
            await agent.wait_log("stream refused", within=5)
            events = query(db, "SELECT count(*) FROM events")
            async with recipient(RECIPIENT) as client:
                hit = await client.get(pixel.group(1).decode())
            assert hit.status_code == 200 and hit.headers["content-type"] == "image/gif"
            await asyncio.sleep(0.5)  # a recorded hit would be committed by now
            assert query(db, "SELECT count(*) FROM events") == events

            # -- a wrong password, then the login limit ---------------------------------
            await page.click("header button[type=submit]")  # log out
            assert page.url == f"{base}/admin/login"
            await page.fill("#name", ADMIN)
            await page.fill("#password", "not the password")
            await page.click("button[type=submit]")
            assert "Wrong name or password." in await main_text(page)
            await shots.take(page, "login_wrong")
            for _ in range(4):
                await page.fill("#name", ADMIN)
                await page.fill("#password", "still not it")
                await page.click("button[type=submit]")
            await page.fill("#name", ADMIN)
            await page.fill("#password", PASSWORD)  # right, but too late
            await page.click("button[type=submit]")
            assert "Too many failed logins" in await main_text(page)
            assert page.url == f"{base}/admin/login"
            assert blocked == []  # the CSP refused nothing the pages themselves use
            await browser.close()
    finally:
        if agent is not None:
            await agent.stop()
        await server.stop()
