"""The team's data on the server: the account's policy, each rep's agent, the report.

The policy is one row per decided key (``policy`` table) and a version in the meta
table that every change bumps in the same transaction; a running server polls that
one value (:class:`PolicyWatch`), as it does the users generation (users.py), so a
change made by ``server policy set`` or the console reaches every connected agent
within a poll. SQL here is written once for SQLite and PostgreSQL (``Store.rows``,
``Store.write``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.policy import POLICY_KEYS, PolicyItem, TeamPolicy
from mailbeacon.server.store import Store

POLICY_VERSION_KEY = "policy_version"
ACTIVITY_KINDS = ("sent", "reply")
_MAX_VERSION_TEXT = 40


def _policy_rows(store: Store) -> TeamPolicy:
    version = int(store.get_meta(POLICY_VERSION_KEY) or 0)
    rows = store.rows("SELECT key, value, enforced FROM policy")
    order = list(POLICY_KEYS)
    items = sorted(
        (PolicyItem(str(k), str(v), bool(e)) for k, v, e in rows if k in POLICY_KEYS),
        key=lambda item: order.index(item.key),
    )
    return TeamPolicy(version, tuple(items))


def load_policy(store: Store) -> TeamPolicy:
    """The account's policy now (version 0 and no items when none was ever set)."""
    with store.snapshot():
        return _policy_rows(store)


def policy_version(store: Store) -> int:
    """The version every change bumps (what a running server watches)."""
    return int(store.get_meta(POLICY_VERSION_KEY) or 0)


def _store_change(store: Store, new: TeamPolicy, key: str, now: str) -> None:
    item = new.item(key)
    if item is None:
        store.write("DELETE FROM policy WHERE key = ?", (key,))
    else:
        store.write(
            "INSERT INTO policy (key, value, enforced, changed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "enforced = excluded.enforced, changed_at = excluded.changed_at",
            (key, item.value, int(item.enforced), now),
        )
    store.set_meta(POLICY_VERSION_KEY, str(new.version))


def set_policy_item(store: Store, key: str, text: str, enforce: bool, now: str) -> TeamPolicy:
    """Decide ``key`` for the team; returns the new policy. Raises PolicyError (nothing
    changed) for a key or value that cannot be part of a policy."""
    TeamPolicy().with_item(key, text, enforce)  # refuse before taking the write lock
    with store.transaction():
        new = _policy_rows(store).with_item(key, text, enforce)
        _store_change(store, new, key, now)
    return new


def clear_policy_item(store: Store, key: str, now: str) -> TeamPolicy:
    """Leave ``key`` to each rep again; returns the new policy."""
    TeamPolicy().without(key)
    with store.transaction():
        new = _policy_rows(store).without(key)
        _store_change(store, new, key, now)
    return new


class PolicyWatch:
    """The running server's view of the policy: re-read when its version moved.

    Holds a store connection of its own; :meth:`poll` runs on a worker thread.
    ``policy`` is what the tracker consults on every hit (no query on that path).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.policy = load_policy(store)

    def poll(self) -> TeamPolicy | None:
        """The new policy when it changed since the last poll, else None. Blocking."""
        if policy_version(self._store) == self.policy.version:
            return None
        self.policy = load_policy(self._store)
        return self.policy

    def close(self) -> None:
        """Release the connection."""
        self._store.close()


# -- each rep's agent -----------------------------------------------------------------


def touch_agent(store: Store, user_id: int, version: str, seen_at: float) -> None:
    """Remember that an agent of this user (this version) connected now."""
    store.write(
        "INSERT INTO agent_seen (user_id, last_seen, version) VALUES (?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen, "
        "version = excluded.version",
        (user_id, seen_at, version[:_MAX_VERSION_TEXT] or "unknown"),
    )


@dataclass(frozen=True, slots=True)
class RepRow:
    """One rep as the console lists them."""

    id: int
    name: str
    created_at: str
    last_seen: float | None
    agent_version: str


def list_reps(store: Store) -> list[RepRow]:
    """Every enrolled rep, oldest first, with their agent's last connection."""
    rows = store.rows(
        "SELECT u.id, u.name, u.created_at, a.last_seen, a.version FROM users u "
        "LEFT JOIN agent_seen a ON a.user_id = u.id ORDER BY u.id"
    )
    return [
        RepRow(
            int(str(r[0])),
            str(r[1]),
            str(r[2]),
            None if r[3] is None else float(str(r[3])),
            str(r[4] or ""),
        )
        for r in rows
    ]


