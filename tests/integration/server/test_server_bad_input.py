"""Bad input gets a clear 4xx (or the pixel) and changes nothing; never a 5xx (docs/promises.md)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.pixel import GIF
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import (
    CHROME,
    get,
    new_mail,
    next_event,
    raw_request,
    recipient,
    subscribed,
)


def _asgi_client(server: TrackingServer) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=server.app, client=("127.0.0.9", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://tracking.test")


fuzz = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
tokens_as_text = st.text(max_size=300)
tokens_as_bytes = st.binary(max_size=300)


@fuzz
@given(text=tokens_as_text, raw=tokens_as_bytes)
async def test_any_token_on_the_pixel_gets_the_gif(
    server: TrackingServer, text: str, raw: bytes
) -> None:
    async with _asgi_client(server) as client:
        for token in (quote(text, safe=""), quote_from_bytes(raw, safe="")):
            response = await client.get(f"/o/{token}.gif")
            assert (response.status_code, response.content) == (200, GIF)


@fuzz
@given(text=tokens_as_text, raw=tokens_as_bytes)
async def test_any_token_on_a_link_gets_404_and_no_redirect(
    server: TrackingServer, text: str, raw: bytes
) -> None:
    async with _asgi_client(server) as client:
        for token in (quote(text, safe=""), quote_from_bytes(raw, safe="")):
            for prefix in ("/c/", "/claim/"):
                response = await client.get(prefix + token)
                assert response.status_code == 404
                assert "location" not in response.headers
                assert "set-cookie" not in response.headers


@fuzz
@given(path=st.text(max_size=200), method=st.sampled_from(["GET", "HEAD", "POST", "PUT"]))
async def test_any_path_and_method_gets_a_non_5xx_answer(
    server: TrackingServer, path: str, method: str
) -> None:
    async with _asgi_client(server) as client:
        response = await client.request(method, "/" + quote(path, safe="/"))
    assert response.status_code < 500
    assert b"Traceback" not in response.content


async def test_fuzzing_recorded_nothing(server: TrackingServer, alice: Enrollment) -> None:
    async with _asgi_client(server) as client:
        for junk in ["", "%00", "A" * 5000, "..", "%2F%2F", "\u202e", "AQAAAAAB" * 9]:
            await client.get(f"/o/{junk}.gif")
            await client.get(f"/c/{junk}")
    sentinel = new_mail(alice)
    async with subscribed(server, alice.api_token) as stream, recipient() as client:
        await client.get(sentinel.pixel())
        first = await next_event(stream)
    assert (first["id"], first["message"]) == (1, sentinel.message)


async def test_a_10_kb_path_is_answered_without_error(server: TrackingServer) -> None:
    long = "A" * 10_240
    status, headers, body = await raw_request(server.port, get(f"/o/{long}.gif"))
    assert (status, body) == (200, GIF)
    status, headers, _ = await raw_request(server.port, get(f"/c/{long}"))
    assert status == 404 and "location" not in headers


async def test_an_absurd_path_is_refused_with_414(server: TrackingServer) -> None:
    status, _, body = await raw_request(server.port, get("/o/" + "A" * 200_000 + ".gif"))
    assert status == 414
    assert b"Traceback" not in body


@pytest.mark.parametrize(
    "extra",
    [
        "X-Big: " + "a" * 60_000 + "\r\n",
        "Cookie: " + "c=" + "x" * 60_000 + "\r\n",
        "".join(f"X-H{i}: v\r\n" for i in range(500)),
        "User-Agent: " + "Mozilla " * 10_000 + "\r\n",
    ],
    ids=["one huge header", "huge cookie", "many headers", "huge user agent"],
)
async def test_huge_headers_are_refused_with_431(server: TrackingServer, extra: str) -> None:
    status, _, body = await raw_request(server.port, get("/o/x.gif", extra))
    assert status == 431
    assert b"Traceback" not in body
    async with recipient() as client:  # and the server is fine
        assert (await client.get(f"{server.url}/healthz")).status_code == 200


async def test_a_header_that_never_ends_is_cut_off(server: TrackingServer) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=("127.0.0.9", 0)
    )
    try:
        writer.write(b"GET /o/x.gif HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        chunk = b"z" * 16_384
        for _ in range(64):  # 1 MB, never finished
            if reader.at_eof():
                break
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                break
        async with asyncio.timeout(5):
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_malformed_requests_get_400_not_500(server: TrackingServer) -> None:
    for request in [
        b"GET /o/\xff\xfe.gif HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /o/x.gif HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET /o/x.gif HTTP/1.1\r\nBad Header\r\n\r\n",
    ]:
        status, _, body = await raw_request(server.port, request)
        assert 400 <= status < 500, request
        assert b"Traceback" not in body


async def test_odd_bytes_in_headers_of_a_real_hit_are_stored_readably(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    path = mail.pixel().split("127.0.0.1", 1)[1].split("/", 1)[1]
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: t\r\n".encode()
        + b"User-Agent: " + CHROME.encode() + b" \xe9\xff\r\n"
        + b"Cookie: mb_self_1=\xff\xfe.zz; ;;=\r\n\r\n"
    )
    async with subscribed(server, alice.api_token) as stream:
        status, _, body = await raw_request(server.port, request)
        event = await next_event(stream)
    assert (status, body) == (200, GIF)
    assert event["user_agent"].startswith(CHROME)
    assert event["verdict"] != "self"


@pytest.mark.parametrize(
    "after", ["-5", "99999999999999999999999999", "1e3", "", "0x10", "%00"]
)
async def test_odd_after_values_never_break_the_stream(
    server: TrackingServer, alice: Enrollment, after: str
) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1/stream?after={after}"
    auth = {"Authorization": f"Bearer {alice.api_token}"}
    try:
        async with connect(url, additional_headers=auth, open_timeout=5) as stream:
            await stream.ping()
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
