"""The rep's language (issue 19): which one is chosen, plural forms, dates, times and
numbers in the locale's formats and the rep's zone, and a catalog compiled when the
build did not."""

# ruff: noqa: RUF001 - Polish text: en dashes and quotation marks are the point

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailbeacon.agent.account import discovery
from mailbeacon.agent.account.bearer import SignInRequired
from mailbeacon.agent.account.discovery import DiscoveryFailed
from mailbeacon.agent.mailbox.check import check_imap
from mailbeacon.agent.notifications import wording
from mailbeacon.agent.notifications.refusals import OURS, refusal_body
from mailbeacon.agent.sending.check import UpstreamProbe, check_upstream
from mailbeacon.agent.sending.upstream import sign_in_again
from mailbeacon.agent.settings.team import LOCKED_NOTE
from mailbeacon.agent.status import StatusInputs, decide
from mailbeacon.agent.tracking.check import public_result
from mailbeacon.agent.tracking.reach import ANSWER_STEP, NAME_STEP, CheckStep, Outcome, not_checked
from mailbeacon.agent.tracking.stream import UNREACHABLE
from mailbeacon.core.events import EventType
from mailbeacon.core.language import (
    CATALOGS,
    ENGLISH,
    PHRASES,
    Language,
    Phrase,
    chosen_code,
    in_language,
    system_locale,
)
from mailbeacon.core.rewrite import REASON_PLAIN_TEXT
from mailbeacon.core.uainfo import describe, label

WARSAW = ZoneInfo("Europe/Warsaw")


@pytest.fixture
def pl() -> Language:
    return Language.load("pl", zone=WARSAW)


@pytest.mark.parametrize(
    ("environ", "setting", "code"),
    [
        ({"LANG": "pl_PL.UTF-8"}, "system", "pl"),
        ({"LANG": "en_US.UTF-8"}, "system", "en"),
        ({"LANG": "de_DE.UTF-8"}, "system", "en"),  # not spoken: the source language
        ({"LANG": "C.UTF-8"}, "system", "en"),
        ({}, "system", "en"),
        ({"LANGUAGE": "pl:en", "LANG": "en_GB.UTF-8"}, "system", "pl"),
        ({"LC_ALL": "pl_PL.UTF-8", "LANG": "en_GB.UTF-8"}, "system", "pl"),
        ({"LANG": "pl_PL.UTF-8"}, "en", "en"),  # the setting wins over the system
        ({"LANG": "en_GB.UTF-8"}, "pl", "pl"),
    ],
)
def test_the_setting_then_the_system_chooses(
    environ: dict[str, str], setting: str, code: str
) -> None:
    assert chosen_code(setting, environ) == code
    assert Language.load(setting, environ).code == code


def test_formats_follow_the_systems_country_when_its_language_is_spoken() -> None:
    assert system_locale({"LANG": "en_US.UTF-8"}) == "en_US"
    us = Language.load("system", {"LANG": "en_US.UTF-8"}, zone=UTC)
    assert us.day(datetime(2025, 6, 12, tzinfo=UTC)) == "Jun 12, 2025"
    assert ENGLISH.day(datetime(2025, 6, 12, tzinfo=UTC)) == "12 Jun 2025"


@pytest.mark.parametrize(
    ("count", "opens", "clicks", "emails"),
    [
        (1, "1 otwarcie", "1 kliknięcie", "1 wiadomość"),
        (2, "2 otwarcia", "2 kliknięcia", "2 wiadomości"),
        (5, "5 otwarć", "5 kliknięć", "5 wiadomości"),
        (12, "12 otwarć", "12 kliknięć", "12 wiadomości"),
        (22, "22 otwarcia", "22 kliknięcia", "22 wiadomości"),
        (25, "25 otwarć", "25 kliknięć", "25 wiadomości"),
        (1001, "1\u00a0001 otwarć", "1\u00a0001 kliknięć", "1\u00a0001 wiadomości"),
    ],
)
def test_polish_has_three_plural_forms(
    pl: Language, count: int, opens: str, clicks: str, emails: str
) -> None:
    assert wording.summary_counts({EventType.OPEN: count}, pl) == opens
    assert wording.summary_counts({EventType.CLICK: count}, pl) == clicks
    assert pl.n("{count} email", "{count} emails", count) == emails


