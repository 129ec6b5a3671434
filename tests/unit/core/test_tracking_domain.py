"""A tracking URL is judged as recipients and spam filters would see it (issues 18, 19)."""

from __future__ import annotations

import pytest

from mailbeacon.core.tracking_domain import DomainProblem, check_tracking_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8725", {"loopback", "ip_literal", "plain_http"}),
        ("http://localhost:8725", {"loopback", "plain_http"}),
        ("http://[::1]:8725", {"loopback", "ip_literal", "plain_http"}),
        ("http://192.168.1.20:8725", {"private", "ip_literal", "plain_http"}),
        ("https://10.0.0.5", {"private", "ip_literal"}),
        ("https://203.0.113.9", {"private", "ip_literal"}),  # documentation range: not global
        ("https://8.8.8.8", {"ip_literal"}),
        ("http://track.acme.com", {"plain_http"}),
        ("https://track.acme.com", set()),
        ("https://acme.com", set()),
        ("https://track.mailbeacon-shared.net", {"not_subdomain"}),
        ("ftp://track.acme.com", {"invalid"}),
        ("", {"invalid"}),
    ],
)
def test_each_problem_is_named(url: str, expected: set[str]) -> None:
    check = check_tracking_url(url, "acme.com")
    assert {str(problem) for problem in check.problems} == expected


def test_only_loopback_private_and_invalid_make_it_unreachable() -> None:
    assert not check_tracking_url("http://127.0.0.1:8725").reachable_by_recipients
    assert not check_tracking_url("https://192.168.0.2").reachable_by_recipients
    assert check_tracking_url("https://8.8.8.8").reachable_by_recipients
    assert check_tracking_url("https://track.other.net", "acme.com").reachable_by_recipients


def test_the_sentences_say_what_it_means_for_the_rep() -> None:
    check = check_tracking_url("http://127.0.0.1:8725", "acme.com")
    assert check.problems[0] is DomainProblem.LOOPBACK
    first = check.sentences()[0]
    assert "only seen when the email is read on this computer" in first
    assert "track.acme.com" in check_tracking_url("https://t.other.net", "acme.com").sentences()[0]


def test_without_a_sender_domain_no_subdomain_advice() -> None:
    assert check_tracking_url("https://track.other.net").problems == ()
