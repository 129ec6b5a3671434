"""The single writer: classifies hits in arrival order and commits them in groups.

One task on the event loop owns the write connection. It takes every job that
arrived while the previous commit ran, classifies and inserts them in one
transaction, and has a dedicated thread run the COMMIT (the fsync) while the loop
goes on serving requests; those join the next group. Only after the commit returns
are the hits answered and fanned out, so "answered" implies "on disk", and one fsync
is shared by every hit that arrived meanwhile.

Classification and inserts stay on the loop thread on purpose: handing each hit to
a writer thread costs a GIL hand-off per statement, which measured several times
slower under load than doing the few microseconds of work here. Only the blocking
parts (taking the write lock, COMMIT) go to the thread, two hand-offs per group.

Classifying in commit order also means each hit sees every earlier hit on its
message, with its id, in the recent window; revisions refer to those ids. (On
PostgreSQL a group that found the id counter taken by another instance holds
provisional ids until its COMMIT; :meth:`Recorder._settle_ids` then gives everything
kept or handed out the stored ones, pg_store.py.)

Floods (one pixel or link fetched thousands of times) are stored once: a hit
identical to one stored less than ``flood_window_seconds`` before it (same token,
address, user agent, method and browser claim) and decided the same way is
counted on that event (``repeats``) in the same group commit, and neither stored
nor streamed again; past ``max_events_per_token_hour`` events stored for one token
in an hour, its further hits are only counted too (:class:`FloodGuard`). The guard
lives in memory, bounded: after a restart its windows start afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mailbeacon.core.botlists import Thresholds
from mailbeacon.core.classify import Context, Decision, Hit, PriorHit, classify
from mailbeacon.core.events import EventType, Revision, ServerEvent, Verdict
from mailbeacon.core.ipranges import KnownRanges, bundled_ranges
from mailbeacon.core.useragents import AgentMatcher, default_matcher
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.config import (
    DEFAULT_FLOOD_WINDOW_SECONDS,
    DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR,
)
from mailbeacon.server.handoff import BlockingThread
from mailbeacon.server.recent import RecentHits
from mailbeacon.server.store import UNSTORED, NewEvent, Store, first_line

if TYPE_CHECKING:
    from mailbeacon.server.spool import Spool, Spooled

log = logging.getLogger(__name__)

T = TypeVar("T")
Classifier = Callable[[Hit, Context], Decision]
# Bounds the time the loop spends inserting one group (and so the latency of others).
MAX_BATCH = 512
SPOOLED_REASON = "stored in the outage spool; classified when replayed"
INFERRED_REASON = "inferred from a click"
HOUR = 3600.0


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class HitRequest:
    """A verified hit to classify and store."""

    user_id: int
    hit: Hit
    at: str  # UTC ISO 8601 of hit.at
    user_agent: str  # as stored (capped)
    url: str | None = None
    # The address as stored, when it differs from hit.ip (the classifier sees the
    # full address; the operator may store only its network, docs/rules.md rule 8).
    store_ip: str | None = None

    @property
    def stored_ip(self) -> str:
        """The address written to the store."""
        return self.hit.ip if self.store_ip is None else self.store_ip


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Recorded:
    """A stored hit: its id, what was stored, and the verdicts it changed."""

    id: int
    stored: NewEvent
    revisions: tuple[Revision, ...] = ()
    # True for a hit counted on an earlier event (a flood's repeat): nothing new was
    # stored or streamed; ``id`` and ``stored`` are that earlier event's.
    repeat: bool = False
    # True for a hit stored in the outage spool (spool.py): it gets its id, verdict
    # and stream message when it is replayed into the database.
    spooled: bool = False

    @property
    def user_id(self) -> int:
        """Whose event it is."""
        return self.stored.user_id

    @property
    def event(self) -> ServerEvent:
        """The event as the stream carries it (built on demand: most hits have no
        subscriber listening at that moment)."""
        return self.stored.with_id(self.id)

    def event_json(self) -> dict[str, Any]:
        """:attr:`event`'s stream message, without copying the event first (the fan-out
        encodes one for every new event while the rep's agent listens)."""
        message = self.stored.event.to_json()
        message["id"] = self.id
        return message


