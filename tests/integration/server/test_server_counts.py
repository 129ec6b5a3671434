"""Whether a hit counts as a person's, and the proxy it came through, reach the stream."""

from __future__ import annotations

import pytest

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    new_mail,
    next_event,
    next_message,
    query,
    recipient,
    subscribed,
)

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
APPLE_MPP = "Mozilla/5.0"


def _stored(server: TrackingServer, event_id: int) -> tuple[object, ...]:
    rows = query(server.config.db_path, "SELECT verdict, counts, via FROM events WHERE id = ?",
                 (event_id,))
    return rows[0]


@pytest.mark.parametrize(
    ("agent", "verdict", "counts", "via"),
    [
        (GMAIL_PROXY, "proxy", True, "Gmail"),  # a person opened it in Gmail
        (APPLE_MPP, "proxy", False, "Apple Mail Privacy Protection"),  # prefetch: maybe not
        ("curl/8.5.0", "bot", False, None),
    ],
    ids=["gmail image proxy", "apple mpp", "script"],
)
async def test_an_open_says_whether_it_counts_and_through_which_proxy(
    server: TrackingServer, alice: Enrollment, agent: str, verdict: str, counts: bool,
    via: str | None,
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient(
        headers={"User-Agent": agent}
    ) as client:
        await client.get(mail.pixel())
        event = await next_event(stream)
    assert (event["verdict"], event["counts"], event["via"]) == (verdict, counts, via)
    assert _stored(server, event["id"]) == (verdict, int(counts), via)


async def test_a_browser_open_counts_with_no_proxy(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await client.get(mail.pixel())
        event = await next_event(stream)
    assert (event["verdict"], event["counts"], event["via"]) == ("human", True, None)


async def test_an_event_revised_to_bot_no_longer_counts(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as scanner:
        await scanner.get(mail.pixel())
        opened = await next_event(stream)
        await scanner.get(mail.click("https://example.com/hidden", link=tokens.HONEYPOT_LINK))
        trap = await next_message(stream)
        revise = await next_message(stream)
    assert opened["counts"] is True
    assert (trap["verdict"], trap["counts"]) == ("bot", False)
    assert revise == {
        "type": "revise",
        "id": opened["id"],
        "verdict": "bot",
        "reason": revise["reason"],
        "counts": False,
    }
    assert _stored(server, opened["id"]) == ("bot", 0, None)
    async with subscribed(server, alice.api_token) as stream:  # the backlog says the same
        backlog = [await next_message(stream) for _ in range(3)]
    assert backlog[0]["counts"] is False
    assert backlog[2] == revise
