"""Rspamd's rows: a difference between the ways counts only when it stays (report.py)."""

from __future__ import annotations

from tests.deliverability.filters import Score
from tests.deliverability.pipeline import MODES, Sent
from tests.deliverability.report import RESCORES, rspamd_row

SENT = Sent("02_pl", "a@x.example", "b@y.example", b"raw", {m: m.encode() for m in MODES})
PLAIN = {"FROM_HAS_DN": 0.0}


class Scripted:
    """Scores each way from a script of attempts; counts the calls."""

    def __init__(self, attempts: list[dict[str, dict[str, float]]]) -> None:
        self.attempts = attempts
        self.calls = 0

    def score(self, message: bytes, mail_from: str, rcpt: str) -> Score:
        attempt = self.attempts[min(self.calls // len(MODES), len(self.attempts) - 1)]
        self.calls += 1
        rules = attempt.get(message.decode(), PLAIN)
        return Score(sum(rules.values()), rules)


def test_a_rule_that_flips_once_on_an_unchanged_message_is_scored_again() -> None:
    flip = {**PLAIN, "R_MIXED_CHARSET": 1.206896}
    rspamd = Scripted([{"untracked": flip, "tracked": flip}, {}])
    row = rspamd_row(rspamd, SENT)
    assert rspamd.calls == 2 * len(MODES)
    assert all(row.added(m) == {} == row.removed(m) for m in ("tracked", "clicks"))


def test_a_rule_that_tracking_adds_every_time_stays_in_the_row() -> None:
    rspamd = Scripted([{"tracked": {**PLAIN, "R_SUSPICIOUS_URL": 5.5}}])
    row = rspamd_row(rspamd, SENT)
    assert rspamd.calls == (1 + RESCORES) * len(MODES)
    assert row.added("tracked") == {"R_SUSPICIOUS_URL": 5.5}
    assert row.added("clicks") == {} == row.removed("clicks")


def test_agreeing_ways_are_scored_once() -> None:
    rspamd = Scripted([{}])
    rspamd_row(rspamd, SENT)
    assert rspamd.calls == len(MODES)
