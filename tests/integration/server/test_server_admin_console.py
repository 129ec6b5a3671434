"""The console's pages and actions on both back ends (the ``database`` fixture), through
plain HTTP: every page answers once logged in, a rep added from it can fetch the
policy, and the team policy's address truncation is obeyed by the server. (The browser
journey is tests/e2e/test_admin_console.py.)"""

from __future__ import annotations

import ipaddress
import re
import time

import httpx
import pytest

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.admin import accounts
from mailbeacon.server.config import Database
from mailbeacon.server.stores import open_store
from mailbeacon.server.team import set_policy_item
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    WAIT,
    new_mail,
    next_event,
    query,
    recipient,
    running_server,
    served_at,
    subscribed,
)
from tests.integration.server.test_server_team_policy import until_policy

PASSWORD = "a long enough password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _admin(database: Database) -> None:
    store = open_store(database)
    try:
        token = accounts.add_admin(store, "olga", time.time(), iso_utc(time.time()))
        accounts.complete_setup(store, token, PASSWORD, time.time())
    finally:
        store.close()


def _cookie(answer: httpx.Response, name: str) -> str:
    # The cookies are Secure: a client sends them over https only, so the test carries
    # them by hand over the loopback's http.
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {answer.headers}")


async def test_every_page_answers_and_a_rep_added_from_it_is_enrolled(
    server: TrackingServer, database: Database
) -> None:
    _admin(database)
    base = server.url
    async with httpx.AsyncClient(timeout=WAIT, base_url=base) as client:
        page = await client.get("/admin/login")
        login = _cookie(page, "mb_login")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        answer = await client.post(
            "/admin/login", data={"name": "olga", "password": PASSWORD, "csrf": csrf.group(1)},
            headers={"Origin": base, "Cookie": f"mb_login={login}"},
        )  # fmt: skip
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/reps"
        session = {"Cookie": f"mb_admin={_cookie(answer, 'mb_admin')}"}
        for path in ("/admin/reps", "/admin/policy", "/admin/report", "/admin/health"):
            shown = await client.get(path, headers=session)
            assert shown.status_code == 200, path
            assert shown.headers["x-frame-options"] == "DENY"
        health = (await client.get("/admin/health", headers=session)).text
        assert "answers" in health and "schema 4" in health
        reps = await client.get("/admin/reps", headers=session)
        token = CSRF.search(reps.text)
        assert token is not None
        added = await client.post(
            "/admin/reps/add", data={"name": "Alicja", "csrf": token.group(1)},
            headers={**session, "Origin": base},
        )  # fmt: skip
        key = re.search(r'<pre id="enroll-key">([^<]+)</pre>', added.text)
        assert added.status_code == 200 and key is not None
        enrollment = Enrollment.decode(key.group(1))
        policy = await client.get(
            "/v1/policy", headers={"Authorization": f"Bearer {enrollment.api_token}"}
        )
        assert policy.status_code == 200
        csv = await client.get("/admin/report.csv", headers=session)
        assert csv.text.startswith("week,rep,")
        assert (await client.get("/admin/reps")).status_code == 303  # no session: log in


async def test_truncated_addresses_by_policy(server: TrackingServer, database: Database) -> None:
    alice = served_at(await server.add_user("alice"), server.url)
    store = open_store(database)
    try:
        set_policy_item(store, "privacy.truncate_ip", "true", True, iso_utc(time.time()))
    finally:
        store.close()
    async with subscribed(server, alice.api_token) as ws:
        await until_policy(server, 1)
        async with recipient() as client:
            await client.get(new_mail(alice).pixel())
        await next_event(ws)
    assert query(database, "SELECT ip FROM events") == [("127.0.0.0",)]


@pytest.mark.expect_log("failed login", "held back")
async def test_behind_a_trusted_proxy_the_login_limit_counts_each_browser(
    database: Database,
) -> None:
    _admin(database)
    proxy = (ipaddress.ip_network("127.0.0.1/32"),)
    async with running_server(database, trusted_proxies=proxy) as server:
        base = server.url

        async def attempt(
            client: httpx.AsyncClient, browser: str, password: str, name: str = "olga"
        ) -> int:
            page = await client.get("/admin/login")
            csrf = CSRF.search(page.text)
            assert csrf is not None
            answer = await client.post(
                "/admin/login",
                data={"name": name, "password": password, "csrf": csrf.group(1)},
                headers={"Origin": base, "Cookie": f"mb_login={_cookie(page, 'mb_login')}",
                         "X-Forwarded-For": browser},
            )  # fmt: skip
            return answer.status_code

        async with httpx.AsyncClient(timeout=WAIT, base_url=base) as client:
            for _ in range(5):
                assert await attempt(client, "203.0.113.7", "wrong password!") == 401
            assert await attempt(client, "203.0.113.7", "wrong password!") == 429
            # Another browser behind the same proxy is not held back by that one's address
            # (it would be if the proxy's own address counted)...
            assert await attempt(client, "198.51.100.2", "wrong password!", "bob") == 401
            # ...while the name tried too often stays held back from anywhere.
            assert await attempt(client, "198.51.100.2", PASSWORD) == 429
