"""The IMAP watcher's and the Sent cleanup's sentences (issue 19): English, as before, in
the status file and the log; the same sentence in Polish where the tray shows it
(``in_language``), names and server replies as they came."""

from __future__ import annotations

import ssl

import pytest

from mailbeacon.agent.account.bearer import SignInRequired
from mailbeacon.agent.mailbox import sent_status
from mailbeacon.agent.mailbox.imap_client import AuthenticationFailed, ConnectionClosed
from mailbeacon.agent.mailbox.sent_spool import KeptOriginal
from mailbeacon.agent.mailbox.session import (
    CannotLogIn,
    ImapAccount,
    Trouble,
    describe_failure,
    read_password,
    sign_in_again_message,
)
from mailbeacon.agent.mailbox.watch import ImapState, ImapStatus
from mailbeacon.agent.settings.mail_urls import MailServerUrl
from mailbeacon.core.language import Language, in_language

URL = MailServerUrl("imaps", "imap.firma.pl", 993, "jan@firma.pl", "tls")


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


def _entry(**changes: object) -> KeptOriginal:
    entry = KeptOriginal(1, "<m1@firma.pl>", "k1", 2, 0.0, subject="Oferta")
    for name, value in changes.items():
        setattr(entry, name, value)
    return entry


def test_an_unreachable_server_reads_english_in_the_file_and_polish_in_the_tray(
    pl: Language,
) -> None:
    failure = describe_failure(ConnectionClosed("the server closed the connection"), URL)
    assert failure.trouble is Trouble.UNREACHABLE
    problem = ImapStatus(ImapState.UNREACHABLE, failure.detail).problem
    assert problem == (
        "Replies are not being watched: cannot reach the mail server imap.firma.pl:993 "
        "(the server closed the connection)"
    )
    assert in_language(problem, pl) == (
        "Odpowiedzi nie są obserwowane: brak połączenia z serwerem poczty imap.firma.pl:993 "
        "(the server closed the connection)"
    )


@pytest.mark.parametrize(
    ("error", "polish"),
    [
        (
            AuthenticationFailed("no IMAP password is set"),
            "nie ustawiono hasła IMAP; wpisz je w ustawieniach (imap.password)",
        ),
        (
            AuthenticationFailed("[AUTHENTICATIONFAILED] nope"),
            "serwer poczty odrzucił nazwę użytkownika lub hasło IMAP ([AUTHENTICATIONFAILED] nope)",
        ),
        (
            ssl.SSLError(1, "bad record"),
            "bezpieczne połączenie nie powiodło się: bad record",
        ),
        (RuntimeError("boom"), "błąd wewnętrzny: boom"),
    ],
)
def test_each_kind_of_failure_in_polish(error: Exception, polish: str, pl: Language) -> None:
    assert in_language(describe_failure(error, URL).detail, pl) == polish


async def test_a_plain_password_refusal_keeps_its_phrase_through_the_exception(
    pl: Language,
) -> None:
    plain = ImapAccount(
        MailServerUrl("imap", "imap.firma.pl", 143, "jan", "none"), lambda: "secret"
    )
    with pytest.raises(CannotLogIn) as refused:
        await read_password(plain)
    failure = describe_failure(refused.value, plain.url)
    assert failure.detail.startswith("imap.firma.pl would receive your password unencrypted")
    assert in_language(failure.detail, pl) == (
        "hasło trafiłoby do imap.firma.pl bez szyfrowania; użyj imaps:// lub "
        "imap+starttls:// albo ustaw imap.allow_plain"
    )


def test_sign_in_again_in_polish(pl: Language) -> None:
    refused = SignInRequired("Sign in again to Firma: invalid_grant", reason="invalid_grant")
    said = sign_in_again_message("jan@firma.pl", refused)
    assert said == (
        "Sign in again with the account jan@firma.pl in Settings: the saved sign-in is no "
        "longer accepted (invalid_grant)"
    )
    assert in_language(said, pl) == (
        "Zaloguj się ponownie kontem jan@firma.pl w ustawieniach: zapisane logowanie nie jest "
        "już akceptowane (invalid_grant)"
    )


def test_sent_cleanup_problems_in_polish(pl: Language) -> None:
    read_only = sent_status.read_only(_entry())
    assert read_only.problem is not None
    assert in_language(read_only.problem, pl) == (
        "Folder wysłanych nieuporządkowany: folder wysłanych jest tylko do odczytu, więc kopia "
        "wiadomości „Oferta” z pikselem tam zostaje (jej otwarcie może się liczyć jako "
        "otwarcie); nic nie zmieniono"
    )
    gave_up = sent_status.gave_up(_entry(), 3, "cannot reach the mail server")
    assert in_language(gave_up.detail, pl) == (
        "po 3 dniach porzucono porządkowanie wiadomości „Oferta” w wysłanych (cannot reach the "
        "mail server); kopia z pikselem może tam nadal być"
    )


@pytest.mark.parametrize(
    ("removed", "english", "polish"),
    [
        (1, "removed 1 copy with a pixel", "usunięto 1 kopię z pikselem"),
        (2, "removed 2 copies with a pixel", "usunięto 2 kopie z pikselem"),
        (5, "removed 5 copies with a pixel", "usunięto 5 kopii z pikselem"),
    ],
)
def test_what_the_cleanup_removed_has_real_plural_forms(
    removed: int, english: str, polish: str, pl: Language
) -> None:
    done = sent_status.outcome(_entry(removed=removed, clean_seen=True), complete=True)
    assert done.detail == f"“Oferta”: {english}; the untracked email is in Sent"
    assert in_language(done.detail, pl) == (
        f"„Oferta”: {polish}; wiadomość bez śledzenia jest w wysłanych"
    )