def test_english_stays_the_source(pl: Language) -> None:
    assert wording.summary_counts({EventType.OPEN: 7, EventType.CLICK: 1}) == (
        "7 opens and 1 click"
    )
    assert wording.summary_counts({EventType.OPEN: 7, EventType.CLICK: 1}, pl) == (
        "7 otwarć i 1 kliknięcie"
    )


def test_summary_titles_name_people_with_a_verb_for_how_many(pl: Language) -> None:
    def items(*names: str) -> list[wording.Summarised]:
        return [wording.Summarised(EventType.OPEN, n, 1, "Oferta na II kwartał") for n in names]

    assert wording.summary_title(items("Ewa Łukasiewicz"), pl) == (
        "Ewa Łukasiewicz otwiera „Oferta na II kwartał”"
    )
    assert wording.summary_title(items("Ewa Lis", "Piotr Nowak"), pl) == (
        "Ewa Lis i Piotr Nowak otwierają „Oferta na II kwartał”"
    )
    five = items("Ewa Lis", "Piotr Nowak", "Jan Kos", "Ola Wąs", "Adam Mróz")
    assert wording.summary_title(five, pl) == (
        "Ewa Lis, Piotr Nowak i 3 inne osoby otwierają „Oferta na II kwartał”"
    )
    assert wording.summary_title(items(""), pl) == "Ktoś otwiera „Oferta na II kwartał”"


def test_refusals_in_polish(pl: Language) -> None:
    reply = "550 5.1.1 <typo@client.exmaple>: Recipient address rejected: User unknown"
    assert refusal_body(reply, tr=pl) == (
        "Adres nie istnieje. Kliknij, aby zobaczyć wiadomość, poprawić adres i wysłać ją ponownie."
    )
    assert refusal_body("554 5.7.1 spam", server=OURS, tr=pl).startswith(
        "Twój serwer poczty wychodzącej – odrzucono"
    )


def test_numbers_and_sizes_use_the_locales_separators(pl: Language) -> None:
    assert ENGLISH.number(12345) == "12,345"
    assert pl.number(12345) == "12\u00a0345"
    assert ENGLISH.size(1536 * 1024) == "1.5 MB"
    assert pl.size(1536 * 1024) == "1,5 MB"
    assert pl.size(820) == "820 B"


def test_countries_are_named_in_the_reps_language(pl: Language) -> None:
    assert ENGLISH.country("PL") == "Poland"
    assert pl.country("DE") == "Niemcy"
    assert pl.country("XX") == "XX"  # not a country Babel knows: shown as it came


def test_times_are_in_the_reps_zone_and_relative_in_a_feed(pl: Language) -> None:
    now = datetime(2025, 6, 12, 12, 30, tzinfo=UTC)  # 14:30 in Warsaw
    warsaw_english = ENGLISH.in_zone(WARSAW)
    assert pl.relative(now - timedelta(seconds=20), now) == "przed chwilą"
    assert pl.relative(now - timedelta(minutes=2), now) == "2 min temu"
    assert pl.relative(now - timedelta(hours=3), now) == "dziś 11:30"
    assert pl.relative(now - timedelta(days=1, minutes=25), now) == "wczoraj 14:05"
    assert warsaw_english.relative(now - timedelta(days=1, minutes=25), now) == ("yesterday 14:05")
    assert pl.relative(now - timedelta(days=3), now) == "pon. 14:30"
    assert pl.relative(now - timedelta(days=30), now) == "13 maj 14:30"
    assert pl.relative(now - timedelta(days=400), now) == "8 maj 2024"
    assert pl.full(now) == "czw. 12 cze 2025, 14:30:00"
    assert warsaw_english.full(now) == "Thu 12 Jun 2025, 14:30:00"


def test_a_fresh_clone_compiles_the_catalog_when_it_loads(tmp_path: Path) -> None:
    folder = tmp_path / "locale"
    shutil.copytree(CATALOGS, folder, ignore=shutil.ignore_patterns("*.mo"))
    assert not list(folder.rglob("*.mo"))
    assert Language.load("pl", folder=folder).t("Someone") == "Ktoś"


def test_a_stale_compiled_catalog_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "locale"
    shutil.copytree(CATALOGS, folder, ignore=shutil.ignore_patterns("*.mo"))
    po = folder / "pl" / "LC_MESSAGES" / "mailbeacon.po"
    mo = po.with_suffix(".mo")
    mo.write_bytes(b"not a catalog")
    older = po.stat().st_mtime - 10  # the .po was edited after the build: it counts
    os.utime(mo, (older, older))
    assert Language.load("pl", folder=folder).t("Someone") == "Ktoś"


