"""The group-committing writer: answered only once committed, one commit per group."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailbeacon.core.classify import Context, Decision, Hit, Revision
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.recent import RecentHits
from mailbeacon.server.recorder import (
    Classifier,
    FloodLimits,
    HitRequest,
    Recorded,
    Recorder,
    RecorderStopped,
)
from mailbeacon.server.sqlite_store import SqliteStore

WAIT = 5.0


class GatedStore(SqliteStore):
    """A real SQLite store whose COMMIT waits until the test lets it through."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.committing = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_next_commit = False
        self.waiting_to_begin = threading.Event()

    def begin(self) -> None:
        self.waiting_to_begin.set()
        super().begin()

    def commit(self) -> None:
        self.committing.set()
        assert self.release.wait(WAIT)
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise sqlite3.OperationalError("disk I/O error")
        super().commit()


def _hit(
    message: str = "ab" * 12,
    method: str = "GET",
    at: float | None = None,
    ip: str = "192.0.2.9",
    user_agent: str = "Mozilla/5.0",
) -> Hit:
    now = time.time() if at is None else at
    return Hit(EventType.OPEN, method, ip, user_agent, now, int(now) - 3600, message, None)


def _request(user_id: int = 1, hit: Hit | None = None) -> HitRequest:
    return HitRequest(user_id, hit or _hit(), "2026-01-01T00:00:00.000Z", "Mozilla/5.0")


def _stored(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, verdict, reason FROM events ORDER BY id").fetchall()
    return [(int(i), str(v), str(r)) for i, v, r in rows]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GatedStore]:
    gated = GatedStore(tmp_path / "server.db")
    yield gated
    gated.close()


class Published:
    def __init__(self) -> None:
        self.batches: list[list[Recorded]] = []

    def __call__(self, recorded: list[Recorded]) -> None:
        self.batches.append(recorded)


def _person(hit: Hit, context: Context) -> Decision:
    return Decision(Verdict.BOT if hit.method == "HEAD" else Verdict.HUMAN, "test rule")


async def _recorder(
    store: GatedStore,
    published: Published,
    classifier: Classifier = _person,
    flood: FloodLimits | None = None,
) -> Recorder:
    recorder = Recorder(
        store, AgentAddresses(ttl=60), RecentHits(), published, classifier, flood=flood
    )
    recorder.start()
    return recorder


@pytest.fixture
async def published() -> AsyncIterator[Published]:
    yield Published()


