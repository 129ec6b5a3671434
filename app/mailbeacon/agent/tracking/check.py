"""The settings dialog's "Test tracking": fetch a test pixel as a recipient would.

A freshly minted message key, so the request is an open of an email the agent
does not know: the server records it like any such open and nobody is notified.
A GET (not HEAD) so the whole path is tried, and no redirect is followed: a
tracking server answers the pixel itself. The IMAP counterpart is
``agent.mailbox.check``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.tokens import new_message_key
from mailbeacon.core.tracking_domain import check_tracking_url
from mailbeacon.core.urls import TrackingUrls


@dataclass(frozen=True, slots=True)
class TrackingCheck:
    """Result of "Test tracking": ok, and a sentence for the rep."""

    ok: bool
    message: str


async def check_tracking(
    enrollment: Enrollment, seconds: float = 10.0, sender_domain: str | None = None
) -> TrackingCheck:
    """Fetch a freshly minted test pixel the way a recipient's mail client would.

    An address recipients elsewhere cannot reach (this computer, a private network)
    is never reported as working, whatever this computer gets back: the rep would
    believe opens are seen when none ever will be (docs/rules.md, "The tracking domain").
    """
    base = enrollment.server_url
    domain = check_tracking_url(base, sender_domain)
    url = TrackingUrls(enrollment).pixel(new_message_key(), None)
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return TrackingCheck(
            False,
            f"The tracking server at {base} did not answer ({reason}). With the embedded "
            "server, MailBeacon must be running; a remote server must be reachable at "
            "that address.",
        )
    elapsed_ms = (time.perf_counter() - started) * 1000
    answered = _judge(base, response, elapsed_ms)
    if not domain.reachable_by_recipients:
        said = "This computer got the pixel, but" if answered.ok else "And"
        return TrackingCheck(False, f"{said} {domain.sentences()[0]}")
    if answered.ok and domain.problems:
        advice = " ".join(domain.sentences())
        return TrackingCheck(True, f"{answered.message} {advice}")
    return answered


def _judge(base: str, response: httpx.Response, elapsed_ms: float) -> TrackingCheck:
    """Did the answer look like the pixel (200, image/gif, GIF bytes)?"""
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if (
        response.status_code == 200
        and content_type == "image/gif"
        and response.content.startswith(b"GIF")
    ):
        return TrackingCheck(
            True,
            f"Tracking works: {base} answered with the pixel (200 image/gif) "
            f"in {elapsed_ms:.0f} ms.",
        )
    return TrackingCheck(
        False,
        f"{base} answered {response.status_code} {content_type or '(no type)'} instead of "
        "the pixel (200 image/gif). Is that address really your MailBeacon tracking server?",
    )
