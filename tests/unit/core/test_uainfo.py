"""Describing the reader's client and device for the notification text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.uainfo import ClientInfo, describe, device_family
from tests.helpers.classify import AgentCase, load_cases

LABELLED = [c for c in load_cases() if c.label]


@pytest.mark.parametrize("case", LABELLED, ids=[c.case for c in LABELLED])
def test_label_and_device_family_of_real_agents(case: AgentCase) -> None:
    assert describe(case.user_agent).label == case.label
    assert device_family(case.user_agent) == case.device


def test_a_mail_client_is_named_with_its_platform() -> None:
    outlook = describe("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)")
    assert outlook == ClientInfo("Outlook", "Windows", "", "Outlook on Windows")
    iphone = describe(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148"
    )
    assert iphone == ClientInfo("Apple Mail", "iOS", "iPhone", "Apple Mail on iPhone")


def test_a_phone_model_is_kept_when_the_agent_names_it() -> None:
    info = describe(
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
    )
    assert info.device == "Samsung SM-S918B"
    assert info.os == "Android"


def test_proxies_hide_the_device() -> None:
    info = describe(
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert info == ClientInfo("Gmail", "", "", "via Gmail", proxy=True)  # not "Firefox on XP"


def test_a_new_device_family_is_told_apart_from_the_same_one() -> None:
    mac_mail = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    )
    mac_chrome = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    android = (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36"
    )
    assert device_family(mac_mail) == device_family(mac_chrome) == "Mac"
    assert device_family(android) == "Android"


@pytest.mark.parametrize("agent", [None, "", "   ", "x" * 10_000, "\ufffd\x00\x01", "curl/8.4.0"])
def test_unknown_agents_say_so(agent: str | None) -> None:
    assert device_family(agent) == "unknown"
    assert describe(agent).label in ("unknown device", "curl")


@given(st.text(max_size=600))
def test_any_text_gets_a_description(agent: str) -> None:
    info = describe(agent)
    assert info.label
    assert device_family(agent)
