"""The activity model: newest first, human only unless asked, plain text, lazy pages,
live head refresh; all on a real records file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QFont
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.database import RecordsError
from mailbeacon.agent.records.model import ActivityFilter, ActivityRow
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.activity.model import (
    DETAIL_COLUMNS,
    HEADERS,
    ActivityModel,
    Column,
    FeedFilter,
)
from mailbeacon.tray.views.activity.when import full_when, relative_when
from mailbeacon.tray.views.tables import ROW_ROLE
from tests.helpers.activity import HTML_SUBJECT, fill_events, small_feed
from tests.helpers.records import event

WAIT_MS = 10_000


@pytest.fixture
def feed(store: RecordsStore) -> dict[str, int]:
    return small_feed(store)


class CountingQuery:
    """A RecordsStore seen through the feed's query interface, counting what it asks."""

    def __init__(self, store: RecordsStore) -> None:
        self.store = store
        self.limits: list[int | None] = []

    def activity(
        self, limit: int | None = 100, offset: int = 0, filters: ActivityFilter | None = None
    ) -> list[ActivityRow]:
        self.limits.append(limit)
        return self.store.activity(limit, offset, filters)

    def count_events(self, filters: ActivityFilter | None = None) -> int:
        return self.store.count_events(filters)


def loaded(qtbot: QtBot, model: ActivityModel) -> ActivityModel:
    """Wait until the model has no read outstanding."""
    if model.worker.busy:
        with qtbot.waitSignal(
            model.worker.busyChanged, timeout=WAIT_MS, check_params_cb=lambda busy: not busy
        ):
            pass
    assert not model.loading
    return model


def make_model(qtbot: QtBot, query: object, **kwargs: object) -> ActivityModel:
    model = ActivityModel(query, **kwargs)  # type: ignore[arg-type]
    return loaded(qtbot, model)


def column(model: ActivityModel, col: Column) -> list[str]:
    return [model.index(r, col).data() for r in range(model.rowCount())]


def ids(model: ActivityModel) -> list[int]:
    return [model.index(r, 0).data(ROW_ROLE).event.id for r in range(model.rowCount())]


def apply(qtbot: QtBot, model: ActivityModel, feed: FeedFilter) -> None:
    model.set_filter(feed)
    loaded(qtbot, model)


# ---------------------------------------------------------------- rows and filters


def test_default_shows_human_events_newest_first(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store)
    assert ids(model) == [feed["failed"], feed["bob_click"], feed["anonymous"], feed["alice_open"]]
    assert column(model, Column.TYPE) == ["Delivery failed", "Click", "Open", "Open"]
    # A delivery failure's "who" is the address it could not reach.
    assert column(model, Column.WHO) == [
        "bob@example.com", "Bob Builder", "Someone", "alice@example.com"
    ]
    assert column(model, Column.EMAIL) == [
        "Quarterly numbers", "Quarterly numbers", HTML_SUBJECT, HTML_SUBJECT
    ]
    assert column(model, Column.DETAIL) == [
        "", "https://example.com/<script>", "Chrome on Windows",
        "Chrome on Windows",
    ]
    # A delivery failure is no open: it carries no verdict ("Human" was shown).
    assert column(model, Column.VERDICT) == ["", "Human", "Human", "Human"]
    assert model.total == 4
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in Column] == list(HEADERS)


def test_show_filtered_reveals_bot_proxy_and_self_with_their_reasons(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store)
    apply(qtbot, model, FeedFilter(show_filtered=True))
    assert model.rowCount() == 7 and model.total == 7
    by_id = dict(zip(ids(model), range(model.rowCount()), strict=True))
    bot = by_id[feed["bot_click"]]
    assert model.index(bot, Column.VERDICT).data() == "Bot"
    assert model.index(bot, Column.REASON).data() == "known scanner: Barracuda"
    assert model.index(by_id[feed["proxy"]], Column.REASON).data() == (
        "Apple Mail Privacy Protection"
    )
    assert model.index(by_id[feed["self"]], Column.VERDICT).data() == "Self"
    # Filtered rows look different (greyed); human ones keep the normal colour.
    assert isinstance(model.index(bot, 0).data(Qt.ItemDataRole.ForegroundRole), QBrush)
    human = by_id[feed["alice_open"]]
    assert model.index(human, 0).data(Qt.ItemDataRole.ForegroundRole) is None

    apply(qtbot, model, FeedFilter(show_filtered=True, verdicts=("bot",)))
    assert ids(model) == [feed["bot_click"]]


def test_type_filter(qtbot: QtBot, store: RecordsStore, feed: dict[str, int]) -> None:
    model = make_model(qtbot, store, feed=FeedFilter(types=("click",)))
    assert ids(model) == [feed["bob_click"]]
    apply(qtbot, model, FeedFilter(types=("click",), show_filtered=True))
    assert ids(model) == [feed["bob_click"], feed["bot_click"]]
    apply(qtbot, model, FeedFilter(types=("reply",)))
    assert model.rowCount() == 0 and model.total == 0 and not model.canFetchMore(QModelIndex())


