"""Refreshing Apple's relay ranges with a fake download, and loading the refreshed list."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon.core.ipranges import normalize_ip
from mailbeacon.server.proxy_ranges import (
    APPLE_EGRESS_URL,
    RangeRefreshError,
    load_ranges,
    refresh_apple_ranges,
)

FRESH = "".join(f"100.{i // 256}.{i % 256}.0/24,US,US-CA,Los Angeles\n" for i in range(1500))


class FakeFetch:
    """A download that returns a fixed body (or raises) and remembers what it was asked."""

    def __init__(self, body: bytes = b"", error: Exception | None = None) -> None:
        self.body = body
        self.error = error
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        return self.body


def test_refresh_writes_the_downloaded_list_and_the_server_loads_it(tmp_path: Path) -> None:
    dest = tmp_path / "ranges" / "apple_egress.csv"
    fetch = FakeFetch(FRESH.encode())
    assert refresh_apple_ranges(fetch, dest) == 1500
    assert fetch.urls == [APPLE_EGRESS_URL]
    assert dest.read_text(encoding="utf-8") == FRESH
    ranges = load_ranges(dest)
    assert normalize_ip("100.1.2.3") in ranges.apple_relay
    assert normalize_ip("172.224.226.20") not in ranges.apple_relay  # the snapshot is replaced
    assert normalize_ip("40.107.1.1") in ranges.microsoft_mail  # the other lists stay


@pytest.mark.expect_log("failed")
@pytest.mark.parametrize(
    ("fetch", "message"),
    [
        (FakeFetch(error=OSError("connection refused")), "could not download"),
        (FakeFetch(b"<html>Service Unavailable</html>"), "0 address prefixes"),
        (FakeFetch(FRESH.encode()[:2000]), "expected at least 1000"),
        (FakeFetch(b"\xff\xfe\x00garbage"), "not UTF-8"),
    ],
)
def test_a_failed_refresh_keeps_the_previous_list(
    tmp_path: Path, fetch: FakeFetch, message: str
) -> None:
    dest = tmp_path / "apple_egress.csv"
    dest.write_text("17.0.0.0/8,US,,\n", encoding="utf-8")
    with pytest.raises(RangeRefreshError, match=message):
        refresh_apple_ranges(fetch, dest)
    assert dest.read_text(encoding="utf-8") == "17.0.0.0/8,US,,\n"
    assert [p.name for p in tmp_path.iterdir()] == ["apple_egress.csv"]  # no temp file left


def test_without_a_refreshed_file_the_snapshot_is_used(tmp_path: Path) -> None:
    ranges = load_ranges(tmp_path / "never-refreshed.csv")
    assert normalize_ip("172.224.226.20") in ranges.apple_relay
    assert normalize_ip("172.224.226.20") in load_ranges(None).apple_relay


@pytest.mark.expect_log("using the shipped snapshot")
def test_an_unreadable_refreshed_file_falls_back_to_the_snapshot(tmp_path: Path) -> None:
    broken = tmp_path / "apple_egress.csv"
    broken.write_bytes(b"\xff\xfe not text")
    assert normalize_ip("172.224.226.20") in load_ranges(broken).apple_relay
