"""The sign-in's refusals in the rep's language (issue 19): the OAuth client words them
once in English (the command line, the log) as phrases; the account set-up, the status
line and the "sign in again" notification say them in Polish; the provider's own words
stay as they came."""

from __future__ import annotations

import pytest

from mailbeacon.agent.account import oauth
from mailbeacon.agent.notifications import wording
from mailbeacon.core.language import Language, in_language, said

ISSUER = "https://id.firma.pl"


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


def test_a_declined_sign_in_in_english_and_in_polish(pl: Language) -> None:
    declined = oauth._refusal(ISSUER, oauth._ProviderSaid("access_denied", "user said no"))
    assert str(declined) == (
        "The sign-in at https://id.firma.pl was declined (access_denied: user said no), so "
        "MailBeacon cannot use the mailbox. Start the sign-in again and allow access."
    )
    assert in_language(said(declined), pl) == (
        "Logowanie w https://id.firma.pl zostało odrzucone (access_denied: user said no), więc "
        "MailBeacon nie może korzystać ze skrzynki. Zacznij logowanie od nowa i zezwól na dostęp."
    )


def test_a_plain_http_provider_is_refused_in_polish_with_nested_words(pl: Language) -> None:
    with pytest.raises(oauth.OAuthError) as refused:
        oauth._require_secure("http://id.firma.pl/token", "ignored")  # type: ignore[arg-type]
    with pytest.raises(oauth.OAuthError) as nested:
        oauth._optional_endpoint({"token_endpoint": "http://id.firma.pl/t"}, "token_endpoint")
    assert "must start with https://" in str(refused.value)
    assert in_language(said(nested.value), pl).startswith(
        "Adres token_endpoint dostawcy (http://id.firma.pl/t) musi zaczynać się od https://"
    )


@pytest.mark.parametrize(
    ("seconds", "english", "polish"),
    [(300.0, "5 minutes", "5 minut"), (90.0, "90 seconds", "90 s")],
)
def test_how_long_a_sign_in_waited(seconds: float, english: str, polish: str, pl: Language) -> None:
    duration = oauth._duration(seconds)
    assert duration == english
    assert in_language(duration, pl) == polish


@pytest.mark.expect_log("did not answer")
def test_the_sign_in_again_notification_says_why_in_polish(pl: Language) -> None:
    why = oauth._unavailable(ISSUER, "timed out")
    body = wording.sign_in_body(said(why), pl)
    assert body.startswith("Dostawca logowania pod https://id.firma.pl nie odpowiedział")
    assert body.endswith("do czasu zalogowania.")


def test_the_browser_page_after_the_sign_in_is_in_polish(pl: Language) -> None:
    answer = oauth._redirect_answer("s1", ISSUER, pl)
    assert answer({"state": "s1", "code": "c"}) == (
        200,
        "Zalogowano. Możesz zamknąć to okno i wrócić do MailBeacon.",
    )
    assert answer({"state": "other"})[0] == 400
    assert oauth._redirect_answer("s1", ISSUER)({"state": "s1", "code": "c"})[1].startswith(
        "You are signed in."
    )