def test_search_matches_subject_contact_and_name(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store)
    apply(qtbot, model, FeedFilter(text="QUARTERLY"))
    assert ids(model) == [feed["failed"], feed["bob_click"]]
    assert model.total == 2
    apply(qtbot, model, FeedFilter(text="builder"))  # the contact's name
    assert ids(model) == [feed["bob_click"]]  # the failure names no contact
    apply(qtbot, model, FeedFilter(text="alice@"))  # the anonymous open never names alice
    assert ids(model) == [feed["alice_open"]]
    apply(qtbot, model, FeedFilter(text="<b>", show_filtered=True))
    assert ids(model) == [feed["anonymous"], feed["bot_click"], feed["alice_open"]]
    apply(qtbot, model, FeedFilter(text="nothing like this"))
    assert model.rowCount() == 0 and model.total == 0


def test_subjects_are_plain_text_in_every_role(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store, feed=FeedFilter(show_filtered=True))
    row = ids(model).index(feed["alice_open"])
    assert model.index(row, Column.EMAIL).data(Qt.ItemDataRole.DisplayRole) == HTML_SUBJECT
    for r in range(model.rowCount()):
        for c in Column:
            index = model.index(r, c)
            for role in range(Qt.ItemDataRole.UserRole):
                value = index.data(role)
                assert value is None or isinstance(value, str | QBrush | QFont), (r, c, role)
            tip = index.data(Qt.ItemDataRole.ToolTipRole)
            assert tip is None or c == Column.WHEN  # no data in tooltips (they render HTML)
    assert isinstance(model.index(0, 0).data(ROW_ROLE), ActivityRow)


def test_qt_model_rules_hold(
    qtbot: QtBot, qtmodeltester: ModelTester, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store, feed=FeedFilter(show_filtered=True))
    qtmodeltester.check(model)
    loaded(qtbot, model)


@pytest.mark.expect_log("damaged")
def test_a_failing_store_is_reported_not_raised(qtbot: QtBot) -> None:
    class Broken:
        def activity(self, *_args: object, **_kw: object) -> list[ActivityRow]:
            raise RecordsError("the records file /x/records.db is damaged")

        def count_events(self, *_args: object, **_kw: object) -> int:
            raise RecordsError("damaged")

    model = ActivityModel(Broken())
    with qtbot.waitSignal(model.loadFailed, timeout=WAIT_MS) as failed:
        pass
    assert failed.args is not None and "damaged" in failed.args[0]
    loaded(qtbot, model)
    assert model.rowCount() == 0 and not model.canFetchMore(QModelIndex())


# ---------------------------------------------------------------- paging


def test_pages_of_200_over_1000_events(
    qtbot: QtBot, qtmodeltester: ModelTester, tmp_path: Path
) -> None:
    path = tmp_path / "records.db"
    fill_events(path, 1000)
    with RecordsStore(path) as store:
        query = CountingQuery(store)
        model = make_model(qtbot, query, feed=FeedFilter(show_filtered=True))
        assert model.rowCount() == 200 and model.total == 1000
        assert model.canFetchMore(QModelIndex())
        qtmodeltester.check(model)  # also fetches a page, checking the inserts
        loaded(qtbot, model)
        sizes = [model.rowCount()]
        for _ in range(10):  # bounded: 1000 rows are 5 pages
            if not model.canFetchMore(QModelIndex()):
                break
            model.fetchMore(QModelIndex())
            loaded(qtbot, model)
            sizes.append(model.rowCount())
        assert sizes == [400, 600, 800, 1000, 1000]
        assert not model.canFetchMore(QModelIndex())
        shown = ids(model)
        assert len(set(shown)) == 1000
        ats = [model.index(r, 0).data(ROW_ROLE).event.at for r in range(1000)]
        assert ats == sorted(ats, reverse=True)
        assert None not in query.limits and max(n or 0 for n in query.limits) <= 200


