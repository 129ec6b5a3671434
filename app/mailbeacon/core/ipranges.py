"""Address normalisation and range matching (IPv4, IPv6, IPv4-mapped IPv6).

Pure, apart from reading the range lists shipped inside the package
(``mailbeacon/data``) in :func:`bundled_ranges`: those are read-only package
data, not the user's files, and are read once per process.

Shipped lists (each file names its sources and date in its header):

* ``apple_mpp_egress.csv`` — a *snapshot* of Apple's published egress ranges
  (``https://mask-api.icloud.com/egress-ip-ranges.csv``, rows
  ``prefix,country,region,city``), the addresses Apple's privacy relays, Mail
  Privacy Protection among them, fetch from. The snapshot is partial and ages:
  refresh it with ``mailbeacon.server.proxy_ranges.refresh_apple_ranges``.
* ``google_ranges.txt`` — Google's mail and image-proxy networks (Gmail's
  prefetch and GoogleImageProxy fetch from these).
* ``microsoft_ranges.txt`` — Exchange Online / Exchange Online Protection
  networks (Defender Safe Links detonates links from these).
"""

from __future__ import annotations

import bisect
import csv
import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_ADDRESS_CHARS = 100  # longest IPv6 text with a scope id is far below this

DATA_PACKAGE = "mailbeacon"
DATA_DIR = "data"
APPLE_FILE = "apple_mpp_egress.csv"
GOOGLE_FILE = "google_ranges.txt"
MICROSOFT_FILE = "microsoft_ranges.txt"


@lru_cache(maxsize=4096)
def normalize_ip(text: str | None) -> IPAddress | None:
    """The address in ``text``, IPv4-mapped IPv6 unwrapped to IPv4; None if not an address.

    Accepts ``[v6]`` brackets and zone ids (``fe80::1%eth0``, the zone is dropped).
    """
    if not text or len(text) > _MAX_ADDRESS_CHARS:
        return None
    cleaned = text.strip()
    if cleaned.startswith("[") and cleaned.endswith("]"):
        cleaned = cleaned[1:-1]
    return parse_ip(cleaned.split("%", 1)[0])


def parse_ip(text: str) -> IPAddress | None:
    """The address ``text`` spells exactly, IPv4-mapped IPv6 unwrapped to IPv4; None if
    it spells none. Stricter than :func:`normalize_ip`: no brackets, zones or spaces."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def same_host(a: IPAddress, b: IPAddress) -> bool:
    """Whether two addresses are one client: equal IPv4, or the same IPv6 /64.

    IPv6 hosts rotate privacy addresses inside their /64, so a /64 is one host here.
    """
    if a.version != b.version:
        return False
    if a.version == 4:
        return a == b
    return (int(a) >> 64) == (int(b) >> 64)


TRUNCATED_V4_PREFIX = 24
TRUNCATED_V6_PREFIX = 48


@lru_cache(maxsize=4096)
def truncate_ip(text: str) -> str:
    """The address with its host part zeroed: the /24 of IPv4, the /48 of IPv6.

    ``203.0.113.77`` becomes ``203.0.113.0``, ``2001:db8:1:2::5`` becomes
    ``2001:db8:1::`` (an address, not ``a/24``: whatever reads addresses still can).
    IPv4-mapped IPv6 is truncated as IPv4. Text that is no address becomes ``""``:
    nothing that might identify someone is kept by accident.
    """
    address = normalize_ip(text)
    if address is None:
        return ""
    prefix = TRUNCATED_V4_PREFIX if address.version == 4 else TRUNCATED_V6_PREFIX
    return str(ipaddress.ip_network((address, prefix), strict=False).network_address)


def parse_network(text: str) -> IPNetwork | None:
    """A network from ``prefix/len`` or a bare address (host route); None if malformed."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96), strict=False)
    return network


_ADDRESS_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address)


class RangeSet:
    """A set of networks answering "is this address inside any of them" in O(log n)."""

    __slots__ = ("_ends", "_starts", "count")

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        count = 0
        for network in networks:
            start = int(network.network_address)
            spans[network.version].append((start, start + network.num_addresses - 1))
            count += 1
        self.count = count
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in spans.items():
            merged = _merge(sorted(items))
            self._starts[version] = [s for s, _ in merged]
            self._ends[version] = [e for _, e in merged]

    def __contains__(self, address: object) -> bool:
        # Three lookups per hit on the pixel path: a tuple isinstance, one version read.
        if not isinstance(address, _ADDRESS_TYPES):
            return False
        value = int(address)
        version = address.version
        index = bisect.bisect_right(self._starts[version], value) - 1
        return index >= 0 and value <= self._ends[version][index]

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"RangeSet({self.count} networks)"


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def parse_prefix_list(text: str) -> list[IPNetwork]:
    """Networks from a text list: one prefix per line, ``#`` starts a comment.

    Malformed lines are skipped (the lists are maintained by hand).
    """
    networks: list[IPNetwork] = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        network = parse_network(entry.split()[0])
        if network is not None:
            networks.append(network)
    return networks


def parse_apple_egress_csv(text: str) -> list[IPNetwork]:
    """Networks from Apple's egress CSV (``prefix,country,region,city``, no header).

    ``#`` comment lines (used by the shipped snapshot) and malformed rows are skipped.
    """
    networks: list[IPNetwork] = []
    lines = (line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    for row in csv.reader(io.StringIO("\n".join(lines))):
        if not row:
            continue
        network = parse_network(row[0])
        if network is not None:
            networks.append(network)
    return networks


@dataclass(frozen=True, slots=True)
class KnownRanges:
    """Networks of the relays and scanners that the verdict rules name."""

    apple_relay: RangeSet = field(default_factory=RangeSet)
    google_mail: RangeSet = field(default_factory=RangeSet)
    microsoft_mail: RangeSet = field(default_factory=RangeSet)

    @classmethod
    def from_texts(cls, apple_csv: str, google: str, microsoft: str) -> KnownRanges:
        """Ranges from the texts of the three lists."""
        return cls(
            apple_relay=RangeSet(parse_apple_egress_csv(apple_csv)),
            google_mail=RangeSet(parse_prefix_list(google)),
            microsoft_mail=RangeSet(parse_prefix_list(microsoft)),
        )


def read_bundled(name: str) -> str:
    """The text of one list shipped in ``mailbeacon/data``."""
    return resources.files(DATA_PACKAGE).joinpath(DATA_DIR, name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def bundled_ranges() -> KnownRanges:
    """The ranges shipped with this version (read once per process)."""
    return KnownRanges.from_texts(
        read_bundled(APPLE_FILE), read_bundled(GOOGLE_FILE), read_bundled(MICROSOFT_FILE)
    )
