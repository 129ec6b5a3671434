"""Country of an IP address from an offline database, for notification text.

Uses the ``geoip2fast`` package, which ships its database inside the package
(MaxMind GeoLite2 Country data, IPv4 and IPv6, as of the package's release;
GeoLite2 is CC BY-SA 4.0: "This product includes GeoLite2 data created by
MaxMind"). Nothing is downloaded. Loading takes ~0.15 s and ~45 MB of memory,
so the database is loaded on first lookup, not at import.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

from mailbeacon.core.ipranges import normalize_ip

log = logging.getLogger(__name__)

DATA_FILE = "geoip2fast-ipv6.dat.gz"  # the package's country file with IPv6
_CODE_LENGTH = 2


class CountryLookup:
    """IP address to ISO 3166 country code, loaded lazily from the shipped database."""

    def __init__(self, data_file: str = DATA_FILE) -> None:
        self._data_file = data_file
        self._db: Any = None
        self._failed = False
        self._lock = threading.Lock()

    def country_of(self, ip: str | None) -> str | None:
        """The two-letter country code of ``ip``; None for private, unknown or bad addresses."""
        address = normalize_ip(ip)
        if address is None or not address.is_global:
            return None
        db = self._database()
        if db is None:
            return None
        try:
            code = db.lookup(str(address)).country_code
        except Exception:  # a lookup must never break a notification
            log.exception("country lookup failed for %s", address)
            return None
        if isinstance(code, str) and len(code) == _CODE_LENGTH and code.isalpha():
            return code.upper()
        return None

    def _database(self) -> Any:
        with self._lock:
            if self._db is None and not self._failed:
                try:
                    from geoip2fast import GeoIP2Fast  # noqa: PLC0415 - 45 MB, load on demand

                    self._db = GeoIP2Fast(verbose=False, geoip2fast_data_file=self._data_file)
                except Exception:
                    self._failed = True
                    log.exception("the offline country database could not be loaded")
            return self._db


@lru_cache(maxsize=1)
def default_lookup() -> CountryLookup:
    """The process-wide lookup (the database is large: load it once)."""
    return CountryLookup()


def country_of(ip: str | None) -> str | None:
    """The two-letter country code of ``ip`` from the shipped database, or None."""
    return default_lookup().country_of(ip)