def test_search_reads_past_the_loaded_page(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    fill_events(path, 1000)
    with RecordsStore(path) as store:
        oldest = store.activity(1, 999)[0]
        assert oldest.subject is not None
        model = make_model(qtbot, store, feed=FeedFilter(show_filtered=True))
        apply(qtbot, model, FeedFilter(show_filtered=True, text=oldest.subject))
        assert oldest.event.id in ids(model)
        assert all(oldest.subject in s for s in column(model, Column.EMAIL))


# ---------------------------------------------------------------- live updates


def test_refresh_puts_new_events_on_top_and_drops_revised_ones(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store)
    before = ids(model)
    new_id = store.add_event(
        event("open", "2030-01-01T11:00:00Z", contact="carol@example.com", server_id=555)
    )
    with qtbot.waitSignal(model.rowsInserted, timeout=WAIT_MS):
        model.event_added(object())
    loaded(qtbot, model)
    assert ids(model) == [new_id, *before]
    assert model.index(0, Column.WHO).data() == "carol@example.com"
    assert model.total == 5

    store.revise_event(555, "bot", "the rest of a scanner's burst")
    model.refresh()
    loaded(qtbot, model)
    assert ids(model) == before
    assert model.total == 4


def test_refresh_updates_a_revised_row_in_place_when_it_stays_visible(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store, feed=FeedFilter(show_filtered=True))
    row = ids(model).index(feed["bob_click"])
    server_id = model.index(row, 0).data(ROW_ROLE).event.server_id
    store.revise_event(server_id, "bot", "every link clicked within moments")
    with qtbot.waitSignal(model.dataChanged, timeout=WAIT_MS):
        model.refresh()
    loaded(qtbot, model)
    assert model.index(row, Column.VERDICT).data() == "Bot"
    assert model.index(row, Column.REASON).data() == "every link clicked within moments"


def test_a_burst_of_refreshes_reads_at_most_twice_more(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    query = CountingQuery(store)
    model = make_model(qtbot, query)
    reads = len(query.limits)
    for n in range(20):
        store.add_event(event("open", f"2030-01-02T00:00:{n:02d}Z", server_id=900 + n))
        model.refresh()
    loaded(qtbot, model)
    assert len(query.limits) - reads <= 2
    assert model.rowCount() == 24
    assert model.index(0, 0).data(ROW_ROLE).event.server_id == 919


# ---------------------------------------------------------------- plain words (issue 20)


def test_when_reads_the_way_a_rep_says_it_with_the_full_time_on_hover() -> None:
    now = datetime(2030, 1, 10, 15, 0, tzinfo=UTC)
    cases = {
        "2030-01-10T14:59:30Z": "just now",
        "2030-01-10T14:55:00Z": "5 min ago",
        "2030-01-10T09:12:00Z": "today 09:12",
        "2030-01-09T14:02:00Z": "yesterday 14:02",
        "2030-01-07T08:00:00Z": "Mon 08:00",
        "2029-12-24T08:00:00Z": "24 Dec 2029",
        "2030-01-01T10:00:00Z": "1 Jan 10:00",
    }
    for at, said in cases.items():
        assert relative_when(at, now, UTC) == said, at
    assert relative_when(None, now) == "—" and relative_when("garbage", now) == "garbage"
    assert full_when("2030-01-09T14:02:07Z", UTC) == "Wed 9 Jan 2030, 14:02:07"


def test_the_model_says_when_relative_to_its_clock(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    stored = store.event(feed["bob_click"])
    assert stored is not None and stored.at.startswith("2030-01-01T10:04:00")
    model = make_model(qtbot, store, now=lambda: datetime(2030, 1, 1, 10, 9, tzinfo=UTC))
    row = ids(model).index(feed["bob_click"])
    assert model.index(row, Column.WHEN).data() == "5 min ago"
    assert model.index(row, Column.WHEN).data(Qt.ItemDataRole.ToolTipRole) == full_when(stored.at)


def test_verdict_reason_address_and_browser_are_detail_columns(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store)
    assert [HEADERS[c] for c in DETAIL_COLUMNS] == ["Verdict", "Reason", "IP address",
                                                    "User agent"]
    assert max(DETAIL_COLUMNS) == len(HEADERS) - 1  # who, what, when and where come first
    row = ids(model).index(feed["alice_open"])
    assert model.index(row, Column.IP).data() == "203.0.113.7"
    assert "Chrome" in model.index(row, Column.USER_AGENT).data()


def test_events_after_the_feed_was_seen_are_new_until_seen_again(
    qtbot: QtBot, store: RecordsStore, feed: dict[str, int]
) -> None:
    model = make_model(qtbot, store)
    assert model.new_count == 0  # what the feed opens with is seen
    assert model.index(0, 0).data(Qt.ItemDataRole.FontRole) is None
    store.add_event(event("open", "2030-02-01T00:00:00Z", contact="carol@example.com"))
    store.add_event(event("open", "2030-02-01T00:01:00Z", contact="carol@example.com"))
    with qtbot.waitSignal(model.newCountChanged, timeout=WAIT_MS) as counted:
        model.refresh()
    assert counted.args == [2]
    font = model.index(0, 0).data(Qt.ItemDataRole.FontRole)
    assert isinstance(font, QFont) and font.bold()
    assert model.index(2, 0).data(Qt.ItemDataRole.FontRole) is None
    model.mark_seen()
    assert model.new_count == 0 and model.index(0, 0).data(Qt.ItemDataRole.FontRole) is None
