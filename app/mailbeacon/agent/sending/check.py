"""The settings dialog's "Test upstream": log in to the outgoing server once, say how it went.

The values tried are the ones typed into the dialog, not yet saved
(``UpstreamProbe``). The URL goes through the same parsing and checks as the
agent's own (``parse_upstream``), and the session is the one ``Upstream`` opens
before sending, so a test that passes means sending will get as far as the
login. The IMAP counterpart is ``agent.mailbox.check``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.agent.account.bearer import BearerSource
from mailbeacon.agent.sending.upstream import Credentials, Upstream, UpstreamCheck
from mailbeacon.agent.settings.mail_urls import UpstreamConfigError, parse_upstream
from mailbeacon.core.language import ENGLISH, Language, in_language, said


@dataclass(frozen=True, slots=True)
class UpstreamProbe:
    """What "Test upstream" tries: the values in the dialog, not yet saved."""

    url: str
    user: str
    password: str | None  # None: none typed and none stored
    allow_plain: bool
    bearer: BearerSource | None = None  # sign-in by OAuth access token instead


async def check_upstream(
    probe: UpstreamProbe, seconds: float = 15.0, tr: Language = ENGLISH
) -> UpstreamCheck:
    """Connect and log in to the outgoing server once; our own sentences in ``tr`` (a
    server's refusal is shown as it came)."""
    if not probe.url.strip():
        return UpstreamCheck(False, tr.t("Enter the URL of your outgoing mail server first."))
    try:
        url = parse_upstream(probe.url, allow_plain=probe.allow_plain)
    except UpstreamConfigError as exc:
        return UpstreamCheck(False, in_language(said(exc), tr))
    user = url.user or probe.user
    if probe.bearer is not None:
        user = probe.bearer.user
    credentials = Credentials(user, probe.password or "", bearer=probe.bearer) if user else None
    upstream = Upstream(url, lambda: credentials, timeout=seconds)
    try:
        result = await upstream.test_connection()
    finally:
        await upstream.close()
    if result.ok:
        return UpstreamCheck(True, tr.t("Connected to {server} and logged in.", server=url))
    return UpstreamCheck(False, in_language(result.message, tr))
