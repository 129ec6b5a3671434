"""Blocking calls on worker threads: stopping waits for the one in flight before the
connection it uses is closed (server/threads.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from mailbeacon.server.fanout import Fanout
from mailbeacon.server.store import Store
from mailbeacon.server.stores import open_store
from mailbeacon.server.team_service import TeamService
from mailbeacon.server.threads import in_thread

WAIT = 5.0  # seconds: a bound, never a pause


async def test_a_cancelled_wait_ends_only_after_the_call_has_returned() -> None:
    entered, gate, returned = threading.Event(), threading.Event(), threading.Event()

    def call(value: int) -> int:
        entered.set()
        gate.wait(WAIT)
        returned.set()
        return value

    task = asyncio.ensure_future(in_thread(call, 7))
    assert await asyncio.to_thread(entered.wait, WAIT)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=0.1)
    assert not done  # still waiting for the thread
    task.cancel()  # and a second cancellation does not end the wait either
    done, _ = await asyncio.wait({task}, timeout=0.1)
    assert not done
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert returned.is_set()


async def test_the_call_s_result_and_error_come_back() -> None:
    def fail() -> None:
        raise ValueError("no")

    assert await in_thread(sum, [1, 2, 3]) == 6
    with pytest.raises(ValueError, match="no"):
        await in_thread(fail)


class _GatedStore:
    """A real SQLite store whose policy-version read waits for a gate once armed, and
    which notes the order of reads and the close."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.armed = False
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.order: list[str] = []

    def get_meta(self, key: str) -> str | None:
        if self.armed:
            self.entered.set()
            self.gate.wait(WAIT)
            self.order.append("read")
        return self._store.get_meta(key)

    def close(self) -> None:
        self.order.append("close")
        self._store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_stopping_the_policy_watch_closes_its_connection_after_the_poll(
    tmp_path: Path,
) -> None:
    store = _GatedStore(open_store(tmp_path / "server.db"))
    team = TeamService(store, check_seconds=0.001)  # type: ignore[arg-type]
    store.armed = True
    team.start(Fanout())
    assert await asyncio.to_thread(store.entered.wait, WAIT)
    stopping = asyncio.ensure_future(team.stop())
    done, _ = await asyncio.wait({stopping}, timeout=0.1)
    assert not done
    store.gate.set()
    await stopping
    assert store.order == ["read", "close"]
