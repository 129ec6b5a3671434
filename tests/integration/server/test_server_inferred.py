"""docs/rules.md rule 6 on the server: a person's click with no counting open records one."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    CHROME,
    RECIPIENT,
    Mail,
    new_mail,
    next_event,
    query,
    recipient,
    subscribed,
)

TARGET = "https://example.com/pricing"


async def _events_until(stream: ClientConnection, sentinel: Mail) -> list[dict[str, Any]]:
    """Every event up to and including the sentinel's open (bounded by the wait)."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["message"] != sentinel.message:
        events.append(await next_event(stream))
    return events[:-1]


async def _sentinel(client: Any, alice: Enrollment) -> Mail:
    mail = new_mail(alice)
    await client.get(mail.pixel())
    return mail


async def test_a_click_with_no_open_records_an_inferred_open_just_before_it(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        response = await client.get(mail.click(TARGET))
        events = await _events_until(stream, await _sentinel(client, alice))
    assert response.status_code == 302
    opened, click = events
    assert (opened["type"], opened["inferred"], click["type"]) == ("open", True, "click")
    assert opened["id"] == click["id"] - 1  # stored together, the open first
    assert (opened["verdict"], opened["reason"], opened["counts"]) == (
        "human", "inferred from a click", True
    )
    for field in ("message", "recipient", "at", "ip", "user_agent"):
        assert opened[field] == click[field], field
    assert (opened["ip"], opened["user_agent"]) == (RECIPIENT, CHROME)
    assert opened["link"] is None and opened["url"] is None
    assert click["inferred"] is False


async def test_a_click_after_a_counting_open_infers_nothing(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await client.get(mail.pixel())
        await client.get(mail.click(TARGET))
        # Another browser: the same one again within a minute is a repeat, counted.
        await client.get(mail.click(TARGET), headers={"User-Agent": CHROME + " Edg/131"})
        events = await _events_until(stream, await _sentinel(client, alice))
    assert [(e["type"], e["inferred"]) for e in events] == [
        ("open", False), ("click", False), ("click", False)
    ]


async def test_only_the_first_counting_click_infers_an_open(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await client.get(mail.click(TARGET))
        await client.get(mail.click(TARGET), headers={"User-Agent": CHROME + " Edg/131"})
        events = await _events_until(stream, await _sentinel(client, alice))
    assert [(e["type"], e["inferred"]) for e in events] == [
        ("open", True), ("click", False), ("click", False)
    ]


async def test_a_bot_click_infers_no_open(server: TrackingServer, alice: Enrollment) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream:
        async with recipient(headers={"User-Agent": "curl/8.5.0"}) as script:
            await script.get(mail.click(TARGET))
        async with recipient() as person:
            await person.get(mail.click(TARGET, minted_ago=1))  # faster than a person
            events = await _events_until(stream, await _sentinel(person, alice))
    assert [(e["type"], e["verdict"]) for e in events] == [("click", "bot"), ("click", "bot")]


async def test_an_open_that_does_not_count_still_leaves_a_click_to_infer_one(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream:
        async with recipient(headers={"User-Agent": "Mozilla/5.0"}) as apple_prefetch:
            await apple_prefetch.get(mail.pixel())
        async with recipient() as person:
            await person.get(mail.click(TARGET))
            events = await _events_until(stream, await _sentinel(person, alice))
    assert [(e["type"], e["verdict"], e["inferred"]) for e in events] == [
        ("open", "proxy", False), ("open", "human", True), ("click", "human", False)
    ]


async def test_each_recipient_needs_an_open_of_their_own(
    server: TrackingServer, alice: Enrollment
) -> None:
    first = new_mail(alice)
    second = Mail(alice, first.message, tokens.new_recipient_key())  # same email, another person
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await client.get(first.pixel())
        await client.get(second.click(TARGET))
        events = await _events_until(stream, await _sentinel(client, alice))
    assert [(e["type"], e["recipient"], e["inferred"]) for e in events] == [
        ("open", first.recipient, False),
        ("open", second.recipient, True),
        ("click", second.recipient, False),
    ]


async def test_the_inferred_open_is_stored_like_any_event(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with recipient() as client:
        await client.get(mail.click(TARGET))
    rows = query(server.config.db_path, "SELECT type, inferred, counts FROM events ORDER BY id")
    assert rows == [("open", 1, 1), ("click", 0, 1)]
