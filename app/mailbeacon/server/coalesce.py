"""A transport that sends everything one event-loop turn writes in one system call.

uvicorn writes a response's head and body separately, so every pixel answer would
cost two ``send`` calls and, with Nagle off, two TCP segments (two wake-ups for the
client too). Wrapped in this, the writes of one turn are joined and sent once, at the
end of that turn; nothing waits longer than the current turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


class CoalescingTransport(asyncio.Transport):
    """Delegates to ``transport``; writes are gathered and flushed by ``loop.call_soon``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes | bytearray | memoryview] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; it is sent at the end of this loop turn."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Queue several buffers."""
        for data in list_of_data:
            self.write(data)

    def write_now(self, data: bytes) -> None:
        """Send ``data`` now, after anything queued (one write to the real transport):
        for a response that is whole, waiting for the end of the turn gains nothing."""
        if self._pending:
            self._pending.append(data)
            self.flush()
        elif not self._transport.is_closing():
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is queued now (one write to the real transport)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return  # the peer is gone: nothing to send it
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what is queued, then half-close."""
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        """Drop what is queued and close at once."""
        self._pending = []
        self._transport.abort()

    # The rest is plain delegation (asyncio.Transport's own methods only raise).

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        queued = sum(len(data) for data in self._pending)
        return self._transport.get_write_buffer_size() + queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)
