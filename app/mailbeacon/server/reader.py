"""Reads from the store off the event loop, on a connection of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from mailbeacon.server.store import Store, StreamItem, UserRecord

T = TypeVar("T")


class Reader:
    """Async reads over one store connection (WAL: readers never wait for the writer)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()

    async def _run(self, call: Callable[[Store], T]) -> T:
        def locked() -> T:
            with self._lock:
                return call(self._store)

        return await asyncio.to_thread(locked)

    async def get_user(self, user_id: int) -> UserRecord | None:
        """The user with this id, or None."""
        return await self._run(lambda s: s.get_user(user_id))

    async def user_by_token_hash(self, token_hash: str) -> UserRecord | None:
        """The user an API token hash belongs to, or None."""
        return await self._run(lambda s: s.user_by_token_hash(token_hash))

    async def stream_page(self, user_id: int, after: int, limit: int) -> list[StreamItem]:
        """One page of the user's stream after ``after``."""
        return await self._run(lambda s: s.stream_page(user_id, after, limit))

    async def identity(self) -> tuple[str, int, int]:
        """The database's (identity, generation, id floor) for the stream's ``hello``."""
        return await self._run(lambda s: s.identity())

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            self._store.close()
