"""Several instances, one stream: every instance's events reach this one's subscribers.

On PostgreSQL several ``server serve`` instances share one database; a rep's agent
is connected to one of them, and a recipient's hit lands on any. The feed reads the
events table by id, in id order, from where it last was (``events_after``), and
hands what it read to the local fan-out. It reads:

* when this instance committed events that do not directly follow what it has read
  (another instance committed in between): the recorder wakes it. When they do
  directly follow it, and no read is in flight, they are published as committed
  without reading them back (one instance's usual case);
* when another instance did: a ``NOTIFY`` on :data:`~pg_store.CHANNEL`, sent inside
  the writer's transaction, wakes it. The payload is never trusted: the feed reads
  the database by id, so a forged or duplicated NOTIFY costs one read, no event.
  The NOTIFYs of this instance's own writer are skipped (told by the sending
  backend's process id, which the database sets): the recorder's hook has seen
  those commits already;
* every ``poll_seconds`` anyway: a NOTIFY lost while the listening connection was
  down costs at most that much latency, never an event. The listener reconnects by
  itself, LISTENs again and wakes the feed to catch up.

Ids are gap-free for readers (docs/architecture.md, "Event ids on PostgreSQL"), so
the feed's cursor never passes an event that commits later. A subscriber subscribes
before it reads its backlog and skips live messages at or below the backlog's last
id (stream.py), so what the feed delivers twice is sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import psycopg

from mailbeacon.server.fanout import Fanout
from mailbeacon.server.pg_store import CHANNEL, PgStore, conninfo
from mailbeacon.server.store import first_line
from mailbeacon.server.threads import in_thread

if TYPE_CHECKING:
    from mailbeacon.server.recorder import Recorded

log = logging.getLogger(__name__)

PAGE = 1000  # events per read
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0)  # the listener's back-off, then the last one


class Feed:
    """Reads every instance's events in id order and publishes them locally."""

    def __init__(self, store: PgStore, fanout: Fanout, poll_seconds: float) -> None:
        self._store = store
        self._fanout = fanout
        self._poll = poll_seconds
        self._wakeup = asyncio.Event()
        self._cursor = 0
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._reading = False  # a read is in flight: what it returns moves the cursor
        self.reads = 0
        self.published_directly = 0  # groups published without reading them back

    async def start(self) -> None:
        """Start after the events stored so far (subscribers get those as backlog)."""
        self._cursor = await asyncio.to_thread(self._store.max_event_id)
        self._task = asyncio.create_task(self._run(), name="mailbeacon-feed")

    def wake(self) -> None:
        """Read now (on the event loop's thread)."""
        self._wakeup.set()

    def wake_after(self, recorded: Sequence[Recorded]) -> None:
        """The recorder's hook: this instance committed ``recorded``.

        Ids are gap-free for readers, so events whose ids directly follow the cursor
        are all there is to read up to their last: publish them as committed (the
        same messages the SQLite server sends) instead of reading them back. Anything
        else (another instance's ids in between, a read in flight that will move the
        cursor) is read from the database, in id order.
        """
        if not self._reading and _directly_after(self._cursor, recorded):
            self._fanout.publish(list(recorded))
            self._cursor = recorded[-1].id
            self.published_directly += 1
            return
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wakeup.wait()
            self._wakeup.clear()
            self._reading = True
            try:
                await self._drain()
            except Exception as exc:
                if not self._failing:
                    log.warning(
                        "could not read new events from the database (%s); retrying every %g s",
                        first_line(exc),
                        self._poll,
                    )
                self._failing = True
                continue
            finally:
                self._reading = False
            if self._failing:
                log.info("reading new events from the database again")
                self._failing = False

    async def _drain(self) -> None:
        for _ in range(1_000_000):  # bounded: each round reads a page or stops
            generation = self._fanout.subscribed
            if not self._fanout.count():
                # Nobody listens: skip the events, not read them. Safe only if nobody
                # subscribed while the query ran (their live part starts after it).
                latest = await in_thread(self._store.max_event_id)
                if self._fanout.subscribed == generation:
                    self._cursor = max(self._cursor, latest)
                    return
            page = await in_thread(self._store.events_after, self._cursor, PAGE)
            self.reads += 1
            if not page:
                return
            self._fanout.publish_items(page)
            self._cursor = max(self._cursor, *(item.seq for _user, item in page))
            if sum(1 for _user, item in page if item.event is not None) < PAGE:
                return


def _directly_after(cursor: int, recorded: Sequence[Recorded]) -> bool:
    """Whether ``recorded`` are exactly the events with ids cursor+1, cursor+2, …"""
    if not recorded:
        return False
    expected = cursor
    for item in recorded:
        expected += 1
        if item.id != expected or item.repeat or item.spooled:
            return False
    return True


class Listener:
    """LISTENs on its own connection, in a thread; each NOTIFY wakes the feed.

    A dropped connection is reopened (with back-off) and LISTENed on again, and the
    feed is woken to catch up on what was notified meanwhile. ``own_pid`` gives the
    process id of this instance's writer connection: its NOTIFYs wake nothing.
    """

    def __init__(
        self, url: str, wake: Callable[[], None], own_pid: Callable[[], int | None] = lambda: None
    ) -> None:
        self._url = url
        self._wake = wake
        self._own_pid = own_pid
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None

    def start(self) -> None:
        """Start listening in a thread."""
        self._thread = threading.Thread(target=self._run, name="mailbeacon-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (returns within a second or so)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    conninfo(self._url),
                    autocommit=True,
                    application_name="mailbeacon-listen",
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}".encode())
                    if failures:
                        log.info("listening for other instances' events again")
                    failures = 0
                    self._wake()  # catch up on whatever was notified while away
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=0.5):
                            if notify.pid != self._own_pid():
                                self._wake()
            except psycopg.Error as exc:
                if failures == 0:
                    log.warning(
                        "lost the connection that listens for other instances' "
                        "events (%s); reconnecting (events still arrive by polling)",
                        first_line(exc),
                    )
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                self._stopping.wait(delay)