def _new_event(
    request: HitRequest,
    type_: EventType,
    verdict: Verdict,
    reason: str,
    counts: bool,
    via: str | None,
    *,
    inferred: bool = False,
    link: int | None = None,
    url: str | None = None,
) -> NewEvent:
    """The event to store for ``request``'s hit (or the open it implies)."""
    hit = request.hit
    # Positional, in ServerEvent's field order (keywords cost three times as much, and
    # every new event makes one); type and verdict as plain strings, as the store reads
    # them back (ServerEvent declares str).
    event = ServerEvent(
        UNSTORED, str(type_), hit.message, hit.recipient, request.at, request.stored_ip,
        request.user_agent, str(verdict), reason, inferred, link, url, counts, via,
    )
    return NewEvent(request.user_id, event)


# (user id, message, recipient, type, link): one token's hits.
TokenRef = tuple[int, str, str | None, str, int | None]
# A token's hit as a flood repeats it: + address, user agent, method, browser claim.
FloodKey = tuple[TokenRef, str, str, str, bool]


@dataclass(frozen=True, slots=True)
class FloodLimits:
    """How floods are collapsed (ServerConfig's ``flood_window_seconds`` and
    ``max_events_per_token_hour``), and how many hits and tokens are remembered."""

    window: float = DEFAULT_FLOOD_WINDOW_SECONDS
    per_token_hour: int = DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR
    remembered: int = 32_768


@dataclass(slots=True)
class _Stored:
    recorded: Recorded
    at: float
    verdict: Verdict
    counts: bool
    via: str | None


@dataclass(slots=True)
class _TokenHour:
    start: float
    stored: int
    last: Recorded


def token_ref(request: HitRequest) -> TokenRef:
    """The token a hit came in on (what a pixel or link URL identifies)."""
    hit = request.hit
    return (request.user_id, hit.message, hit.recipient, str(hit.type), hit.link)


def flood_key(request: HitRequest) -> FloodKey:
    """What makes two hits the same hit repeated."""
    hit = request.hit
    return (token_ref(request), hit.ip, hit.user_agent, hit.method.upper(), hit.claimed_browser)


class FloodGuard:
    """The recently stored hits and the per-token hourly counts, in memory.

    Both maps are bounded by ``limits.remembered`` (least recently hit forgotten
    first), so a flood of distinct hits costs bounded memory; forgetting only
    means that the next such hit is stored as an event again.
    """

    def __init__(self, limits: FloodLimits) -> None:
        self.limits = limits
        self._hits: OrderedDict[FloodKey, _Stored] = OrderedDict()
        self._tokens: OrderedDict[TokenRef, _TokenHour] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def repeat_of(self, key: FloodKey, decision: Decision, at: float) -> Recorded | None:
        """The stored event this hit repeats: identical, within the window, and decided
        alike (a hit that decides differently, say a person's open after a prefetch
        from the same proxy, is an event of its own)."""
        entry = self._hits.get(key)
        if entry is None or not 0 <= at - entry.at < self.limits.window:
            return None
        if (
            decision.revisions
            or decision.verdict is not entry.verdict
            or decision.counts_as_human != entry.counts
            or decision.via != entry.via
        ):
            return None
        self._hits.move_to_end(key)
        return entry.recorded

    def over_bound(self, token: TokenRef, at: float) -> Recorded | None:
        """The token's last stored event when it already has its hourly maximum."""
        hour = self._tokens.get(token)
        if hour is None or not 0 <= at - hour.start < HOUR:
            return None
        if hour.stored < self.limits.per_token_hour:
            return None
        self._tokens.move_to_end(token)
        return hour.last

    def stored(self, key: FloodKey, recorded: Recorded, decision: Decision, at: float) -> None:
        """Remember a hit just stored as an event."""
        self._hits[key] = _Stored(
            recorded, at, decision.verdict, decision.counts_as_human, decision.via
        )
        self._hits.move_to_end(key)
        token = key[0]
        hour = self._tokens.get(token)
        if hour is None or not 0 <= at - hour.start < HOUR:
            self._tokens[token] = _TokenHour(at, 1, recorded)
        else:
            hour.stored += 1
            hour.last = recorded
        self._tokens.move_to_end(token)
        for remembered in (self._hits, self._tokens):
            while len(remembered) > self.limits.remembered:
                remembered.popitem(last=False)

    def forget(self, refs: set[tuple[int, str]]) -> None:
        """Forget the messages of a group that failed (its ids were rolled back)."""
        for key in [k for k in self._hits if (k[0][0], k[0][1]) in refs]:
            del self._hits[key]
        for token in [t for t in self._tokens if (t[0], t[1]) in refs]:
            del self._tokens[token]


