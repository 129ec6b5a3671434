"""MAILBEACON_NAMESERVER: which name server discovery asks."""

from __future__ import annotations

import pytest

from mailbeacon.agent.account.discovery import NameserverInvalid, resolver_from_env


@pytest.mark.parametrize(
    ("value", "nameserver", "port"),
    [
        ("127.0.0.1", "127.0.0.1", 53),
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        (" 10.0.0.2:53 ", "10.0.0.2", 53),
        ("::1", "::1", 53),
        ("[::1]:5353", "::1", 5353),
    ],
)
def test_the_variable_names_the_only_nameserver(value: str, nameserver: str, port: int) -> None:
    resolver = resolver_from_env({"MAILBEACON_NAMESERVER": value})
    assert [str(n) for n in resolver.nameservers] == [nameserver]
    assert resolver.port == port
    assert resolver.lifetime <= 2.0  # a dead server must not hold discovery up


@pytest.mark.parametrize("value", ["dns.example.org", "127.0.0.1:dns", "127.0.0.1:0", "[::1"])
def test_a_value_that_is_no_address_says_how_to_fix_it(value: str) -> None:
    with pytest.raises(NameserverInvalid, match="set it to IP or IP:PORT"):
        resolver_from_env({"MAILBEACON_NAMESERVER": value})
