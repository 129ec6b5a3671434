"""The error the settings raise for a key or value they do not accept.

A module of its own because both :mod:`.mail_urls` (the host and URL parsers) and
:mod:`.kinds` (the value kinds, which call those parsers) raise it.
"""

from __future__ import annotations

from mailbeacon.core.language import Phrase, mark, said

# "key: why", as the command line reads a refused setting.
REFUSED = mark("{key}: {reason}")


class SettingError(ValueError):
    """A key or value the settings do not accept; the message says why."""


def refused(key: str, error: SettingError) -> SettingError:
    """``error`` about setting ``key``: "key: why", the why still a phrase (the settings
    dialog shows it in the rep's language beside the field)."""
    return SettingError(Phrase(REFUSED, key=key, reason=said(error)))


def reason_of(error: SettingError, key: str) -> str:
    """Why ``key`` was refused, without the "key: " the command line reads."""
    text = said(error)
    if isinstance(text, Phrase) and text.message == REFUSED:
        reason = text.values.get("reason")
        if isinstance(reason, str):
            return reason
    prefix = f"{key}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