class RecorderStopped(RuntimeError):
    """The recorder no longer accepts work (the server is stopping)."""


class DatabaseDown(RuntimeError):
    """The database does not answer: hits go to the spool, other writes wait."""


class Waiter(Protocol):
    """What the writer finishes a job by: an asyncio future, or a :class:`Commit`."""

    def done(self) -> bool:
        """Whether it is finished (a future's requester may have gone away)."""

    def set_result(self, result: Any, /) -> None:
        """Finished: committed (or spooled), with this result."""

    def set_exception(self, exception: BaseException, /) -> None:
        """Finished: it failed (already logged by the writer)."""


class Commit:
    """One hit's commit, for a caller that answers by callback (the pixel path).

    A future costs the loop a scheduled callback per hit (and one more to retrieve a
    failure nobody awaits); this calls back at once, from the writer, when the hit
    is committed, spooled, or failed (the writer logs failures: the visitor is
    answered all the same). docs/performance.md, "The pixel path".
    """

    __slots__ = ("_done", "_then", "error", "result")

    def __init__(self) -> None:
        self._done = False
        self._then: list[Callable[[], None]] = []
        self.result: Any = None
        self.error: BaseException | None = None

    def done(self) -> bool:
        """Whether the writer has finished with the hit."""
        return self._done

    def set_result(self, result: Any, /) -> None:
        """Committed (or spooled): call back."""
        self.result = result
        self._finish()

    def set_exception(self, exception: BaseException, /) -> None:
        """Not stored (logged by the writer): call back all the same."""
        self.error = exception
        self._finish()

    def then(self, call: Callable[[], None]) -> None:
        """Call ``call`` once finished (at once if it is)."""
        if self._done:
            call()
        else:
            self._then.append(call)

    async def wait(self) -> None:
        """Until the writer has finished with the hit (the waiting path)."""
        if self._done:
            return
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.then(lambda: None if finished.done() else finished.set_result(None))
        await finished

    def _finish(self) -> None:
        self._done = True
        # Done: then() calls at once from now on, so nothing joins the list meanwhile.
        for call in self._then:
            try:
                call()
            except Exception:  # one answer's failure must not stop the group's others
                log.exception("answering a recorded hit failed")
        self._then.clear()


@dataclass(slots=True)
class _Job:
    future: Waiter
    hit: HitRequest | None = None
    call: Callable[[Store], Any] | None = None


_Outcome = tuple[Waiter, Any, BaseException | None]


