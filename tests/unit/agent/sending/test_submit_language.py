"""Why the compose window could not hand an email to the relay, in the rep's language
(issue 19): the submitter words it once (English in the log), the window says it in
Polish."""

from __future__ import annotations

import pytest

from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.sending.submit import RelaySubmitter, SubmitError
from mailbeacon.core.language import Language, in_language, said


def test_a_locked_keyring_is_said_in_polish() -> None:
    submit = RelaySubmitter("127.0.0.1", 2525, "mailbeacon", lambda: None)
    message = IncomingMessage(
        "anna@firma.pl", ("jan@klient.pl",), b"Subject: x\r\n\r\nx\r\n", None, None
    )
    with pytest.raises(SubmitError) as refused:
        submit(message)
    assert str(refused.value) == "the relay password is not available (keyring locked?)"
    assert in_language(said(refused.value), Language.load("pl")) == (
        "hasło przekaźnika jest niedostępne (pęk kluczy zablokowany?)"
    )