def _inputs(**changes: object) -> StatusInputs:
    values: dict[str, object] = {
        "upstream_url": "smtps://smtp.example.org:465",
        "upstream_configured": True,
        "blocked_reason": None,
        "waiting": 0,
        "tracking_url": "https://t.example.org",
        "stream_connected": True,
    }
    values.update(changes)
    return StatusInputs(**values)  # type: ignore[arg-type]


def test_status_details_in_polish_and_english_for_the_status_file(pl: Language) -> None:
    english = decide(_inputs(upstream_configured=False, waiting=5))
    assert english.sending.detail == (
        "No outgoing mail server is set up: set up your email account. 5 emails wait in the outbox."
    )
    polish = decide(_inputs(upstream_configured=False, waiting=5), pl)
    assert polish.sending.detail == (
        "Nie ustawiono serwera poczty wychodzącej: skonfiguruj konto e-mail. 5 wiadomości "
        "czeka w skrzynce nadawczej."
    )
    assert polish.sending.state == english.sending.state  # one rule, two wordings
    failing = decide(_inputs(blocked_reason="550 relay denied"), pl)
    assert failing.sending.detail == "smtp.example.org:465 nie przyjmuje poczty: 550 relay denied"
    ok = decide(_inputs(stream_connected=False), pl)
    assert ok.sending.detail == "Poczta wychodzi przez smtp.example.org:465."
    assert ok.stream.detail == "Łączenie…"
    assert ok.tracking.detail.startswith("Jeszcze nie sprawdzono: MailBeacon sprawdza")
    assert decide(_inputs()).tracking.detail.startswith("Not checked yet: MailBeacon checks")


def test_sign_in_and_discovery_refusals_in_polish(pl: Language) -> None:
    with pytest.raises(DiscoveryFailed) as english:
        discovery._split("not an address", ENGLISH)
    assert str(english.value) == (
        "'not an address' is not an email address: enter it as name@example.org."
    )
    with pytest.raises(DiscoveryFailed) as polish:
        discovery._split("not an address", pl)
    assert str(polish.value) == (
        "'not an address' nie jest adresem e-mail: wpisz go w postaci nazwa@example.org."
    )
    assert pl.t(discovery.ENTER_MANUALLY) == "Wpisz je po kliknięciu Ustaw ręcznie."
    found_none = "No mail servers were found for {domain}."
    assert pl.t(found_none, domain="x.pl") == "Nie znaleziono serwerów poczty dla x.pl."


