"""The coalescing transport: one write per loop turn, nothing reordered or lost."""

from __future__ import annotations

import asyncio
from typing import Any

from mailbeacon.server.coalesce import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """A transport that remembers each write (a real socket pair is used elsewhere)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def write_eof(self) -> None:
        self.events.append("eof")

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.9", 4321)}.get(name, default)


async def _turn() -> None:
    await asyncio.sleep(0)


async def test_the_writes_of_one_turn_go_out_as_one() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.writelines([b"GIF", b"89a"])
    assert real.writes == []
    assert transport.get_write_buffer_size() == 25
    await _turn()
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nGIF89a"]
    transport.write(b"next")
    await _turn()
    assert real.writes[1:] == [b"next"]


async def test_close_and_eof_send_what_is_queued_first() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"a")
    transport.write_eof()
    transport.write(b"b")
    transport.close()
    await _turn()
    assert (real.writes, real.events) == ([b"a", b"b"], ["eof", "close"])


async def test_abort_drops_the_queue_and_a_gone_peer_gets_nothing() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"dropped")
    transport.abort()
    await _turn()
    assert real.writes == []
    other = RecordingTransport()
    late = CoalescingTransport(other, asyncio.get_running_loop())
    late.write(b"too late")
    other.closing = True  # the connection was lost before the turn ended
    await _turn()
    assert other.writes == []


async def test_everything_else_is_the_real_transports() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.9", 4321)
    assert transport.get_extra_info("sockname", "none") == "none"
    assert not transport.is_closing()
