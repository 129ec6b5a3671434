"""The console's language: which one a request gets (``Accept-Language`` negotiated
among the catalogs, English by default, a fixed setting), and templates rendered in
two languages at once from one shared Jinja2 environment without either leaking into
the other (the translations travel in each render's context, not in the
environment)."""

from __future__ import annotations

import asyncio

import jinja2
import pytest

from mailbeacon.server.admin.language import (
    ConsoleLanguages,
    negotiate,
    preferred,
    template_words,
)

LANGUAGES = ConsoleLanguages()


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("", []),
        ("pl", ["pl"]),
        ("pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7", ["pl-PL", "pl", "en-US", "en"]),
        ("en;q=0.2, pl;q=0.8", ["pl", "en"]),
        ("de, *;q=0.1, pl;q=0", ["de"]),
        ("pl;q=bad, en", ["en"]),
    ],
)
def test_accept_language_is_read_most_wanted_first(header: str, tags: list[str]) -> None:
    assert preferred(header) == tags


@pytest.mark.parametrize(
    ("header", "code", "formats"),
    [
        ("", "en", "en_GB"),
        ("fr-FR, de", "en", "en_GB"),
        ("pl", "pl", "pl_PL"),
        ("de, pl;q=0.5", "pl", "pl_PL"),
        ("en-US", "en", "en_US"),  # the browser's country's formats
        ("en-XX", "en", "en_GB"),  # a country Babel does not know
    ],
)
def test_the_language_is_negotiated_among_the_catalogs(
    header: str, code: str, formats: str
) -> None:
    chosen, locale = negotiate(header)
    assert (chosen, str(locale)) == (code, formats)


def test_a_fixed_setting_wins_over_the_browser() -> None:
    assert ConsoleLanguages("pl").for_header("en-US").code == "pl"
    assert ConsoleLanguages("en").for_header("pl").code == "en"
    assert ConsoleLanguages("auto").for_header("pl").code == "pl"


def test_numbers_and_dates_in_the_locale() -> None:
    pl, en = LANGUAGES.for_header("pl"), LANGUAGES.for_header("en")
    assert pl.number(12345) == "12\xa0345" and en.number(12345) == "12,345"
    assert pl.percent(0.25) == "25%" and en.percent(0.25) == "25%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return env


PAGE = (
    "{% trans %}Reps{% endtrans %}|{{ _('Full name') }}|"
    "{% trans count=n, connected=0 %}{{ count }} rep in the team, {{ connected }} connected "
    "now{% pluralize %}{{ count }} reps in the team, {{ connected }} connected now{% endtrans %}"
    "|{% trans %}Administrator <strong>{{ name }}</strong>. This link works once.{% endtrans %}"
)


@pytest.mark.parametrize(
    ("n", "polish"),
    [
        (1, "1 osoba w zespole"),
        (2, "2 osoby w zespole"),
        (5, "5 osób w zespole"),
        (22, "22 osoby w zespole"),
        (1234, "1\xa0234 osoby w zespole"),
    ],
)
def test_plural_forms_and_escaping_in_a_template(n: int, polish: str) -> None:
    template = _environment().from_string(PAGE)
    words = template_words(LANGUAGES.for_header("pl"))
    shown = template.render(n=n, name="<b>Olga</b>", **words).split("|")
    assert shown[0] == "Handlowcy" and shown[1] == "Imię i nazwisko"
    assert shown[2] == f"{polish}, teraz połączonych: 0"
    # The translation's own markup stays, the value is escaped.
    assert shown[3] == (
        "Administrator <strong>&lt;b&gt;Olga&lt;/b&gt;</strong>. Ten link działa tylko raz."
    )


async def test_one_environment_renders_two_languages_at_once() -> None:
    env = _environment()
    template = env.from_string(PAGE)
    pl, en = template_words(LANGUAGES.for_header("pl")), template_words(LANGUAGES.for_header(""))

    async def render(words: dict[str, object], n: int) -> str:
        await asyncio.sleep(0)  # interleave the renders
        return template.render(n=n, name="x", **words)

    shown = await asyncio.gather(*(render(pl if i % 2 else en, i) for i in range(1, 41)))
    for i, page in enumerate(shown, start=1):
        assert page.startswith("Handlowcy|" if i % 2 else "Reps|"), page
    # Nothing of a request was left on the environment the requests share.
    assert env.from_string("{% trans %}Reps{% endtrans %}").render() == "Reps"
