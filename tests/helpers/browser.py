"""A ``BROWSER`` for the sign-in tests: headless Chromium, driven by Playwright.

As a program (what Python's ``webbrowser`` runs when ``BROWSER`` names it)::

    python -m tests.helpers.browser [--deny] URL          # browser sign-in
    python -m tests.helpers.browser --device URL USER_CODE  # sign-in with a code

The first walks the test provider's pages (``tests/helpers/oidc.py``): the login form
as alice@example.test, then Allow (or Deny with ``--deny``), and follows the redirect
to MailBeacon's loopback listener; it prints the listener's sentence. The second
enters the user code at the device page, confirms it, logs in and allows. Only
127.0.0.0/8 is reachable: every other request (the provider's default pages import a
web font) is aborted. Exit status 0 once the walk is done, 1 with the reason on stderr.

For the tests: :func:`as_system_browser` points ``BROWSER`` at this program and
makes ``webbrowser`` read it again; :func:`confirm_device_code` runs the device walk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import re
import shlex
import sys
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.helpers.oidc import PASSWORD, USER

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
STEP_MS = 20_000  # one page of the walk; Chromium's first start is the slow part
WALK_SECONDS = 90.0
CALLBACK = re.compile(r"^http://127\.0\.0\.1:\d+/callback")


def command(*options: str) -> str:
    """A ``BROWSER`` value that runs this program with ``options`` before the URL."""
    words = [sys.executable, "-m", "tests.helpers.browser", *options]
    return " ".join(shlex.quote(word) for word in words) + " %s"


@contextlib.contextmanager
def as_system_browser(*options: str) -> Iterator[None]:
    """Within the block, ``webbrowser.open`` runs this program (``BROWSER``)."""
    saved = {name: os.environ.get(name) for name in ("BROWSER", "PYTHONPATH")}
    os.environ["BROWSER"] = command(*options)
    os.environ["PYTHONPATH"] = str(ROOT)  # `-m tests.helpers.browser` from any folder
    # webbrowser reads BROWSER once per process: make it read it again, now and after.
    webbrowser.register_standard_browsers()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        webbrowser.register_standard_browsers()


async def confirm_device_code(verification_uri: str, user_code: str) -> str:
    """Run the device walk in its own process; its printed sentence."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.helpers.browser", "--device", verification_uri, user_code,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(WALK_SECONDS):
        out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(f"the device walk failed: {err.decode(errors='replace')[-2000:]}")
    return out.decode().strip()


def _loopback_only(route: Any) -> None:
    host = urlsplit(route.request.url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        route.continue_()
    else:
        route.abort()


def _log_in(page: Any, user: str, password: str) -> None:
    page.wait_for_selector("form#login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#submit")


def _browser_sign_in(page: Any, url: str, deny: bool, user: str, password: str) -> str:
    page.goto(url)
    _log_in(page, user, password)
    page.wait_for_selector("#allow")
    page.click("#deny" if deny else "#allow")
    page.wait_for_url(CALLBACK)
    return str(page.inner_text("#message"))


def _device_sign_in(page: Any, url: str, user_code: str, user: str, password: str) -> str:
    page.goto(url)
    page.fill("input[name=user_code]", user_code)
    page.click("button[type=submit]")
    page.click("button[autofocus]")  # "Continue" on the confirmation page
    _log_in(page, user, password)
    page.wait_for_selector("#allow")
    page.click("#allow")
    page.wait_for_function("document.title.includes('Success')")
    return str(page.title())


def main(argv: list[str]) -> int:
    """Walk the provider's pages in headless Chromium; 0 once done."""
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.browser")
    parser.add_argument("--deny", action="store_true", help="press Deny on the consent page")
    parser.add_argument("--device", action="store_true", help="URL USER_CODE: a device walk")
    parser.add_argument("--user", default=USER)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("url")
    parser.add_argument("user_code", nargs="?")
    args = parser.parse_args(argv)
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page()
                page.set_default_timeout(STEP_MS)
                page.route("**/*", _loopback_only)
                if args.device:
                    said = _device_sign_in(page, args.url, args.user_code, args.user,
                                           args.password)  # fmt: skip
                else:
                    said = _browser_sign_in(page, args.url, args.deny, args.user, args.password)
            finally:
                chromium.close()
    except Error as exc:
        print(f"browser walk failed: {exc}", file=sys.stderr)
        return 1
    # As the rep's browser, say nothing on the stdout it shares with `mailbeacon`
    # (whose --json output a script reads); the device walk's caller reads stdout.
    print(said, file=sys.stdout if args.device else sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    sys.exit(main(sys.argv[1:]))