async def test_a_hit_is_answered_only_after_its_commit(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    store.release.clear()
    task = asyncio.create_task(recorder.record(_request()))
    assert await asyncio.to_thread(store.committing.wait, WAIT)
    await asyncio.sleep(0)  # let anything that could wrongly complete the task run
    assert not task.done()
    assert published.batches == []  # nothing fanned out before it is durable
    assert _stored(store.path) == []  # not visible yet: not committed
    store.release.set()
    async with asyncio.timeout(WAIT):
        recorded = await task
    assert _stored(store.path) == [(recorded.event.id, "human", recorded.event.reason)]
    assert published.batches == [[recorded]]
    await recorder.stop()


async def test_a_commit_calls_its_answer_back_only_after_the_commit(
    store: GatedStore, published: Published
) -> None:
    # The pixel path answers by callback (no future per hit): the same promise.
    recorder = await _recorder(store, published)
    store.release.clear()
    answered = asyncio.Event()
    commit = recorder.commit_later(_request())
    commit.then(answered.set)
    assert await asyncio.to_thread(store.committing.wait, WAIT)
    await asyncio.sleep(0)
    assert not commit.done() and not answered.is_set()
    assert _stored(store.path) == []
    store.release.set()
    async with asyncio.timeout(WAIT):
        await answered.wait()
    recorded = commit.result
    assert isinstance(recorded, Recorded)
    assert _stored(store.path) == [(recorded.event.id, "human", recorded.event.reason)]
    await commit.wait()  # finished: returns at once
    await recorder.stop()


@pytest.mark.expect_log("answering a recorded hit failed")
async def test_an_answer_that_fails_does_not_keep_the_group_s_others_unanswered(
    store: GatedStore, published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = await _recorder(store, published)
    store.release.clear()
    answered: list[int] = []

    def broken() -> None:
        raise ConnectionResetError("the visitor left")

    commits = [recorder.commit_later(_request(hit=_hit(message=f"{i:02d}" * 12)))
               for i in range(3)]
    commits[0].then(broken)
    commits[1].then(lambda: answered.append(1))
    commits[2].then(lambda: answered.append(2))
    store.release.set()
    async with asyncio.timeout(WAIT):
        await commits[2].wait()
    assert answered == [1, 2]
    assert len(_stored(store.path)) == 3
    assert "the visitor left" in caplog.text
    await recorder.stop()


@pytest.mark.expect_log("could not commit")
async def test_a_failed_commit_still_calls_its_answer_back(
    store: GatedStore, published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    # The visitor gets the pixel all the same; the operator gets the log line.
    recorder = await _recorder(store, published)
    store.fail_next_commit = True
    commit = recorder.commit_later(_request())
    async with asyncio.timeout(WAIT):
        await commit.wait()
    assert isinstance(commit.error, sqlite3.OperationalError)
    assert _stored(store.path) == []
    await recorder.stop()
    with pytest.raises(RecorderStopped):
        recorder.commit_later(_request())


async def test_hits_that_arrive_during_a_commit_share_the_next_one(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    store.release.clear()
    first = asyncio.create_task(recorder.record(_request(hit=_hit("01" * 12))))
    assert await asyncio.to_thread(store.committing.wait, WAIT)
    rest = [
        asyncio.create_task(recorder.record(_request(hit=_hit(f"{i:02x}" * 12))))
        for i in range(2, 51)
    ]
    await asyncio.sleep(0)
    store.release.set()
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(first, *rest)
    assert recorder.batches == 2
    assert recorder.largest_batch == 49
    ids = [r.event.id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 50  # ids in arrival order
    assert [len(batch) for batch in published.batches] == [1, 49]
    await recorder.stop()


async def test_revisions_are_stored_and_reported_for_the_same_users_events_only(
    store: GatedStore, published: Published
) -> None:
    def classifier(hit: Hit, context: Context) -> Decision:
        if hit.method == "SCAN":
            revise = tuple(Revision(p.id, Verdict.BOT, "burst") for p in context.recent)
            return Decision(Verdict.BOT, "scanner", (*revise, Revision(999, Verdict.BOT, "x")))
        return Decision(Verdict.HUMAN, "person")

    recorder = await _recorder(store, published, classifier)
    first = await recorder.record(_request())
    other_user = await recorder.record(_request(user_id=2))
    scan = await recorder.record(_request(hit=_hit(method="SCAN")))
    assert [r.id for r in scan.revisions] == [first.event.id]  # not user 2's, not unknown 999
    assert scan.revisions[0].verdict == "bot"
    stored = {i: v for i, v, _ in _stored(store.path)}
    assert stored == {first.event.id: "bot", other_user.event.id: "human", scan.event.id: "bot"}
    await recorder.stop()


@pytest.mark.expect_log("classification failed")
async def test_a_failing_classifier_still_stores_the_hit(
    store: GatedStore, published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(hit: Hit, context: Context) -> Decision:
        raise RuntimeError("bug")

    recorder = await _recorder(store, published, broken)
    get = await recorder.record(_request())
    head = await recorder.record(_request(hit=_hit(method="HEAD")))
    assert (get.event.verdict, head.event.verdict) == ("human", "bot")
    assert "classification failed" in caplog.text
    await recorder.stop()


@pytest.mark.expect_log("could not commit")
async def test_a_failed_commit_fails_its_group_and_the_writer_goes_on(
    store: GatedStore, published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = await _recorder(store, published)
    store.fail_next_commit = True
    with pytest.raises(sqlite3.OperationalError):
        await recorder.record(_request())
    assert _stored(store.path) == []
    assert published.batches == []
    later = await recorder.record(_request())
    assert [i for i, _, _ in _stored(store.path)] == [later.event.id]
    await recorder.stop()


async def test_stop_commits_what_was_submitted_then_refuses_more(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    # Distinct messages: identical hits would be one event counted ten times.
    requests = [_request(hit=_hit(message=f"{i:02d}" * 12)) for i in range(10)]
    tasks = [asyncio.create_task(recorder.record(request)) for request in requests]
    await asyncio.sleep(0)
    await recorder.stop()
    assert all(task.done() and not task.exception() for task in tasks)
    assert len(_stored(store.path)) == 10
    with pytest.raises(RecorderStopped):
        await recorder.record(_request())


async def test_writes_share_the_transaction_and_report_their_result(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    user_id = await recorder.run(lambda s: s.add_user("alice", "hash", "now"))
    assert store.get_user(user_id) is not None
    with pytest.raises(sqlite3.IntegrityError):
        await recorder.run(lambda s: s.add_user("again", "hash", "now"))  # token hash unique
    await recorder.stop()


async def test_a_head_request_is_never_stored_as_human(
    store: GatedStore, published: Published
) -> None:
    def naive(hit: Hit, context: Context) -> Decision:
        return Decision(Verdict.HUMAN, "looks fine")

    recorder = await _recorder(store, published, naive)
    head = await recorder.record(_request(hit=_hit(method="HEAD")))
    get = await recorder.record(_request())
    assert (head.event.verdict, get.event.verdict) == ("bot", "human")
    await recorder.stop()


async def test_a_write_lock_held_by_another_process_is_waited_for_off_the_loop(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    other = SqliteStore(store.path)  # e.g. `server add-user` writing meanwhile
    other.begin()
    try:
        task = asyncio.create_task(recorder.record(_request()))
        # The writer waits in its thread; the loop (running this test) goes on.
        assert await asyncio.to_thread(store.waiting_to_begin.wait, WAIT)
        assert not task.done()
    finally:
        other.commit()
        other.close()
    async with asyncio.timeout(WAIT):
        recorded = await task
    assert [i for i, _, _ in _stored(store.path)] == [recorded.id]
    await recorder.stop()


async def test_without_contention_no_thread_is_needed_to_begin(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    await recorder.record(_request())
    await recorder.record(_request())
    assert not store.waiting_to_begin.is_set()
    await recorder.stop()


@pytest.mark.expect_log("could not commit")
async def test_a_write_that_ends_the_transaction_fails_the_whole_group(
    store: GatedStore, published: Published
) -> None:
    """SQLite rolls a transaction back itself on a full disk: the hits of that group
    were not stored, so none of them may be answered as stored."""
    recorder = await _recorder(store, published)
    store.release.clear()
    blocker = asyncio.create_task(recorder.record(_request(hit=_hit("0a" * 12))))
    assert await asyncio.to_thread(store.committing.wait, WAIT)

    def full_disk(s: SqliteStore) -> None:
        s.rollback()  # what SQLite does by itself on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    hit = asyncio.create_task(recorder.record(_request(hit=_hit("0b" * 12))))
    write = asyncio.create_task(recorder.run(full_disk))
    later = asyncio.create_task(recorder.record(_request(hit=_hit("0c" * 12))))
    await asyncio.sleep(0)
    store.release.set()
    async with asyncio.timeout(WAIT):
        await blocker
        results = await asyncio.gather(hit, write, later, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert [m for _i, m, _r in _stored_messages(store.path)] == ["0a" * 12]
    again = await recorder.record(_request(hit=_hit("0d" * 12)))  # the writer goes on
    assert again.event.message == "0d" * 12
    await recorder.stop()


def _stored_messages(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, message, verdict FROM events ORDER BY id").fetchall()
    return [(int(i), str(m), str(v)) for i, m, v in rows]


def _repeats(path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, repeats FROM events ORDER BY id").fetchall()
    return [(int(i), int(r)) for i, r in rows]


async def test_a_repeated_hit_is_counted_on_its_event_after_the_commit_and_not_published(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    first = await recorder.record(_request(hit=_hit(at=1000.0)))
    store.release.clear()
    store.committing.clear()
    task = asyncio.create_task(recorder.record(_request(hit=_hit(at=1001.0))))
    assert await asyncio.to_thread(store.committing.wait, WAIT)
    await asyncio.sleep(0)
    assert not task.done()  # the count is answered only once committed
    assert _repeats(store.path) == [(first.id, 0)]
    store.release.set()
    async with asyncio.timeout(WAIT):
        repeat = await task
    assert repeat.repeat and repeat.id == first.id
    assert _repeats(store.path) == [(first.id, 1)]
    assert published.batches == [[first]]  # the repeat is not streamed
    await recorder.stop()


async def test_another_address_agent_or_method_or_a_later_hit_is_an_event_of_its_own(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published, flood=FloodLimits(window=60.0))
    hits = [
        _hit(at=1000.0),
        _hit(at=1001.0, ip="192.0.2.10"),
        _hit(at=1002.0, user_agent="Other/1.0"),
        _hit(at=1003.0, method="HEAD"),
        _hit(at=1059.0),  # within the window: a repeat of the first
        _hit(at=1060.0),  # the window has passed
        _hit(at=1061.0),  # a repeat of the one just stored
    ]
    results = [await recorder.record(_request(hit=hit)) for hit in hits]
    assert [r.repeat for r in results] == [False, False, False, False, True, False, True]
    ids = [r.id for r in results]
    assert _repeats(store.path) == [(ids[0], 1), (ids[1], 0), (ids[2], 0), (ids[3], 0),
                                    (ids[5], 1)]
    await recorder.stop()


async def test_a_hit_decided_differently_is_not_counted_on_the_earlier_event(
    store: GatedStore, published: Published
) -> None:
    # A machine fetch, then a person's open from the same proxy address and agent.
    verdicts = iter([Verdict.BOT, Verdict.HUMAN, Verdict.HUMAN])

    def changing(hit: Hit, context: Context) -> Decision:
        return Decision(next(verdicts), "test rule")

    recorder = await _recorder(store, published, changing)
    results = [await recorder.record(_request(hit=_hit(at=1000.0 + i))) for i in range(3)]
    assert [r.repeat for r in results] == [False, False, True]
    assert [v for _, v, _ in _stored(store.path)] == ["bot", "human"]
    await recorder.stop()


async def test_past_the_hourly_bound_a_token_s_hits_are_only_counted(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published, flood=FloodLimits(per_token_hour=3))
    agents = [f"Agent/{i}" for i in range(5)]
    results = [
        await recorder.record(_request(hit=_hit(at=1000.0 + i, user_agent=agent)))
        for i, agent in enumerate(agents)
    ]
    assert [r.repeat for r in results] == [False, False, False, True, True]
    assert [r for _, r in _repeats(store.path)] == [0, 0, 2]  # on the last stored one
    other = await recorder.record(_request(hit=_hit(message="cd" * 12, at=1005.0)))
    assert not other.repeat  # another token has its own bound
    later = await recorder.record(_request(hit=_hit(at=1000.0 + 3600, user_agent="New/1")))
    assert not later.repeat  # a new hour
    await recorder.stop()


async def test_the_remembered_hits_are_bounded(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published, flood=FloodLimits(remembered=4))
    for i in range(10):
        await recorder.record(_request(hit=_hit(at=1000.0, user_agent=f"Agent/{i}")))
    assert len(recorder.flood) == 4
    again = await recorder.record(_request(hit=_hit(at=1001.0, user_agent="Agent/0")))
    assert not again.repeat  # forgotten: stored again, never lost
    await recorder.stop()


@pytest.mark.expect_log("could not commit")
async def test_after_a_failed_commit_a_repeat_is_stored_not_counted_on_a_lost_event(
    store: GatedStore, published: Published
) -> None:
    recorder = await _recorder(store, published)
    store.fail_next_commit = True
    with pytest.raises(sqlite3.OperationalError):
        await recorder.record(_request(hit=_hit(at=1000.0)))
    again = await recorder.record(_request(hit=_hit(at=1001.0)))
    assert not again.repeat
    assert _repeats(store.path) == [(again.id, 0)]
    await recorder.stop()
