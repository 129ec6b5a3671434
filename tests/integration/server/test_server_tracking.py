"""Tracking server over real sockets: pixel, click redirect, claim, verdicts
(docs/interfaces.md)."""

from __future__ import annotations

import ipaddress
import secrets
import time
from datetime import datetime
from pathlib import Path

import pytest

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.pixel import GIF
from mailbeacon.server.config import PostgresUrl
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    CHROME,
    RECIPIENT,
    claim_url,
    get,
    new_mail,
    next_event,
    next_message,
    raw_request,
    recipient,
    running_server,
    subscribed,
)

TARGET = "https://example.com/pricing?plan=team#faq"


async def test_an_open_reaches_its_reps_stream_with_every_field(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        response = await client.get(mail.pixel())
        event = await next_event(stream)
    assert response.status_code == 200
    assert event["type"] == "open"
    assert event["message"] == mail.message
    assert event["recipient"] == mail.recipient
    assert event["ip"] == RECIPIENT
    assert event["user_agent"] == CHROME
    assert event["verdict"] == "human"
    assert event["reason"]
    assert event["inferred"] is False
    assert event["link"] is None and event["url"] is None
    assert isinstance(event["id"], int) and event["id"] > 0
    assert event["at"].endswith("Z")
    assert abs(time.time() - _parse_at(event["at"])) < 60


def _parse_at(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


async def test_events_go_to_their_own_rep_only(
    server: TrackingServer, alice: Enrollment, bob: Enrollment
) -> None:
    alice_mail, bob_mail = new_mail(alice), new_mail(bob)
    async with (
        subscribed(server, alice.api_token) as alice_stream,
        subscribed(server, bob.api_token) as bob_stream,
        recipient() as client,
    ):
        await client.get(bob_mail.pixel())
        assert (await next_event(bob_stream))["message"] == bob_mail.message
        await client.get(alice_mail.pixel())
        # Alice's first message is her own open: Bob's never reached her stream.
        assert (await next_event(alice_stream))["message"] == alice_mail.message


async def test_pixel_is_the_gif_and_forbids_caching(
    server: TrackingServer, alice: Enrollment
) -> None:
    async with recipient() as client:
        response = await client.get(new_mail(alice).pixel())
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == GIF and len(GIF) == 43
    cache_control = response.headers["cache-control"]
    assert "no-store" in cache_control and "no-cache" in cache_control
    assert "max-age=0" in cache_control


async def test_click_redirects_to_exactly_its_target_and_is_recorded(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        response = await client.get(mail.click(TARGET, link=2))
        opened, event = await next_event(stream), await next_event(stream)
    assert (opened["type"], opened["inferred"]) == ("open", True)  # rule 6
    assert response.status_code == 302
    assert response.headers["location"] == TARGET
    assert "no-store" in response.headers["cache-control"]
    assert event["type"] == "click"
    assert (event["message"], event["link"], event["url"]) == (mail.message, 2, TARGET)
    assert event["verdict"] == "human"


async def test_a_shared_pixel_has_no_recipient(server: TrackingServer, alice: Enrollment) -> None:
    mail = new_mail(alice, recipient=False)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await client.get(mail.pixel())
        assert (await next_event(stream))["recipient"] is None


def _forgeries(alice: Enrollment, bob: Enrollment) -> dict[str, str]:
    """Tokens that must never count for Alice (or anyone)."""
    mail = new_mail(alice)
    now = int(time.time()) - 3600
    good = tokens.mint_open(alice.signing_key, alice.user_id, mail.message, None, now)
    tampered = good[:20] + ("A" if good[20] != "A" else "B") + good[21:]
    stranger_key = tokens.derive_signing_key(b"another server's secret", alice.user_id)
    return {
        "tampered": tampered,
        "truncated": good[:-3],
        "extended": good + "AA",
        "signed by another server": tokens.mint_open(
            stranger_key, alice.user_id, mail.message, None, now
        ),
        "bob's key, alice's id": tokens.mint_open(
            bob.signing_key, alice.user_id, mail.message, None, now
        ),
        "unknown user": tokens.mint_open(secrets.token_bytes(32), 4242, mail.message, None, now),
        "garbage": "not-a-token",
        "padding": good + "==",
        "click token": mail.click_token(TARGET),
        "claim token": tokens.mint_claim(alice.signing_key, alice.user_id, now),
    }


async def test_forged_and_damaged_tokens_record_nothing(
    server: TrackingServer, alice: Enrollment, bob: Enrollment
) -> None:
    forgeries = _forgeries(alice, bob)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        for name, token in forgeries.items():
            pixel = await client.get(f"{alice.server_url}/o/{token}.gif")
            assert (pixel.status_code, pixel.content) == (200, GIF), name
            if name != "click token":
                click = await client.get(f"{alice.server_url}/c/{token}")
                assert click.status_code == 404, name
                assert "location" not in click.headers, name
        sentinel = new_mail(alice)
        await client.get(sentinel.pixel())
        first = await next_event(stream)
    # The first event ever stored is the sentinel: none of the forgeries counted.
    assert first["message"] == sentinel.message
    assert first["id"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/c//evil.example",
        "/c/https://evil.example/",
        "/c/%2F%2Fevil.example",
        "/c/..%2F..%2Fevil.example",
        "/c/%5C%5Cevil.example",
        "/c/",
        "/c/?url=https://evil.example",
        "/c/?next=//evil.example",
    ],
)
async def test_click_paths_without_a_genuine_token_never_redirect(
    server: TrackingServer, path: str
) -> None:
    status, headers, _ = await raw_request(server.port, get(path))
    assert status == 404
    assert "location" not in headers


async def test_a_genuine_token_cannot_be_steered_elsewhere(
    server: TrackingServer, alice: Enrollment
) -> None:
    token = new_mail(alice).click_token(TARGET, link=1)
    open_token = new_mail(alice).pixel().rsplit("/", 1)[1].removesuffix(".gif")
    steered = [
        (f"/c/{token}?url=https://evil.example", ""),
        (f"/c/{token}?redirect=//evil.example&next=https://evil.example", ""),
        (f"/c/{token}", "X-Forwarded-Host: evil.example\r\n"),
        (f"/c/{token}", "Referer: https://evil.example/\r\n"),
    ]
    for path, extra in steered:
        status, headers, _ = await raw_request(server.port, get(path, extra))
        assert (status, headers.get("location")) == (302, TARGET), path
    broken = [
        f"/c/{token}/../x",
        f"/c/{token}/",
        f"/c/{token}%2F..%2Fevil.example",
        f"/c/{token}/https://evil.example",
        f"/c/{token}%00",
        f"/c/{token}.gif",
        f"/c/{open_token}",
        f"/c/{token[:-1]}",
    ]
    for path in broken:
        status, headers, _ = await raw_request(server.port, get(path))
        assert status == 404, path
        assert "location" not in headers, path


async def test_backslash_and_control_tricks_never_redirect(server: TrackingServer) -> None:
    for path in ["/c/\\\\evil.example", "/c/%0d%0aLocation:%20https://evil.example"]:
        status, headers, _ = await raw_request(server.port, get(path))
        assert status in (400, 404), path
        assert "location" not in headers, path


async def test_targets_that_are_not_web_links_are_refused(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with recipient() as client:
        for target in ["javascript:alert(1)", "data:text/html,hi", "//evil.example", "ftp://x"]:
            response = await client.get(mail.click(target))
            assert response.status_code == 404, target
            assert "location" not in response.headers


async def test_a_target_with_line_breaks_cannot_inject_headers(
    server: TrackingServer, alice: Enrollment
) -> None:
    target = "https://example.com/a\r\nSet-Cookie: owned=1"
    async with recipient() as client:
        response = await client.get(new_mail(alice).click(target))
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/a%0D%0ASet-Cookie:%20owned=1"
    assert "set-cookie" not in response.headers


async def test_a_target_with_a_nul_from_an_older_agent_is_redirected_and_stored(
    server: TrackingServer, alice: Enrollment
) -> None:
    # Agents before 0.3.1 minted such links; PostgreSQL stores no text with a NUL.
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        response = await client.get(mail.click("https://example.com/a\x00b", link=1))
        opened, event = await next_event(stream), await next_event(stream)
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/a%00b"
    assert (opened["type"], event["type"]) == ("open", "click")
    assert event["url"] == "https://example.com/a%00b"


async def test_head_is_answered_and_stored_as_a_bot(
    server: TrackingServer, alice: Enrollment
) -> None:
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        response = await client.head(new_mail(alice).pixel())
        event = await next_event(stream)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["content-length"] == "43"
    assert response.content == b""
    assert event["type"] == "open"
    assert event["verdict"] == "bot"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_on_tracking_paths_are_refused(
    server: TrackingServer, alice: Enrollment, method: str
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        for url in [mail.pixel(), mail.click(TARGET), claim_url(alice)]:
            response = await client.request(method, url)
            assert response.status_code == 405, url
            assert response.headers["allow"] == "GET, HEAD"
        sentinel = new_mail(alice)
        await client.get(sentinel.pixel())
        assert (await next_event(stream))["message"] == sentinel.message


async def test_healthz(server: TrackingServer) -> None:
    async with recipient() as client:
        response = await client.get(f"{server.url}/healthz")
        required = await client.get(f"{server.url}/healthz?database=required")
    assert response.status_code == required.status_code == 200
    if isinstance(server.config.db_path, PostgresUrl):
        # For load balancers: whether PostgreSQL answers this instance.
        assert response.json() == {"status": "ok", "database": "ok"}
    else:
        assert response.json() == {"status": "ok"}


async def test_a_claimed_browser_makes_self_clicks(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with (
        subscribed(server, alice.api_token) as stream,
        recipient() as reps_browser,
        recipient() as someone_else,
    ):
        page = await reps_browser.get(claim_url(alice))
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "marked as yours" in page.text
        cookie = page.headers["set-cookie"]
        assert cookie.startswith(f"mb_self_{alice.user_id}=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie

        await reps_browser.get(mail.click(TARGET))
        own = await next_event(stream)
        await someone_else.get(mail.click(TARGET, link=1))
        theirs = await next_event(stream)
    assert own["verdict"] == "self"
    assert theirs["verdict"] == "human"


async def test_a_forged_claim_cookie_counts_for_nothing(
    server: TrackingServer, alice: Enrollment
) -> None:
    cookie = {"Cookie": f"mb_self_{alice.user_id}=abc.0123456789abcdef0123456789abcdef"}
    async with subscribed(server, alice.api_token) as stream, recipient(headers=cookie) as client:
        await client.get(new_mail(alice).click(TARGET))
        assert (await next_event(stream))["verdict"] == "human"


async def test_another_reps_claim_does_not_make_my_hits_self(
    server: TrackingServer, alice: Enrollment, bob: Enrollment
) -> None:
    async with subscribed(server, alice.api_token) as stream, recipient() as bobs_browser:
        assert (await bobs_browser.get(claim_url(bob))).status_code == 200
        await bobs_browser.get(new_mail(alice).click(TARGET))
        assert (await next_event(stream))["verdict"] == "human"


async def test_an_invalid_claim_sets_no_cookie(server: TrackingServer, alice: Enrollment) -> None:
    async with recipient() as client:
        for token in ["nope", new_mail(alice).click_token(TARGET)]:
            response = await client.get(f"{server.url}/claim/{token}")
            assert response.status_code == 404
            assert "set-cookie" not in response.headers


async def test_hits_from_the_address_the_reps_agent_streams_from_are_self(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    agent_address = "127.0.0.7"
    async with (
        subscribed(server, alice.api_token, local_address=agent_address) as stream,
        recipient(agent_address) as reps_mail_client,
        recipient() as client,
    ):
        await reps_mail_client.get(mail.pixel())
        own = await next_event(stream)
        await client.get(mail.pixel())
        theirs = await next_event(stream)
    assert (own["ip"], own["verdict"]) == (agent_address, "self")
    assert (theirs["ip"], theirs["verdict"]) == (RECIPIENT, "human")


async def test_the_honeypot_link_is_a_bot_and_revises_that_address(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as scanner:
        await scanner.get(mail.click(TARGET, link=0))
        opened, first = await next_event(stream), await next_event(stream)
        await scanner.get(mail.click("https://example.com/hidden", link=tokens.HONEYPOT_LINK))
        honeypot = await next_message(stream)
        revisions = [await next_message(stream) for _ in range(2)]
    assert (opened["inferred"], first["type"], first["verdict"]) == (True, "click", "human")
    assert (honeypot["type"], honeypot["link"], honeypot["verdict"]) == (
        "click",
        tokens.HONEYPOT_LINK,
        "bot",
    )
    # The click and the open it implied are both withdrawn.
    assert [(r["type"], r["id"], r["verdict"]) for r in revisions] == [
        ("revise", opened["id"], "bot"),
        ("revise", first["id"], "bot"),
    ]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    server: TrackingServer, alice: Enrollment
) -> None:
    forged = {"X-Forwarded-For": "203.0.113.5", "Forwarded": "for=203.0.113.5"}
    async with subscribed(server, alice.api_token) as stream, recipient(headers=forged) as client:
        await client.get(new_mail(alice).pixel())
        assert (await next_event(stream))["ip"] == RECIPIENT


async def test_forwarded_for_from_a_trusted_proxy_is_honoured(tmp_path: Path) -> None:
    proxy = "127.0.0.8"
    trusted = (ipaddress.ip_network(f"{proxy}/32"),)
    async with running_server(tmp_path / "server.db", trusted_proxies=trusted) as server:
        alice = await server.add_user("alice")
        cases = [
            (proxy, "198.51.100.7, 203.0.113.5", "203.0.113.5"),  # right-most untrusted hop
            (proxy, "198.51.100.7, 127.0.0.8", "198.51.100.7"),  # trusted hops are skipped
            (proxy, "not-an-address", proxy),  # unreadable: believe only the proxy
            (RECIPIENT, "203.0.113.5", RECIPIENT),  # not a proxy: header ignored
        ]
        async with subscribed(server, alice.api_token) as stream:
            for peer, header, expected in cases:
                async with recipient(peer, headers={"X-Forwarded-For": header}) as client:
                    await client.get(new_mail(alice).pixel())
                assert (await next_event(stream))["ip"] == expected, header


async def test_a_long_user_agent_is_stored_capped(
    server: TrackingServer, alice: Enrollment
) -> None:
    agent = CHROME + " x" * 2000
    async with (
        subscribed(server, alice.api_token) as stream,
        recipient(headers={"User-Agent": agent}) as client,
    ):
        await client.get(new_mail(alice).pixel())
        event = await next_event(stream)
    assert event["user_agent"] == agent[:1024]


DAY = 86400


async def test_a_click_token_older_than_its_max_age_gets_the_forged_tokens_404(
    server: TrackingServer, alice: Enrollment
) -> None:
    # docs/rules.md rule 4: a link quoted or forwarded for years stops redirecting
    # (ServerConfig.click_token_max_days, default 730).
    mail = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        expired = await client.get(mail.click(TARGET, minted_ago=731 * DAY))
        assert expired.status_code == 404
        assert "location" not in expired.headers
        fresh = await client.get(mail.click(TARGET, link=1, minted_ago=729 * DAY))
        assert (fresh.status_code, fresh.headers["location"]) == (302, TARGET)
        opened, clicked = await next_event(stream), await next_event(stream)
    assert (opened["type"], opened["inferred"]) == ("open", True)
    assert (clicked["type"], clicked["link"]) == ("click", 1)  # the expired one left no trace
