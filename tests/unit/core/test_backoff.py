"""The one backoff rule: growth, cap, jitter bounds, and a Retry that starts over."""

from __future__ import annotations

import random

import pytest

from mailbeacon.core.backoff import Backoff, Retry


def test_without_jitter_the_wait_doubles_from_first_up_to_the_cap() -> None:
    backoff = Backoff(first=1.0, factor=2.0, cap=10.0)
    assert [backoff.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.delay(-3) == 1.0  # a negative attempt counts as the first


def test_jitter_stays_within_its_share_and_never_passes_the_cap() -> None:
    backoff = Backoff(first=10.0, factor=2.0, cap=100.0, jitter=0.2)
    rng = random.Random(7)
    for attempt, base in [(0, 10.0), (1, 20.0), (2, 40.0)]:
        waits = [backoff.delay(attempt, rng.random) for _ in range(300)]
        assert all(base * 0.8 <= w <= base * 1.2 for w in waits)
        assert max(waits) - min(waits) > base * 0.2  # really spread, not one value
    assert all(backoff.delay(n, rng.random) <= 100.0 for n in range(3, 60))


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 8.0), (0.5, 10.0), (1.0, 12.0)])
def test_the_random_number_maps_linearly_onto_the_spread(rand: float, expected: float) -> None:
    assert Backoff(first=10.0, cap=100.0, jitter=0.2).delay(0, lambda: rand) == expected


def test_jitter_is_ignored_without_a_random_source() -> None:
    assert Backoff(first=3.0, jitter=0.5).delay(0) == 3.0


def test_thousands_of_failures_in_a_row_wait_the_cap() -> None:
    assert Backoff(first=1.0, cap=300.0).delay(5000) == 300.0
    assert Backoff(first=0.0, cap=300.0).delay(5000) == 0.0


def test_retry_counts_failures_and_starts_over_after_success() -> None:
    retry = Retry(Backoff(first=1.0, factor=3.0, cap=100.0))
    assert [retry.next_delay() for _ in range(4)] == [1.0, 3.0, 9.0, 27.0]
    assert retry.attempt == 4
    retry.reset()
    assert retry.attempt == 0
    assert retry.next_delay() == 1.0


def test_retry_passes_its_random_source_on() -> None:
    retry = Retry(Backoff(first=10.0, cap=100.0, jitter=0.5), rand=lambda: 0.0)
    assert retry.next_delay() == 5.0
