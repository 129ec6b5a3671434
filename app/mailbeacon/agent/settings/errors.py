"""The error the settings raise for a key or value they do not accept.

A module of its own because both :mod:`.mail_urls` (the host and URL parsers) and
:mod:`.kinds` (the value kinds, which call those parsers) raise it.
"""

from __future__ import annotations


class SettingError(ValueError):
    """A key or value the settings do not accept; the message says why."""
