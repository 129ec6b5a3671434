"""A team's tracking server as the agent may use it: never over plain http elsewhere."""

from __future__ import annotations

from urllib.parse import urlsplit

from mailbeacon.agent.settings.mail_urls import is_loopback
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import Phrase, mark


class PlainServerRefused(RuntimeError):
    """The server is http:// on another machine and the rep did not allow it."""


def checked_remote(enrollment: Enrollment, settings: Settings) -> Enrollment:
    """``enrollment``, unless its server is plain http elsewhere (the stream would carry
    the API token in clear) and ``server.allow_plain`` is off (docs/promises.md)."""
    parts = urlsplit(enrollment.server_url)
    plain = parts.scheme == "http" and not is_loopback(parts.hostname or "")
    if plain and not settings.server.allow_plain:
        raise PlainServerRefused(
            Phrase(
                mark(
                    "The tracking server {url} is not encrypted (http://), so MailBeacon's "
                    "access token would cross the network in clear. Ask for its https:// "
                    "address, or set server.allow_plain true if you trust that network."
                ),
                url=enrollment.server_url,
            )
        )
    return enrollment
