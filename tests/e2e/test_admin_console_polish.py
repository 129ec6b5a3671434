"""The administrator's console in Polish, in a real browser (headless Chromium set to
``pl-PL``, so it sends ``Accept-Language: pl-PL``) against the real tracking server.

The journey of tests/e2e/test_admin_console.py without the agent: set the password
from ``server add-admin``'s link (a too-short one refused in Polish), log in (a wrong
password first), add reps, save a policy item, read the team report (with a person's
opens) and the health page; every page says ``<html lang="pl">``, shows its Polish
words, and nothing on it overflows the window. Every page is photographed
(``MAILBEACON_CONSOLE_SHOTS`` names a folder: the pictures go to its ``pl/``, e.g.
packaging/screenshots/pl).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import run_cli
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.net import free_port
from tests.helpers.server import RECIPIENT, new_mail, query, recipient, served_at

pytestmark = [
    pytest.mark.needs_program("chromium"),
    pytest.mark.timeout(180),
    pytest.mark.expect_log("failed login", "refused a form post"),
]

ADMIN, PASSWORD = "olga", "correct horse battery staple"
STEP_MS = 20_000
WIDTH = 1200
# An element whose text runs past its own box (clipped or spilling over), or a page
# wider than the window: the names of such elements, for the assertion's message.
OVERFLOW = """() => {
  const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  const over = [...document.querySelectorAll('main *, header *')].filter(e => {
    const s = getComputedStyle(e);
    if (s.display === 'inline' || e.tagName === 'PRE' || e.tagName === 'OPTION') return false;
    return e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0;
  }).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').trim().slice(0, 40));
  return wide ? ['the page is wider than the window', ...over] : over;
}"""


class Shots:
    """Screenshots of the Polish console: in the test's folder, and in the ``pl``
    folder of ``MAILBEACON_CONSOLE_SHOTS`` when set."""

    def __init__(self, tmp_path: Path) -> None:
        self.folders = [tmp_path]
        kept = os.environ.get("MAILBEACON_CONSOLE_SHOTS")
        if kept:
            (Path(kept) / "pl").mkdir(parents=True, exist_ok=True)
            self.folders.append(Path(kept) / "pl")

    async def take(self, page: Any, name: str) -> None:
        assert await page.get_attribute("html", "lang") == "pl", name
        assert await page.evaluate(OVERFLOW) == [], name
        for folder in self.folders:
            await page.screenshot(path=str(folder / f"console_{name}.png"), full_page=True)


async def main_text(page: Any) -> str:
    return str(await page.inner_text("main"))


async def test_an_administrator_runs_the_team_from_the_console_in_polish(
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright

    db = tmp_path / "server.db"
    config = ServerConfig(db_path=db, host="127.0.0.1", port=free_port(), min_open_seconds=0)
    server = TrackingServer(config)
    await server.start()
    shots = Shots(tmp_path)
    base = server.url
    try:
        code, out, err = await run_cli(tmp_path / "ops", tmp_path / "keyring.json",
                                       "server", "add-admin", ADMIN, "--db", str(db))  # fmt: skip
        assert code == 0, err
        setup_link = out.strip()

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(
                viewport={"width": WIDTH, "height": 800}, locale="pl-PL"
            )
            page = await context.new_page()
            page.set_default_timeout(STEP_MS)

            # -- set up: a short password refused, then the password set ---------------
            await page.goto(setup_link)
            assert "Wybierz hasło" in await main_text(page)
            await shots.take(page, "setup")
            # The browser's own minlength check would stop a short one: post it as the
            # form would without it.
            await page.evaluate(
                "document.querySelectorAll('input[minlength]')"
                ".forEach(e => e.removeAttribute('minlength'))"
            )
            await page.fill("#password", "krótkie")
            await page.fill("#again", "krótkie")
            await page.click("button[type=submit]")
            assert "co najmniej 12 znaków" in await main_text(page)
            await page.fill("#password", PASSWORD)
            await page.fill("#again", PASSWORD)
            await page.click("button[type=submit]")
            assert "Twoje hasło jest ustawione" in await main_text(page)

            # -- log in: a wrong password first ----------------------------------------
            await page.goto(f"{base}/admin")
            assert page.url == f"{base}/admin/login"
            await shots.take(page, "login")
            await page.fill("#name", ADMIN)
            await page.fill("#password", "nie to hasło")
            await page.click("button[type=submit]")
            assert "Nieprawidłowa nazwa lub hasło." in await main_text(page)
            await shots.take(page, "login_wrong")
            await page.fill("#name", ADMIN)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            assert page.url == f"{base}/admin/reps"
            assert "Nie ma jeszcze żadnego handlowca" in await main_text(page)

            # -- reps -----------------------------------------------------------------
            keys = []
            for name in ("Alicja Nowak", "Bartłomiej Wiśniewski-Grzegorczyk", "Zofia Kęs"):
                await page.goto(f"{base}/admin/reps")
                await page.fill("#name", name)
                await page.click("form.inline button[type=submit]")
                await page.wait_for_selector("#enroll-key")
                keys.append(Enrollment.decode(await page.inner_text("#enroll-key")))
                assert f"Dodano: {name}" in await main_text(page)
                if len(keys) == 1:
                    await shots.take(page, "rep_added")
            await page.goto(f"{base}/admin/reps")
            reps = await main_text(page)
            assert "3 osoby w zespole" in reps and "Wymień klucz" in reps
            await shots.take(page, "reps")

            # -- policy ---------------------------------------------------------------
            await page.goto(f"{base}/admin/policy")
            privacy = page.locator("form[id='policy-privacy.enabled']")
            await privacy.locator("select[name=value]").select_option("true")
            await privacy.locator("select[name=mode]").select_option("default")
            await privacy.locator("button[type=submit]").click()
            policy = await main_text(page)
            assert "Zapisano: zasady w wersji 1." in policy and "Wymuszone" in policy
            await shots.take(page, "policy")

            # -- the team report and health: a person's opens ---------------------------
            for enrollment, opens in zip(keys, (3, 1, 0), strict=True):
                async with recipient(RECIPIENT) as client:
                    for _ in range(opens):  # three emails opened, each once
                        pixel = new_mail(served_at(enrollment, base)).pixel()
                        assert (await client.get(pixel)).status_code == 200
            for _ in range(100):  # the hits are stored off the answer's path
                if query(db, "SELECT count(*) FROM events") == [(4,)]:
                    break
                await asyncio.sleep(0.05)
            assert query(db, "SELECT count(*) FROM events") == [(4,)]
            await page.goto(f"{base}/admin/report")
            report = await main_text(page)
            assert "Raport zespołu" in report and "Otwarcia przez ludzi" in report
            assert "Alicja Nowak" in report and "Zofia Kęs" not in report
            await shots.take(page, "report")
            await page.goto(f"{base}/admin/health")
            health = await main_text(page)
            assert "odpowiada" in health and "Agenty połączone z tą instancją" in health
            assert "4 zdarzenia (najstarsze z " in health
            await shots.take(page, "health")

            # -- a forged post, refused in Polish -------------------------------------
            evil = await context.new_page()
            await evil.set_content(
                f'<form method="post" action="{base}/admin/reps/add">'
                '<input name="name" value="Mallory"><input name="csrf" value="guess"></form>'
            )
            async with evil.expect_navigation():
                await evil.evaluate("document.forms[0].submit()")
            assert "Formularz odrzucono" in await evil.inner_text("body")
            await browser.close()
    finally:
        await server.stop()
