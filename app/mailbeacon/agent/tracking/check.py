"""The settings dialog's "Test tracking": fetch a test pixel as a recipient would.

A freshly minted message key, so the request is an open of an email the agent
does not know: the server records it like any such open and nobody is notified.
A GET (not HEAD) so the whole path is tried, and no redirect is followed: a
tracking server answers the pixel itself. An address only this computer or its
network reaches is never reported as working. A public address is checked step
by step through its public name — the name, the secure connection, the answer
(``agent.tracking.reach``) — and the result says for each what it found or could
not check. The IMAP counterpart is ``agent.mailbox.check``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

import httpx

from mailbeacon.agent.account.discovery import NameserverInvalid, resolver_from_env
from mailbeacon.agent.tracking.reach import (
    ANSWER_STEP,
    TLS_STEP,
    CheckStep,
    Outcome,
    Probe,
    Target,
    fetch_pixel,
    is_pixel,
    not_checked,
    resolve,
    secure_connection,
)
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import ENGLISH, Joined, Language
from mailbeacon.core.tokens import new_message_key
from mailbeacon.core.tracking_domain import DomainCheck, check_tracking_url
from mailbeacon.core.urls import TrackingUrls


@dataclass(frozen=True, slots=True)
class TrackingCheck:
    """Result of "Test tracking": ok, the words for the rep, and (for a public
    address) each step's own finding, in order."""

    ok: bool
    message: str
    steps: tuple[CheckStep, ...] = ()


async def check_tracking(
    enrollment: Enrollment,
    seconds: float = 10.0,
    sender_domain: str | None = None,
    *,
    probe: Probe | None = None,
    tr: Language = ENGLISH,
) -> TrackingCheck:
    """Fetch a freshly minted test pixel the way a recipient's mail client would.

    An address recipients elsewhere cannot reach (this computer, a private network)
    is never reported as working, whatever this computer gets back: the rep would
    believe opens are seen when none ever will be (docs/rules.md, "The tracking domain").
    A public address is checked through its public name with ``probe`` (default: the
    system's resolver or ``MAILBEACON_NAMESERVER``, the system's trust store, only
    global addresses count). The headline and the domain's advice are in ``tr``
    (English for the command line and the status file).
    """
    base = enrollment.server_url
    domain = check_tracking_url(base, sender_domain)
    url = TrackingUrls(enrollment).pixel(new_message_key(), None)
    if domain.reachable_by_recipients:
        if probe is None:
            try:
                probe = default_probe(seconds, tr)
            except NameserverInvalid as exc:
                return TrackingCheck(False, str(exc))
        return await check_public(base, url, domain, probe, tr)
    return await _check_local(base, url, domain, seconds, tr)


def default_probe(seconds: float, tr: Language = ENGLISH) -> Probe:
    """What "Test tracking" uses outside tests: the system's resolver and trust store."""
    return Probe(
        resolver_from_env(os.environ), ssl.create_default_context(), seconds=seconds, tr=tr
    )


async def check_public(
    base: str, url: str, domain: DomainCheck, probe: Probe, tr: Language = ENGLISH
) -> TrackingCheck:
    """Name, secure connection and answer, each said in plain words (``reach``)."""
    target = Target.of(base)
    name, address = await resolve(target, probe)
    if address is None:
        because = tr.t("the name gave no address to connect to")
        tls, answer = not_checked(TLS_STEP, because, tr), not_checked(ANSWER_STEP, because, tr)
    else:
        tls = await secure_connection(target, address, probe)
        if tls.outcome == Outcome.NO:
            answer = not_checked(
                ANSWER_STEP, tr.t("there was no secure connection to ask over"), tr
            )
        else:
            answer, _response = await fetch_pixel(target, address, url, probe)
    return public_result(base, (name, tls, answer), domain.sentences(tr), tr)


def public_result(
    base: str, steps: tuple[CheckStep, ...], advice: list[str], tr: Language = ENGLISH
) -> TrackingCheck:
    """The result for a public address from its steps: works only when the pixel came
    back; a headline, one line per step, then the domain's advice (``tracking_domain``)."""
    ok = bool(steps) and steps[-1].outcome == Outcome.YES
    if ok:
        head = tr.t("Tracking works: recipients can reach {url}.", url=base)
    elif any(step.outcome == Outcome.NO for step in steps):
        head = tr.t("Recipients cannot reach tracking at {url}:", url=base)
    else:
        head = tr.t("Tracking at {url} could not be checked:", url=base)
    lines = [head, *(step.line(tr) for step in steps)]
    if advice:
        lines.append(Joined(" ", advice))
    # Joined: the sentences keep their messages when ``tr`` is PHRASES (the agent's
    # own check, said again in the tray's language).
    return TrackingCheck(ok, Joined("\n", lines), steps)


async def _check_local(
    base: str, url: str, domain: DomainCheck, seconds: float, tr: Language
) -> TrackingCheck:
    """An address only this computer or network reaches: fetched, never called working."""
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return TrackingCheck(
            False,
            tr.t(
                "The tracking server at {url} did not answer ({reason}). With the embedded "
                "server, MailBeacon must be running; a remote server must be reachable at "
                "that address.",
                url=base,
                reason=reason,
            ),
        )
    # Whatever came back, recipients elsewhere cannot load it: say so, never "works".
    why = domain.sentences(tr)[0]
    if is_pixel(response):
        return TrackingCheck(False, tr.t("This computer got the pixel, but {why}", why=why))
    return TrackingCheck(False, tr.t("And {why}", why=why))
