"""Reads from the store off the event loop, on connections of their own.

A small pool (``ServerConfig.pool_size``): each read takes a free connection on a
worker thread, so stream backlogs and token lookups run side by side (SQLite's WAL
readers never wait for the writer; PostgreSQL serves each connection in its own
process).
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Sequence
from typing import TypeVar

from mailbeacon.server.store import Store, StreamItem, UserRecord

T = TypeVar("T")


class Reader:
    """Async reads over a pool of store connections."""

    def __init__(self, stores: Store | Sequence[Store]) -> None:
        self._stores = [stores] if not isinstance(stores, Sequence) else list(stores)
        self._free: queue.SimpleQueue[Store] = queue.SimpleQueue()
        for store in self._stores:
            self._free.put(store)

    @property
    def size(self) -> int:
        """How many connections the pool holds."""
        return len(self._stores)

    async def run(self, call: Callable[[Store], T]) -> T:
        """Run ``call`` on a free connection, on a worker thread."""

        def on_a_connection() -> T:
            store = self._free.get()
            try:
                try:
                    return call(store)
                except Exception:
                    if not store.unreachable():
                        raise
                    # The connection was lost (PostgreSQL restarted): a read is safe to
                    # try once more, on a new connection.
                    return call(store)
            finally:
                self._free.put(store)

        return await asyncio.to_thread(on_a_connection)

    async def get_user(self, user_id: int) -> UserRecord | None:
        """The user with this id, or None."""
        return await self.run(lambda s: s.get_user(user_id))

    async def user_by_token_hash(self, token_hash: str) -> UserRecord | None:
        """The user an API token hash belongs to, or None."""
        return await self.run(lambda s: s.user_by_token_hash(token_hash))

    async def stream_page(self, user_id: int, after: int, limit: int) -> list[StreamItem]:
        """One page of the user's stream after ``after``."""
        return await self.run(lambda s: s.stream_page(user_id, after, limit))

    async def identity(self) -> tuple[str, int, int]:
        """The database's (identity, generation, id floor) for the stream's ``hello``."""
        return await self.run(lambda s: s.identity())

    def close(self) -> None:
        """Release the connections (call once no read runs any more)."""
        for store in self._stores:
            store.close()
