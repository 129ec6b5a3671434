"""The loopback redirect listener on a real socket: one answer, nothing else counts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import httpx
import pytest

from mailbeacon.agent.account.loopback import MAX_HEAD, LoopbackRedirect, page


def _thanks(params: Mapping[str, str]) -> tuple[int, str]:
    return 200, f"Thanks <{params.get('code', '')}> & bye."


async def test_only_a_get_of_the_callback_ends_the_wait() -> None:
    async with LoopbackRedirect(_thanks) as listener, httpx.AsyncClient(timeout=5) as http:
        assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
        posted = await http.post(listener.redirect_uri, data={"code": "x"})
        other = await http.get(listener.redirect_uri.replace("/callback", "/other?code=x"))
        waiting = asyncio.ensure_future(listener.wait())
        await asyncio.sleep(0)
        assert not waiting.done()

        answered = await http.get(listener.redirect_uri, params={"code": "c<1>", "state": ""})
        again = await http.get(listener.redirect_uri, params={"code": "c2"})

        assert await waiting == {"code": "c<1>", "state": ""}
    assert (posted.status_code, other.status_code, again.status_code) == (405, 404, 404)
    assert answered.status_code == 200
    assert '<p id="message">Thanks &lt;c&lt;1&gt;&gt; &amp; bye.</p>' in answered.text
    assert answered.headers["referrer-policy"] == "no-referrer"


async def test_a_connection_that_never_asks_does_not_hold_the_listener_open() -> None:
    async with asyncio.timeout(5):  # the listener's end does not wait for the silent one
        async with LoopbackRedirect(_thanks) as listener:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(b"GET /callback?code=")
            await writer.drain()
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""  # closed by the listener on its way out
        writer.close()


async def test_an_oversized_request_is_dropped_without_an_answer() -> None:
    async with LoopbackRedirect(_thanks) as listener:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET /callback?code=" + b"x" * (MAX_HEAD + 10) + b" HTTP/1.1\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        waiting = asyncio.ensure_future(listener.wait())
        await asyncio.sleep(0)
        assert not waiting.done()


async def test_wait_outside_the_block_is_a_mistake() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        await LoopbackRedirect(_thanks).wait()


def test_the_page_is_plain_text_in_html() -> None:
    assert "<script>" not in page("<script>alert(1)</script>")
