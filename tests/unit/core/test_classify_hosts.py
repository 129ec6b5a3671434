"""The host key that classify compares earlier hits by agrees with ipranges.same_host."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.classify import Hit, PriorHit, host_key
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.ipranges import normalize_ip, same_host

V4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
V6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
MAPPED = V4.map(lambda a: f"::ffff:{a}")
ADDRESS = st.one_of(V4, V6, MAPPED)


@given(ADDRESS, ADDRESS)
def test_equal_keys_exactly_when_same_host(a: str, b: str) -> None:
    first, second = normalize_ip(a), normalize_ip(b)
    assert first is not None and second is not None
    assert (host_key(a) == host_key(b)) == same_host(first, second)


@given(V6, st.integers(0, 2**64 - 1))
def test_one_ipv6_slash_64_is_one_key(address: str, suffix: int) -> None:
    prefix = int(ipaddress.IPv6Address(address)) >> 64 << 64
    rotated = str(ipaddress.IPv6Address(prefix | suffix))
    assert host_key(address) == host_key(rotated)


def test_what_is_no_address_has_no_key() -> None:
    for text in ("", "unknown", "999.1.1.1", "1.2.3.4/24", "x" * 5000):
        assert host_key(text) is None
    assert host_key(None) is None
    assert host_key(b"1.2.3.4") is None


def test_a_prior_hit_carries_its_key_and_compares_without_it() -> None:
    hit = Hit(EventType.OPEN, "GET", "::ffff:192.0.2.1", "UA", 1.0, 0, "m", None)
    prior = PriorHit(1, hit, Verdict.HUMAN)
    assert prior.host == host_key("192.0.2.1")
    assert prior == PriorHit(1, hit, Verdict.HUMAN)
