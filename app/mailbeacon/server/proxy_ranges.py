"""Refreshing Apple's privacy-relay ranges, and loading the ranges the verdicts use.

The package ships a small snapshot of Apple's egress list
(``mailbeacon/data/apple_mpp_egress.csv``); an operator refreshes it from
Apple's published list with :func:`refresh_apple_ranges` and the server loads
the refreshed file with :func:`load_ranges`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mailbeacon.core.durable import atomic_write
from mailbeacon.core.ipranges import (
    APPLE_FILE,
    GOOGLE_FILE,
    MICROSOFT_FILE,
    KnownRanges,
    parse_apple_egress_csv,
    read_bundled,
)

log = logging.getLogger(__name__)

APPLE_EGRESS_URL = "https://mask-api.icloud.com/egress-ip-ranges.csv"
# Apple's real list has hundreds of thousands of rows; far fewer means a
# truncated download or an error page, which must not replace a good list.
MIN_APPLE_PREFIXES = 1000


class RangeRefreshError(Exception):
    """The ranges could not be refreshed; the previous file is untouched."""


def refresh_apple_ranges(
    fetch: Callable[[str], bytes],
    dest: Path,
    url: str = APPLE_EGRESS_URL,
    min_prefixes: int = MIN_APPLE_PREFIXES,
) -> int:
    """Download Apple's egress list with ``fetch`` and replace ``dest`` atomically.

    Returns the number of prefixes written. Raises :class:`RangeRefreshError`
    (leaving ``dest`` as it was) if the download fails or does not look like the list.
    """
    try:
        body = fetch(url)
    except Exception as exc:
        log.warning("downloading %s failed: %r", url, exc)
        raise RangeRefreshError(f"could not download Apple's ranges from {url}: {exc}") from exc
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RangeRefreshError(f"{url} did not return a text list (not UTF-8)") from exc
    count = len(parse_apple_egress_csv(text))
    if count < min_prefixes:
        raise RangeRefreshError(
            f"{url} returned {count} address prefixes, expected at least {min_prefixes}: "
            "kept the previous list"
        )
    atomic_write(dest, body, 0o644)  # a public list: readable like the shipped snapshot
    log.info("refreshed Apple relay ranges: %d prefixes in %s", count, dest)
    return count


def load_ranges(apple_csv: Path | None = None) -> KnownRanges:
    """The shipped ranges, with Apple's replaced by a refreshed file if there is one."""
    apple = read_bundled(APPLE_FILE)
    if apple_csv is not None:
        try:
            apple = apple_csv.read_text(encoding="utf-8")
        except FileNotFoundError:
            pass  # never refreshed: the snapshot stands
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s (%s); using the shipped snapshot", apple_csv, exc)
    return KnownRanges.from_texts(apple, read_bundled(GOOGLE_FILE), read_bundled(MICROSOFT_FILE))

