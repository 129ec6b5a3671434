"""An exception's message as it was raised: still a :class:`~mailbeacon.core.language.Phrase`
when the agent worded it with one, so the tray can say it in the rep's language
(``str(exc)`` gives plain English, the phrase lost)."""

from __future__ import annotations


def said(exc: BaseException) -> str:
    """The message ``exc`` was raised with (its ``str`` when it has none of its own)."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, str) else str(exc)