def record_activity(store: Store, user_id: int, kind: str, message: str, at: str) -> None:
    """A tracked send or a person's reply an agent reported (stored once)."""
    store.write(
        "INSERT INTO rep_activity (user_id, message, kind, at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (user_id, message, kind, at),
    )


# -- the team report ------------------------------------------------------------------


@dataclass
class WeekFigures:
    """One rep's week: what the report shows."""

    rep: str
    week: str  # the Monday, YYYY-MM-DD (UTC)
    tracked: int = 0
    opens: int = 0
    clicks: int = 0
    replies: int = 0
    hits: int = 0  # every open and click the server answered and recorded
    scanners: int = 0
    proxies: int = 0
    self_: int = 0

    @property
    def filtered_share(self) -> float:
        """The share of recorded hits no person made (0 when there were none)."""
        filtered = self.scanners + self.proxies + self.self_
        return filtered / self.hits if self.hits else 0.0

    def to_json(self) -> dict[str, object]:
        """The report's row for scripts (``server report --json``) and the CSV."""
        return {
            "rep": self.rep,
            "week": self.week,
            "emails_tracked": self.tracked,
            "human_opens": self.opens,
            "clicks": self.clicks,
            "replies": self.replies,
            "filtered_scanners": self.scanners,
            "filtered_proxies": self.proxies,
            "filtered_self": self.self_,
            "filtered_share": round(self.filtered_share, 3),
        }


def week_of(at: str) -> str:
    """The Monday (UTC) of the week an ISO 8601 time falls in."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    day = moment.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def team_report(store: Store, since: str) -> list[WeekFigures]:
    """Per rep and week since ``since`` (ISO 8601): tracked emails, human opens and
    clicks, replies, and what was filtered as scanners, proxies or the rep's own."""
    with store.snapshot():
        names = {int(str(r[0])): str(r[1]) for r in store.rows("SELECT id, name FROM users")}
        events = store.rows(
            "SELECT id, user_id, type, at, verdict, counts FROM events WHERE at >= ?", (since,)
        )
        revisions = store.rows("SELECT event_id, verdict, counts FROM revisions ORDER BY id")
        activity = store.rows("SELECT user_id, kind, at FROM rep_activity WHERE at >= ?", (since,))
    latest = {int(str(r[0])): (str(r[1]), r[2]) for r in revisions}
    figures: dict[tuple[int, str], WeekFigures] = {}

    def row(user_id: int, at: str) -> WeekFigures:
        key = (user_id, week_of(at))
        if key not in figures:
            figures[key] = WeekFigures(names.get(user_id, f"removed rep {user_id}"), key[1])
        return figures[key]

    for event_id, user_id, kind, at, verdict, counts in events:
        verdict_now, counts_now = latest.get(int(str(event_id)), (str(verdict), counts))
        counted = verdict_now == Verdict.HUMAN if counts_now is None else bool(counts_now)
        week = row(int(str(user_id)), str(at))
        week.hits += 1
        if counted:
            if kind == EventType.OPEN:
                week.opens += 1
            elif kind == EventType.CLICK:
                week.clicks += 1
            continue
        if verdict_now == Verdict.SELF:
            week.self_ += 1
        elif verdict_now == Verdict.PROXY:
            week.proxies += 1
        else:
            week.scanners += 1
    for user_id, kind, at in activity:
        week = row(int(str(user_id)), str(at))
        if kind == "sent":
            week.tracked += 1
        elif kind == "reply":
            week.replies += 1
    return sorted(figures.values(), key=lambda w: (w.week, w.rep))