class Recorder:
    """Group-committing writer over a Store."""

    def __init__(
        self,
        store: Store,
        addresses: AgentAddresses,
        recent: RecentHits,
        on_recorded: Callable[[list[Recorded]], None],
        classifier: Classifier = classify,
        thresholds: Thresholds | None = None,
        ranges: KnownRanges | None = None,
        agents: AgentMatcher | None = None,
        flood: FloodLimits | None = None,
        spool: Spool | None = None,
        retry_seconds: float = 0.5,
    ) -> None:
        self._store = store
        # PostgreSQL: where hits go while the database does not answer (spool.py).
        self._spool = spool
        self._retry_seconds = retry_seconds
        self._db_down = False
        self._next_try = 0.0
        self.flood = FloodGuard(flood if flood is not None else FloodLimits())
        # Built once here, not per hit (Context's defaults would look them up each time).
        self._thresholds = thresholds if thresholds is not None else Thresholds()
        self._ranges = ranges if ranges is not None else bundled_ranges()
        self._agents = agents if agents is not None else default_matcher()
        self._addresses = addresses
        self._recent = recent
        self._on_recorded = on_recorded
        self._classify = classifier
        self._pending: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._thread: BlockingThread | None = None
        self.batches = 0
        self.largest_batch = 0

    def start(self) -> None:
        """Start the writer (on the running event loop)."""
        self._thread = BlockingThread(asyncio.get_running_loop(), "mailbeacon-commit")
        self._task = asyncio.create_task(self._write_loop(), name="mailbeacon-writer")

    async def record(self, request: HitRequest) -> Recorded:
        """Classify and store a hit; returns once it is committed."""
        return await self.submit(request)

    def submit(self, request: HitRequest) -> asyncio.Future[Recorded]:
        """Classify and store a hit; the future is done once it is committed.

        Without a coroutine: the pixel path waits on the future by a callback.
        """
        future: asyncio.Future[Recorded] = self._future()
        self._pending.append(_Job(future, request))
        self._wakeup.set()
        return future

    def commit_later(self, request: HitRequest) -> Commit:
        """:meth:`submit` for a caller that answers by callback (:class:`Commit`)."""
        if self._closing or self._task is None:
            raise RecorderStopped("the tracking server is stopping")
        commit = Commit()
        self._pending.append(_Job(commit, request))  # positional: a keyword costs more
        self._wakeup.set()
        return commit

    async def run(self, call: Callable[[Store], T]) -> T:
        """Run ``call`` in the writer's next transaction; returns once committed."""
        future = self._future()
        self._pending.append(_Job(future, call=call))
        self._wakeup.set()
        result: T = await future
        return result

    async def stop(self) -> None:
        """Commit everything already submitted, then stop."""
        if self._closing:
            return
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._thread is not None:
            self._thread.stop()

    def _future(self) -> asyncio.Future[Any]:
        if self._closing or self._task is None:
            raise RecorderStopped("the tracking server is stopping")
        return asyncio.get_running_loop().create_future()

    async def _blocking(self, call: Callable[[], T]) -> T:
        assert self._thread is not None  # started
        return await self._thread.call(call)

    def _spooling(self) -> bool:
        """Whether hits go to the spool: the database is down, or the spool still
        holds hits that must reach it first (order)."""
        return self._spool is not None and (self._db_down or self._spool.pending())

    async def _write_loop(self) -> None:
        in_transaction = False
        while True:
            if not self._pending:
                if self._closing and not self._spooling():
                    return
                self._wakeup.clear()
                if not self._spooling():
                    await self._wakeup.wait()
                    continue
                # Spooling: retry the database now and then, even with no new hits.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry_seconds):
                        await self._wakeup.wait()
                await self._replay()
                if self._closing and not self._pending:
                    return  # what is left in the spool is replayed at the next start
                continue
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            if self._spooling():
                await self._replay()
                if self._spooling():
                    await self._to_spool(batch, {})
                    continue
            given: dict[int, int] = {}
            try:
                if not in_transaction and not self._store.try_begin():
                    # Another process (add-user, backup) is writing: wait off the loop.
                    await self._blocking(self._store.begin)
                in_transaction = True
                recorded, outcomes = self._apply(batch)
                given = _given_ids(batch, outcomes)
                in_transaction = await self._blocking(self._commit_and_continue)
            except Exception as exc:
                if in_transaction:
                    await self._blocking(self._rollback)
                in_transaction = False
                if self._spool is not None and self._store.unreachable():
                    self._went_down(exc)
                    self._forget(batch)
                    await self._to_spool(batch, given)
                    continue
                log.exception("could not commit %d hits/writes to the store", len(batch))
                self._fail(batch, exc)
                continue
            if (resolve := self._store.resolver()) is not None:  # never on SQLite
                values = [value for _w, value, _e in outcomes]
                self._settle_ids(resolve, _refs(batch), recorded, values)
            self._deliver(recorded, outcomes)

    def _went_down(self, exc: BaseException) -> None:
        if not self._db_down:
            log.warning("the database does not answer (%s): hits are stored in the local "
                        "spool and replayed when it answers again", first_line(exc))
        self._db_down = True

    async def _to_spool(self, batch: list[_Job], given: dict[int, int]) -> None:
        """Store the batch's hits in the spool (fsync'd), then answer them; other
        writes fail (the database is needed for them)."""
        assert self._spool is not None
        spool = self._spool
        hits = [(job.hit, given.get(i)) for i, job in enumerate(batch) if job.hit is not None]
        try:
            if hits:
                await self._blocking(lambda: spool.append(hits))
        except Exception as exc:
            log.exception("could not store %d hits in the spool either", len(hits))
            self._fail(batch, exc)
            return
        down = DatabaseDown("the database does not answer; try again later")
        for job in batch:
            if job.future.done():
                continue
            if job.hit is None:
                job.future.set_exception(down)
                continue
            new = _new_event(job.hit, job.hit.hit.type, Verdict.HUMAN, SPOOLED_REASON, False,
                             None)
            job.future.set_result(Recorded(UNSTORED, new, spooled=True))

    async def _replay(self) -> None:
        """Replay the spool into the database, oldest first, while it answers (at most
        one attempt per ``retry_seconds`` while it does not)."""
        spool = self._spool
        if spool is None:
            return
        now = time.monotonic()
        if self._db_down and now < self._next_try:
            return
        self._next_try = now + self._retry_seconds
        for _ in range(100_000):  # bounded: each round replays a group or a file ends
            if not spool.pending():
                if self._db_down:
                    log.info("the database answers again; the spool is replayed")
                self._db_down = False
                return
            key, entries, offset = spool.head(MAX_BATCH)
            if not entries:
                spool.drop_head()
                continue
            try:
                recorded = await self._replay_group(key, entries)
            except Exception as exc:
                await self._blocking(self._rollback)
                self._forget_refs({_ref(e.request) for e in entries})
                if not self._store.unreachable():
                    log.exception("could not replay the spool; trying again")
                self._went_down(exc)
                return
            spool.replayed(offset)
            self._deliver(recorded, [])

    async def _replay_group(self, key: str, entries: list[Spooled]) -> list[Recorded]:
        """One transaction: the entries not replayed before, and how far it got."""
        store = self._store
        await self._blocking(store.begin)
        done = int(store.get_meta(key) or 0)
        recorded: list[Recorded] = []
        for entry in entries:
            if entry.seq <= done:
                continue  # replayed before a crash, with its progress
            request = entry.request
            if entry.maybe_id is not None and store.has_event(
                entry.maybe_id, request.user_id, request.hit.message, request.at,
                request.stored_ip, str(request.hit.type),
            ):  # fmt: skip
                continue  # its COMMIT did happen, though the answer was lost
            stored, _ = self._record(request)
            recorded.extend(stored)
        store.set_meta(key, str(entries[-1].seq))
        await self._blocking(store.commit)
        if (resolve := store.resolver()) is not None:
            self._settle_ids(resolve, {_ref(e.request) for e in entries}, recorded, [])
        return recorded

    def _commit_and_continue(self) -> bool:
        """In the thread: COMMIT, and when more work is waiting, BEGIN the next group
        right away (one hand-off instead of two). True when a transaction is open."""
        self._store.commit()
        if not self._pending or self._closing:
            return False
        try:
            self._store.begin()
        except Exception:
            log.warning("could not start the next transaction", exc_info=True)
            return False
        return True

    def _rollback(self) -> None:
        try:
            self._store.rollback()
        except Exception:
            log.warning("rollback failed", exc_info=True)

    def _apply(self, batch: list[_Job]) -> tuple[list[Recorded], list[_Outcome]]:
        recorded: list[Recorded] = []
        outcomes: list[_Outcome] = []
        for job in batch:
            if job.hit is not None:
                stored, result = self._record(job.hit)
                recorded.extend(stored)
                outcomes.append((job.future, result, None))
                continue
            assert job.call is not None
            try:
                outcomes.append((job.future, job.call(self._store), None))
            except Exception as exc:  # reported to its caller; the group goes on
                if not self._store.in_transaction:
                    # SQLite rolled the whole group back (disk full, I/O error): the
                    # hits before it are gone too, so the group fails as one.
                    raise
                outcomes.append((job.future, None, exc))
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        return recorded, outcomes

    def _record(self, request: HitRequest) -> tuple[list[Recorded], Recorded]:
        """Store one hit (after the open it implies, if any), or count it on the event
        it repeats: (what was stored, to fan out; the hit's record)."""
        hit = request.hit
        ref = (request.user_id, hit.message)
        own = self._addresses.own(request.user_id, hit.at)
        # Positional, in Context's field order (agent addresses, those left, recent,
        # thresholds, ranges, agents): keywords cost three times as much per hit.
        context = Context(
            own.all, own.left, self._recent.get(ref, hit.at),
            self._thresholds, self._ranges, self._agents,
        )
        decision = self._decide(hit, context)
        key = flood_key(request)
        repeated = self.flood.repeat_of(key, decision, hit.at)
        if repeated is None:
            repeated = self.flood.over_bound(key[0], hit.at)
        # False when the event is gone (retention): the hit is then stored anew.
        if repeated is not None and self._store.add_repeat(request.user_id, repeated.id):
            # Built directly: dataclasses.replace costs more than the rest of a repeat.
            return [], Recorded(repeated.id, repeated.stored, (), True, repeated.spooled)
        counts = decision.counts_as_human
        done: list[Recorded] = []
        if counts and hit.type == EventType.CLICK:
            inferred = self._infer_open(request, decision)
            if inferred is not None:
                done.append(inferred)
        new = _new_event(
            request, hit.type, decision.verdict, decision.reason, counts, decision.via,
            link=hit.link, url=request.url,
        )
        event_id = self._store.insert_event(new)
        applied: list[Revision] = []
        for change in decision.revisions:
            revision = Revision(
                change.id, str(change.verdict), change.reason, change.verdict is Verdict.HUMAN
            )
            if change.id != event_id and self._store.revise(request.user_id, event_id, revision):
                applied.append(revision)
                self._recent.revise(ref, change.id, change.verdict)
        self._recent.add(ref, PriorHit(event_id, hit, decision.verdict))
        recorded = Recorded(event_id, new, tuple(applied))
        self.flood.stored(key, recorded, decision, hit.at)
        done.append(recorded)
        return done, recorded

    def _infer_open(self, request: HitRequest, decision: Decision) -> Recorded | None:
        """docs/rules.md rule 6: a person's click on a message with no counting open implies one.

        Stored just before the click, in the same transaction, so its id is smaller.
        It joins the recent window too: a burst or honeypot that later revises the
        click to bot revises this open with it.
        """
        hit = request.hit
        if self._store.has_counting_open(request.user_id, hit.message, hit.recipient):
            return None
        new = _new_event(
            request, EventType.OPEN, Verdict.HUMAN, INFERRED_REASON, True, decision.via,
            inferred=True,
        )
        event_id = self._store.insert_event(new)
        opened = replace(hit, type=EventType.OPEN, link=None, honeypot=False)
        self._recent.add((request.user_id, hit.message), PriorHit(event_id, opened, Verdict.HUMAN))
        return Recorded(event_id, new)

    def _decide(self, hit: Hit, context: Context) -> Decision:
        try:
            decision = self._classify(hit, context)
        except Exception:
            # The hit is still stored (no event lost); the operator learns why.
            log.exception("classification failed; storing the hit unclassified")
            decision = Decision(Verdict.HUMAN, "unclassified (classifier error)")
        if decision.verdict is Verdict.HUMAN and hit.method.upper() == "HEAD":
            # A HEAD request never counts as a person, whatever the rules say.
            return Decision(Verdict.BOT, "HEAD request (never a person)", decision.revisions)
        return decision

    def _settle_ids(
        self,
        resolve: Callable[[int], int],
        refs: set[tuple[int, str]],
        recorded: list[Recorded],
        values: list[object],
    ) -> None:
        """After a commit that stored provisional ids (PostgreSQL, pg_store.py): give
        every record the group made its stored id, before anything reads them: the
        fan-out, the answers, the flood guard (it holds these records) and the recent
        window (revisions of later hits refer to its ids)."""
        for item in recorded:
            _resolve(item, resolve)
        for value in values:
            if isinstance(value, Recorded):
                _resolve(value, resolve)  # a repeat's record copies its event's id
        self._recent.resolve(refs, resolve)

    def _forget(self, batch: list[_Job]) -> None:
        self._forget_refs(_refs(batch))

    def _forget_refs(self, refs: set[tuple[int, str]]) -> None:
        # The window may hold ids that were rolled back (or provisional ones that
        # will never be stored): forget those messages.
        self._recent.forget(refs)
        self.flood.forget(refs)

    def _fail(self, batch: list[_Job], error: Exception) -> None:
        self._forget(batch)
        for job in batch:
            if not job.future.done():
                job.future.set_exception(error)

    def _deliver(self, recorded: list[Recorded], outcomes: list[_Outcome]) -> None:
        if recorded:
            try:
                self._on_recorded(recorded)
            except Exception:
                log.exception("fan-out of %d events failed", len(recorded))
        for future, value, error in outcomes:
            if future.done():
                continue  # the requester went away; the hit is stored all the same
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)


def _ref(request: HitRequest) -> tuple[int, str]:
    """The message a hit is about, as the recent window and the flood guard key it."""
    return request.user_id, request.hit.message


def _refs(batch: list[_Job]) -> set[tuple[int, str]]:
    return {_ref(job.hit) for job in batch if job.hit is not None}


def _resolve(item: Recorded, resolve: Callable[[int], int]) -> None:
    """Give a record, and the revisions it caused, their stored ids."""
    if item.id < 0:
        item.id = resolve(item.id)
    if any(revision.id < 0 for revision in item.revisions):
        item.revisions = tuple(
            replace(revision, id=resolve(revision.id)) if revision.id < 0 else revision
            for revision in item.revisions
        )


def _given_ids(batch: list[_Job], outcomes: list[_Outcome]) -> dict[int, int]:
    """The id each hit of the batch was given (by index in the batch): if the COMMIT is
    cut off, the spool's replay checks whether it happened after all (a provisional
    id: by the event's fields, ``Store.has_event``)."""
    given: dict[int, int] = {}
    for index, (job, (_future, value, _error)) in enumerate(zip(batch, outcomes, strict=True)):
        if job.hit is not None and isinstance(value, Recorded) and not value.repeat:
            given[index] = value.id
    return given
