"""Address normalisation and range matching, and the shipped range lists."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.ipranges import (
    APPLE_FILE,
    GOOGLE_FILE,
    MICROSOFT_FILE,
    RangeSet,
    bundled_ranges,
    normalize_ip,
    parse_apple_egress_csv,
    parse_network,
    parse_prefix_list,
    read_bundled,
    same_host,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::FFFF:cb00:7107", "203.0.113.7"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_addresses_are_normalised(text: str, expected: str) -> None:
    assert str(normalize_ip(text)) == expected


@pytest.mark.parametrize(
    "text", [None, "", "unknown", "999.1.1.1", "1.2.3.4/24", "1.2.3", "::ffff:999.0.0.1", "x" * 500]
)
def test_non_addresses_are_none(text: str | None) -> None:
    assert normalize_ip(text) is None


@given(st.text(max_size=200))
def test_normalising_any_text_never_raises(text: str) -> None:
    normalize_ip(text)


def test_one_host_is_one_ipv4_address_or_one_ipv6_slash_64() -> None:
    def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        address = normalize_ip(text)
        assert address is not None
        return address

    assert same_host(ip("192.0.2.1"), ip("::ffff:192.0.2.1"))
    assert not same_host(ip("192.0.2.1"), ip("192.0.2.2"))
    assert same_host(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"))
    assert not same_host(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"))
    assert not same_host(ip("0.0.0.1"), ip("::1"))


def test_a_range_set_contains_exactly_its_networks() -> None:
    ranges = RangeSet(
        n
        for n in map(parse_network, ["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "2001:db8::/32"])
        if n is not None
    )
    assert normalize_ip("10.0.0.0") in ranges
    assert normalize_ip("11.255.255.255") in ranges  # adjacent networks merge
    assert normalize_ip("9.255.255.255") not in ranges
    assert normalize_ip("12.0.0.0") not in ranges
    assert normalize_ip("::ffff:10.2.3.4") in ranges
    assert normalize_ip("2001:db8:ffff::1") in ranges
    assert normalize_ip("2001:db9::1") not in ranges
    assert "10.0.0.1" not in ranges  # only parsed addresses are matched
    assert None not in ranges
    assert len(ranges) == 4


def test_an_empty_range_set_contains_nothing() -> None:
    assert normalize_ip("1.2.3.4") not in RangeSet()
    assert normalize_ip("::1") not in RangeSet()


@given(st.ip_addresses(), st.lists(st.ip_addresses(), max_size=20), st.integers(0, 128))
def test_range_set_agrees_with_ipaddress(
    probe: ipaddress.IPv4Address | ipaddress.IPv6Address,
    bases: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    length: int,
) -> None:
    networks = [
        ipaddress.ip_network(f"{b}/{min(length, b.max_prefixlen)}", strict=False) for b in bases
    ]
    expected = any(probe in n for n in networks if n.version == probe.version)
    assert (probe in RangeSet(networks)) is expected


def test_prefix_lists_skip_comments_and_malformed_lines() -> None:
    text = "# header\n1.2.3.0/24  # trailing\n\nnot-a-prefix\n2001:db8::/32\n5.6.7.8\n"
    assert [str(n) for n in parse_prefix_list(text)] == [
        "1.2.3.0/24",
        "2001:db8::/32",
        "5.6.7.8/32",
    ]


def test_mapped_prefixes_become_ipv4() -> None:
    assert str(parse_network("::ffff:1.2.3.0/120")) == "1.2.3.0/24"


def test_apple_egress_csv_rows_are_parsed() -> None:
    text = (
        "172.224.224.0/27,GB,GB-EN,London\n"
        "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London\n"
        '104.28.0.0/24,US,US-CA,"San Jose, CA"\n'
        "garbage,XX,,\n"
        ",,,\n"
    )
    assert [str(n) for n in parse_apple_egress_csv(text)] == [
        "172.224.224.0/27",
        "2a02:26f7:b3c0:4000::/64",
        "104.28.0.0/24",
    ]


@pytest.mark.parametrize("name", [GOOGLE_FILE, MICROSOFT_FILE])
def test_every_line_of_the_shipped_lists_parses(name: str) -> None:
    text = read_bundled(name)
    entries = [line.split("#")[0].strip() for line in text.splitlines()]
    assert len(parse_prefix_list(text)) == len([e for e in entries if e]) > 5
    assert "Source" in text


def test_the_shipped_apple_snapshot_parses_and_says_it_is_a_snapshot() -> None:
    text = read_bundled(APPLE_FILE)
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(parse_apple_egress_csv(text)) == len(rows) > 5
    assert "SNAPSHOT" in text
    assert all(len(row.split(",")) == 4 for row in rows)


@pytest.mark.parametrize(
    ("address", "list_name"),
    [
        ("172.224.226.20", "apple_relay"),
        ("2a02:26f7:b3c0:4000::17", "apple_relay"),
        ("104.28.1.9", "apple_relay"),
        ("66.249.84.10", "google_mail"),
        ("209.85.220.41", "google_mail"),
        ("2a00:1450:4864:20::131", "google_mail"),
        ("40.107.243.60", "microsoft_mail"),
        ("52.100.1.2", "microsoft_mail"),
        ("2a01:111:f400:7e8a::12", "microsoft_mail"),
    ],
)
def test_shipped_ranges_know_the_relays_and_scanners(address: str, list_name: str) -> None:
    ranges = bundled_ranges()
    for name in ("apple_relay", "google_mail", "microsoft_mail"):
        assert (normalize_ip(address) in getattr(ranges, name)) is (name == list_name)


@pytest.mark.parametrize("address", ["203.0.113.7", "8.8.8.8", "17.253.144.10", "192.168.1.1"])
def test_ordinary_addresses_are_in_no_list(address: str) -> None:
    ranges = bundled_ranges()
    ip = normalize_ip(address)
    assert ip not in ranges.apple_relay
    assert ip not in ranges.google_mail
    assert ip not in ranges.microsoft_mail