def test_device_names_in_polish(pl: Language) -> None:
    outlook = describe(
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Outlook 16.0.17328"
    )
    assert outlook.label == label(outlook) == "Outlook on Windows"
    assert label(outlook, pl) == "Outlook (Windows)"
    assert label(describe(""), pl) == "nieznane urządzenie"
    assert describe("").label == "unknown device"
    gmail = describe(
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert (gmail.label, label(gmail, pl)) == ("via Gmail", "przez Gmail")


def test_the_team_lock_note_in_polish(pl: Language) -> None:
    assert (ENGLISH.t(LOCKED_NOTE), pl.t(LOCKED_NOTE)) == (
        "Set by your team",
        "Ustawione przez zespół",
    )


def test_test_results_in_polish_and_english_for_the_command_line(pl: Language) -> None:
    empty = UpstreamProbe("", "", None, allow_plain=False)
    assert asyncio.run(check_upstream(empty)).message == (
        "Enter the URL of your outgoing mail server first."
    )
    assert asyncio.run(check_upstream(empty, tr=pl)).message == (
        "Najpierw wpisz adres URL serwera poczty wychodzącej."
    )
    no_password = asyncio.run(check_imap("imaps://rep@imap.example.invalid", "", False, tr=pl))
    assert no_password.message == "Nie ustawiono hasła IMAP; wpisz je w polu Hasło."
    english = asyncio.run(check_imap("imaps://rep@imap.example.invalid", "", False))
    assert english.message == "No IMAP password is set; type it into the Password field."


def test_a_tracking_reach_line_in_polish(pl: Language) -> None:
    here = _inputs(tracking_url="http://127.0.0.1:8725")
    assert decide(here).tracking.detail.startswith("127.0.0.1 is this computer: opens and")
    assert decide(here, pl).tracking.detail == (
        "127.0.0.1 to ten komputer: otwarcia i kliknięcia są widoczne tylko wtedy, gdy "
        "wiadomość jest czytana na tym komputerze, nigdy u odbiorców."
    )


def test_a_test_tracking_result_in_polish(pl: Language) -> None:
    steps = (
        CheckStep(NAME_STEP, Outcome.YES, pl.t("yes ({addresses})", addresses="203.0.113.5")),
        not_checked(ANSWER_STEP, pl.t("the name gave no address to connect to"), pl),
    )
    assert public_result("https://t.firma.pl", steps, [], pl).message == (
        "Nie udało się sprawdzić śledzenia pod https://t.firma.pl:\n"
        "Nazwa w DNS: tak (203.0.113.5)\n"
        "Odpowiedź: nie sprawdzono (nazwa nie dała adresu, z którym można się połączyć)"
    )
    english = (CheckStep(NAME_STEP, Outcome.YES, "yes (203.0.113.5)"),)
    assert public_result("https://t.firma.pl", english, []).message == (
        "Tracking works: recipients can reach https://t.firma.pl.\nName resolves: yes (203.0.113.5)"
    )


def test_a_stream_detail_reads_english_in_the_file_and_polish_in_the_tray(pl: Language) -> None:
    lost = Phrase(UNREACHABLE, url="https://t.firma.pl", error="timed out")
    assert lost == "cannot reach https://t.firma.pl: timed out"  # a str: the log, the file
    offline = _inputs(stream_connected=False, stream_detail=lost)
    assert decide(offline).stream.detail == "cannot reach https://t.firma.pl: timed out"
    assert decide(offline, pl).stream.detail == (
        "nie można połączyć się z https://t.firma.pl: timed out"
    )
    assert in_language("a server's own words", pl) == "a server's own words"


def test_why_sending_fails_in_polish_when_the_agent_worded_it(pl: Language) -> None:
    why = Phrase("Cannot reach {where}: {error}.", where="smtp.example.org:465", error="timed out")
    failing = _inputs(blocked_reason=why)
    assert decide(failing).sending.detail == (
        "smtp.example.org:465 is not taking mail: Cannot reach smtp.example.org:465: timed out."
    )
    assert decide(failing, pl).sending.detail == (
        "smtp.example.org:465 nie przyjmuje poczty: Nie można połączyć się z "
        "smtp.example.org:465: timed out."
    )


def test_a_sign_in_refusal_in_polish(pl: Language) -> None:
    said = sign_in_again("anna@firma.pl", SignInRequired(""))
    assert said == (
        "Sign in again with the account anna@firma.pl in the settings: the saved sign-in is "
        "no longer accepted. Mail waits in the outbox until then."
    )
    assert in_language(said, pl) == (
        "Zaloguj się ponownie kontem anna@firma.pl w ustawieniach: zapisane logowanie nie "
        "jest już akceptowane. Do tego czasu poczta czeka w skrzynce nadawczej."
    )


def test_why_an_email_was_not_tracked_is_translated_where_it_is_shown(pl: Language) -> None:
    # Stored in English with the email; a known reason reads in the rep's language.
    assert pl.t(REASON_PLAIN_TEXT) == "wiadomość w zwykłym tekście: piksel nie może w niej działać"
    assert pl.t("a reason from an older version") == "a reason from an older version"


def test_the_agents_own_test_tracking_is_english_in_the_file_and_polish_in_the_tray(
    pl: Language,
) -> None:
    steps = (
        CheckStep(NAME_STEP, Outcome.YES, PHRASES.t("yes ({addresses})", addresses="1.2.3.4")),
    )
    said = public_result("https://t.firma.pl", steps, [], PHRASES)
    assert said.message == (
        "Tracking works: recipients can reach https://t.firma.pl.\nName resolves: yes (1.2.3.4)"
    )
    tested = _inputs(tracking_tested=(said.ok, said.message))
    assert decide(tested).tracking.detail == said.message  # the status file
    assert decide(tested, pl).tracking.detail == (
        "Śledzenie działa: odbiorcy mogą połączyć się z https://t.firma.pl.\n"
        "Nazwa w DNS: tak (1.2.3.4)"
    )
    hours = PHRASES.n("{count} hour", "{count} hours", 5)
    assert (hours, in_language(hours, pl)) == ("5 hours", "5 godzin")
