"""An unusable keyring explained in the rep's language (issue 19): the no-keyring
dialog, the settings and the account flow say the agent's sentence in Polish; the
command line and the log keep English."""

from __future__ import annotations

import pytest
from keyring.errors import NoKeyringError

from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.core.language import Language, in_language, said
from tests.helpers.fakes import MemoryKeyring


class _NoKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("none")


def test_no_keyring_in_english_and_in_polish() -> None:
    store = SecretStore("mailbeacon-test", {}, backend=_NoKeyring())
    with pytest.raises(SecretStoreUnavailable) as raised:
        store.get(Secret.RELAY_PASSWORD)
    refused = raised.value
    assert str(refused).startswith(
        "The OS keyring is unavailable (no keyring service was found), so MailBeacon "
        "cannot read the relay password."
    )
    polish = in_language(said(refused), Language.load("pl"))
    assert polish.startswith(
        "Systemowy pęk kluczy jest niedostępny (nie znaleziono usługi pęku kluczy), więc "
        "MailBeacon nie może odczytać: hasło przekaźnika."
    )
    assert polish.endswith("a hasło IMAP w MAILBEACON_IMAP_PASSWORD.")
