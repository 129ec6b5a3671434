"""Country of an address from the offline database shipped with geoip2fast (no network)."""

from __future__ import annotations

import pytest

from mailbeacon.agent.notifications.geo import CountryLookup, country_of


@pytest.fixture(scope="module")
def lookup() -> CountryLookup:
    return CountryLookup()


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("81.2.69.142", "GB"),  # MaxMind's own test address for the UK
        ("::ffff:81.2.69.142", "GB"),
        ("8.8.8.8", "US"),
        ("2a00:1450:4001::1", "DE"),
    ],
)
def test_public_addresses_have_a_country(lookup: CountryLookup, ip: str, country: str) -> None:
    assert lookup.country_of(ip) == country


@pytest.mark.parametrize(
    "ip", [None, "", "garbage", "127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "2001:db8::1"]
)
def test_private_unknown_and_bad_addresses_have_none(lookup: CountryLookup, ip: str | None) -> None:
    assert lookup.country_of(ip) is None


@pytest.mark.expect_log("the offline country database could not be loaded")
def test_a_missing_database_gives_none_not_an_error() -> None:
    assert CountryLookup(data_file="/nonexistent/geo.dat.gz").country_of("81.2.69.142") is None


def test_the_module_function_uses_the_shared_lookup() -> None:
    assert country_of("81.2.69.142") == "GB"
