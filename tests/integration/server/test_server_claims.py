"""Browser claims on the real server: a claim link works once and for ten minutes; the
cookie it sets lasts 30 days from its last use (sliding), not 400 from one click.

docs/promises.md#isolation; server/claim.py.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import pytest

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server import claim
from mailbeacon.server.config import Database
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import new_mail, next_event, recipient, running_server, subscribed

SECRET = b"claims-test-secret-0123456789abcdef"
TARGET = "https://example.com/pricing"
DAY = 86400


@pytest.fixture
async def known(database: Database) -> AsyncIterator[TrackingServer]:
    """The real server with a secret the test knows (to make cookies of any age)."""
    async with running_server(database, secret=SECRET) as running:
        yield running


def _claim(server: TrackingServer, rep: Enrollment, minted_ago: int = 0) -> str:
    token = tokens.mint_claim(rep.signing_key, rep.user_id, int(time.time()) - minted_ago)
    return f"{server.url}/claim/{token}"


def _cookie(rep: Enrollment, issued_ago: int) -> dict[str, str]:
    value = claim.new_cookie_value(SECRET, rep.user_id, time.time() - issued_ago)
    return {"Cookie": f"{claim.cookie_name(rep.user_id)}={value}"}


async def test_a_claim_link_works_once(known: TrackingServer) -> None:
    rep = await known.add_user("alice")
    link = _claim(known, rep)
    async with recipient() as reps_browser, recipient() as someone_it_was_forwarded_to:
        first = await reps_browser.get(link)
        again = await someone_it_was_forwarded_to.get(link)
    assert first.status_code == 200 and "set-cookie" in first.headers
    assert again.status_code == 404 and "set-cookie" not in again.headers
    assert "works once" in again.text


@pytest.mark.parametrize(
    ("minted_ago", "status"),
    [(9 * 60, 200), (11 * 60, 404), (DAY, 404), (-30 * 60, 404)],
    ids=["9 minutes old", "11 minutes old", "a day old", "30 minutes in the future"],
)
async def test_a_claim_link_expires_ten_minutes_after_minting(
    known: TrackingServer, minted_ago: int, status: int
) -> None:
    rep = await known.add_user("alice")
    async with recipient() as browser:
        response = await browser.get(_claim(known, rep, minted_ago))
    assert response.status_code == status
    assert ("set-cookie" in response.headers) == (status == 200)


async def test_the_cookie_lasts_thirty_days_not_four_hundred(known: TrackingServer) -> None:
    rep = await known.add_user("alice")
    async with recipient() as browser:
        cookie = (await browser.get(_claim(known, rep))).headers["set-cookie"]
    assert f"Max-Age={30 * DAY};" in cookie
    assert f"Max-Age={400 * DAY}" not in cookie


@pytest.mark.parametrize(
    ("issued_ago", "verdict"),
    [(29 * DAY, "self"), (31 * DAY, "human")],
    ids=["used within 30 days", "unused for 31 days"],
)
async def test_a_claim_cookie_counts_until_thirty_days_after_its_last_renewal(
    known: TrackingServer, issued_ago: int, verdict: str
) -> None:
    rep = await known.add_user("alice")
    async with (
        subscribed(known, rep.api_token) as stream,
        recipient(headers=_cookie(rep, issued_ago)) as browser,
    ):
        response = await browser.get(new_mail(rep).click(TARGET))
        assert (await next_event(stream))["verdict"] == verdict
    # Used while valid: renewed in the answer (sliding expiry); expired: left to lapse.
    renewed = response.headers.get("set-cookie")
    if verdict == "self":
        assert renewed is not None and renewed.startswith(f"{claim.cookie_name(rep.user_id)}=")
        issued = int(renewed.split("=", 1)[1].split(".", 1)[0])
        assert abs(issued - time.time()) < 60
        assert f"Max-Age={30 * DAY}" in renewed
    else:
        assert renewed is None


async def test_a_renewed_cookie_keeps_the_browser_claimed(known: TrackingServer) -> None:
    rep = await known.add_user("alice")
    async with recipient(headers=_cookie(rep, 29 * DAY)) as old_browser:
        renewed = (await old_browser.get(new_mail(rep).pixel())).headers["set-cookie"]
    fresh = {"Cookie": renewed.split(";", 1)[0]}
    async with subscribed(known, rep.api_token) as stream, recipient(headers=fresh) as browser:
        await browser.get(new_mail(rep).click(TARGET))
        assert (await next_event(stream))["verdict"] == "self"


async def test_a_cookie_of_the_old_400_day_format_no_longer_counts(
    known: TrackingServer,
) -> None:
    # nonce.mac, signed as the first release did: valid for 400 days from one click.
    rep = await known.add_user("alice")
    nonce = "abcdefghijklmnop"
    message = b"mailbeacon-claim:%d:%s" % (rep.user_id, nonce.encode("ascii"))
    mac = hmac.new(SECRET, message, hashlib.sha256).hexdigest()[:32]
    old = {"Cookie": f"{claim.cookie_name(rep.user_id)}={nonce}.{mac}"}
    async with subscribed(known, rep.api_token) as stream, recipient(headers=old) as browser:
        response = await browser.get(new_mail(rep).click(TARGET))
        assert (await next_event(stream))["verdict"] == "human"
    assert "set-cookie" not in response.headers


async def test_no_claim_cookie_no_set_cookie(known: TrackingServer) -> None:
    rep = await known.add_user("alice")
    async with recipient(headers={"Cookie": "other=1"}) as browser:
        pixel = await browser.get(new_mail(rep).pixel())
        click = await browser.get(new_mail(rep).click(TARGET))
    assert "set-cookie" not in pixel.headers and "set-cookie" not in click.headers
