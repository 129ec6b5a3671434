"""The console in the administrator's language, on the real server over a real socket:
Polish when the browser asks for it (``Accept-Language``), English otherwise; the
set-up, login, CSRF and flash messages in Polish too; Polish plural forms (1, 2, 5,
22); numbers and dates in the locale's words."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mailbeacon.server.admin import accounts
from mailbeacon.server.config import Database
from mailbeacon.server.stores import open_store
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import WAIT, running_server, serving_process

PASSWORD = "a long enough password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
POLISH = {"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"}
# Words of the English pages that must not be left on the Polish ones.
ENGLISH_WORDS = ("Log out", "Team report", "Health<", "Reps<", ">Policy", "Save<", "Remove<")


def _admin(database: Database, name: str = "olga", password: str | None = PASSWORD) -> str:
    store = open_store(database)
    try:
        token = accounts.add_admin(store, name, time.time(), iso_utc(time.time()))
        if password is not None:
            accounts.complete_setup(store, token, password, time.time())
        return token
    finally:
        store.close()


def _cookie(answer: httpx.Response, name: str) -> str:
    # Secure cookies: carried by hand over the loopback's http (as the console tests do).
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {answer.headers}")


def _csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


@pytest.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[TrackingServer]:
    _admin(tmp_path / "server.db")
    async with running_server(tmp_path / "server.db") as running:
        yield running


async def _log_in(client: httpx.AsyncClient, base: str, headers: dict[str, str]) -> dict[str, str]:
    page = await client.get("/admin/login", headers=headers)
    answer = await client.post(
        "/admin/login", data={"name": "olga", "password": PASSWORD, "csrf": _csrf(page)},
        headers={**headers, "Origin": base, "Cookie": f"mb_login={_cookie(page, 'mb_login')}"},
    )  # fmt: skip
    assert answer.status_code == 303
    return {**headers, "Cookie": f"mb_admin={_cookie(answer, 'mb_admin')}"}


@pytest.mark.expect_log("failed login", "refused a form post")
async def test_the_console_speaks_polish_when_the_browser_asks(
    server: TrackingServer, database: Database
) -> None:
    _admin(database)
    base = server.url
    async with httpx.AsyncClient(timeout=WAIT, base_url=base) as client:
        login = await client.get("/admin/login", headers=POLISH)
        assert '<html lang="pl">' in login.text
        assert "<h1>Zaloguj się</h1>" in login.text and "Hasło" in login.text
        assert login.headers["content-language"] == "pl"
        # A wrong password, said in Polish (and the page still takes the next try).
        wrong = await client.post(
            "/admin/login", data={"name": "olga", "password": "nope", "csrf": _csrf(login)},
            headers={**POLISH, "Origin": base, "Cookie": f"mb_login={_cookie(login, 'mb_login')}"},
        )  # fmt: skip
        assert wrong.status_code == 401
        assert "Nieprawidłowa nazwa lub hasło." in wrong.text
        session = await _log_in(client, base, POLISH)

        pages = {
            "/admin/reps": "<h1>Handlowcy</h1>",
            "/admin/policy": "<h1>Zasady</h1>",
            "/admin/report": "<h1>Raport zespołu</h1>",
            "/admin/health": "<h1>Stan serwera</h1>",
        }
        for path, heading in pages.items():
            shown = await client.get(path, headers=session)
            assert shown.status_code == 200, path
            assert '<html lang="pl">' in shown.text and heading in shown.text, path
            assert "Wyloguj" in shown.text, path
            left = [w for w in ENGLISH_WORDS if w in shown.text]
            assert not left, f"{path} still says {left}"
        policy = (await client.get("/admin/policy", headers=session)).text
        assert "śledzenie kliknięć (linki przepisywane)" in policy  # a policy item's doc
        assert "Wymuszone" in policy and "Decyduje handlowiec" in policy

        # A rep added: the key page's title and words in Polish.
        token = _csrf(await client.get("/admin/reps", headers=session))
        added = await client.post(
            "/admin/reps/add", data={"name": "Alicja Nowak", "csrf": token},
            headers={**session, "Origin": base},
        )  # fmt: skip
        assert "<h1>Dodano: Alicja Nowak</h1>" in added.text
        assert "Link zespołu" in added.text and "Widoczne tylko teraz" in added.text
        # The flash after saving the policy, and a refused value, in Polish.
        saved = await client.post(
            "/admin/policy", data={"key": "privacy.enabled", "value": "true",
                                   "mode": "default", "csrf": token},
            headers={**session, "Origin": base},
        )  # fmt: skip
        assert saved.status_code == 200
        assert "Zapisano: zasady w wersji 1." in saved.text
        refused_value = await client.post(
            "/admin/policy", data={"key": "server.public_url", "value": "ftp://x",
                                   "mode": "enforced", "csrf": token},
            headers={**session, "Origin": base},
        )  # fmt: skip
        assert refused_value.status_code == 400
        assert "server.public_url przyjmuje adres http:// lub https://" in refused_value.text
        # A forged post (the session, not its token): refused, in Polish.
        forged = await client.post(
            "/admin/reps/add", data={"name": "Mallory", "csrf": "guess"},
            headers={**session, "Origin": base},
        )  # fmt: skip
        assert forged.status_code == 403
        assert "<h1>Odrzucono</h1>" in forged.text and "Formularz odrzucono" in forged.text


async def test_english_by_default_and_for_languages_without_a_catalog(
    sqlite_server: TrackingServer,
) -> None:
    base = sqlite_server.url
    async with httpx.AsyncClient(timeout=WAIT, base_url=base) as client:
        for header in ({}, {"Accept-Language": "de-DE,fr;q=0.8"}, {"Accept-Language": "pl;q=0"}):
            page = await client.get("/admin/login", headers=header)
            assert '<html lang="en">' in page.text and "<h1>Log in</h1>" in page.text, header
            assert page.headers["content-language"] == "en"
        # Polish further down the list still wins over no catalog at all.
        page = await client.get("/admin/login", headers={"Accept-Language": "de, pl;q=0.5"})
        assert '<html lang="pl">' in page.text
        session = await _log_in(client, base, {})
        reps = (await client.get("/admin/reps", headers=session)).text
        assert "<h1>Reps</h1>" in reps and "Log out" in reps


async def test_polish_plural_forms_for_1_2_5_and_22_reps(
    sqlite_server: TrackingServer,
) -> None:
    base = sqlite_server.url
    said = {}
    async with httpx.AsyncClient(timeout=WAIT, base_url=base) as client:
        session = await _log_in(client, base, POLISH)
        english = {k: v for k, v in session.items() if k != "Accept-Language"}
        for count in range(1, 23):
            await sqlite_server.add_user(f"rep {count}")
            if count in (1, 2, 5, 22):
                page = (await client.get("/admin/reps", headers=session)).text
                found = re.search(r'<p class="count">([^<]+)</p>', page)
                assert found is not None
                said[count] = found.group(1)
                if count in (1, 22):
                    page = (await client.get("/admin/reps", headers=english)).text
                    found = re.search(r'<p class="count">([^<]+)</p>', page)
                    assert found is not None
                    said[-count] = found.group(1)
    assert said == {
        1: "1 osoba w zespole, teraz połączonych: 0",
        2: "2 osoby w zespole, teraz połączonych: 0",
        5: "5 osób w zespole, teraz połączonych: 0",
        22: "22 osoby w zespole, teraz połączonych: 0",
        -1: "1 rep in the team, 0 connected now",
        -22: "22 reps in the team, 0 connected now",
    }


@pytest.mark.expect_log("failed login", "held back")
async def test_the_login_limit_says_its_minutes_in_polish(
    sqlite_server: TrackingServer,
) -> None:
    base = sqlite_server.url
    async with httpx.AsyncClient(timeout=WAIT, base_url=base) as client:
        for attempt in range(6):
            page = await client.get("/admin/login", headers=POLISH)
            answer = await client.post(
                "/admin/login", data={"name": "olga", "password": "wrong!", "csrf": _csrf(page)},
                headers={**POLISH, "Origin": base,
                         "Cookie": f"mb_login={_cookie(page, 'mb_login')}"},
            )  # fmt: skip
            assert answer.status_code == (429 if attempt == 5 else 401)
    # 15 minutes of the window left: the plural form of 5 and more.
    assert "Zbyt wiele nieudanych logowań. Spróbuj ponownie za 15 minut." in answer.text


async def test_setting_up_a_password_in_polish(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    token = _admin(db, "bartek", password=None)
    async with (
        running_server(db) as server,
        httpx.AsyncClient(timeout=WAIT, base_url=server.url) as client,
    ):
        link = f"/admin/setup/{token}"
        page = await client.get(link, headers=POLISH)
        assert "Wybierz hasło" in page.text and "Hasło (co najmniej 12 znaków)" in page.text
        cookie = {**POLISH, "Origin": server.url, "Cookie": f"mb_login={_cookie(page, 'mb_login')}"}

        async def post(password: str, again: str) -> httpx.Response:
            form = {"password": password, "again": again, "csrf": _csrf(page), "name": "bartek"}
            return await client.post(link, data=form, headers=cookie)

        short = await post("short", "short")
        assert short.status_code == 400
        # Said by accounts.py in English (a Phrase), again here in Polish.
        assert "Wybierz hasło o długości co najmniej 12 znaków." in short.text
        differ = await post(PASSWORD, PASSWORD + "!")
        assert "Hasła się różnią." in differ.text
        done = await post(PASSWORD, PASSWORD)
        assert done.status_code == 200
        assert "bartek, Twoje hasło jest ustawione. Zaloguj się nim." in done.text
        used = await client.get(link, headers=POLISH)
        assert used.status_code == 404 and "Link jest nieważny" in used.text
    with pytest.raises(accounts.AdminError) as raised:
        accounts.check_password("short")
    # The command line (and any str use) reads English.
    assert str(raised.value) == "Choose a password of at least 12 characters."


async def test_the_operator_can_set_one_language_for_every_browser(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    _admin(db)
    async with (
        running_server(db, console_language="pl") as server,
        httpx.AsyncClient(timeout=WAIT, base_url=server.url) as client,
    ):
        for header in ({}, {"Accept-Language": "en-GB,en;q=0.9"}):
            page = await client.get("/admin/login", headers=header)
            assert '<html lang="pl">' in page.text, header
            assert page.headers["content-language"] == "pl"


async def test_server_serve_takes_the_console_language_from_its_option(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    _admin(db)
    async with (
        serving_process(tmp_path / "profile", db, "--console-language", "pl") as (_, base),
        httpx.AsyncClient(timeout=WAIT, base_url=base) as client,
    ):
        page = await client.get("/admin/login", headers={"Accept-Language": "en"})
    assert '<html lang="pl">' in page.text
