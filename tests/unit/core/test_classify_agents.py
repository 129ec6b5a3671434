"""Verdicts by user agent: a table of real agents from mail clients, proxies, scanners,
unfurlers, libraries, headless browsers and crawlers (tests/data/user_agents.csv)."""

from __future__ import annotations

import re

import pytest
from crawlerdetect import CrawlerDetect
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core.botlists import (
    AGENT_RULES,
    CRAWLER_RULES,
    HEADLESS_RULES,
    LIBRARY_RULES,
    SCANNER_RULES,
    UNFURLER_RULES,
)
from mailbeacon.core.classify import Context, Hit, classify
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.useragents import AgentMatcher, crawlerdetect_test
from tests.helpers.classify import AgentCase, load_cases

CASES = load_cases()
FAST_CRAWLER_TEST = crawlerdetect_test()
SENT = 1_800_000_000
AN_HOUR_LATER = SENT + 3600.0


def hit_for(case: AgentCase) -> Hit:
    kind = EventType(case.type)
    return Hit(
        type=kind,
        method="GET",
        ip=case.ip,
        user_agent=case.user_agent,
        at=AN_HOUR_LATER,
        minted_at=SENT,
        message="m1",
        recipient="r1",
        link=1 if kind is EventType.CLICK else None,
    )


def test_the_table_holds_at_least_forty_real_agents() -> None:
    assert sum(1 for c in CASES if c.origin == "real") >= 40
    assert len({c.case for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.case for c in CASES])
def test_agent_gets_its_verdict_and_reason(case: AgentCase) -> None:
    decision = classify(hit_for(case), Context())
    assert decision.verdict is Verdict(case.verdict), decision.reason
    assert decision.counts_as_human is case.counts
    assert case.reason in decision.reason


@pytest.mark.parametrize(
    "rule",
    SCANNER_RULES + UNFURLER_RULES + LIBRARY_RULES + HEADLESS_RULES + CRAWLER_RULES,
    ids=lambda r: r.family,
)
def test_every_listed_bot_family_has_a_table_row_it_catches(rule: object) -> None:
    caught = [
        c
        for c in CASES
        if classify(hit_for(c), Context()).family == getattr(rule, "family", None)
        and c.verdict == "bot"
    ]
    assert caught, f"no row of the table exercises {rule}"


def test_every_rule_names_a_source_and_compiles() -> None:
    for rule in AGENT_RULES:
        assert rule.source, rule.family
        re.compile(rule.pattern)


def test_crawler_lists_flag_gmail_and_yahoo_proxies_but_they_are_opens() -> None:
    gmail = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    yahoo = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
    outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
    for agent in (gmail, yahoo, outlook):
        assert CrawlerDetect().is_crawler(agent)
        case = AgentCase("x", "open", "203.0.113.7", agent, "", False, "", "", "", "")
        assert classify(hit_for(case), Context()).counts_as_human


def test_fast_crawler_matcher_agrees_with_crawlerdetect_on_the_table() -> None:
    for case in CASES:
        expected = CrawlerDetect().is_crawler(case.user_agent)
        assert (FAST_CRAWLER_TEST(case.user_agent) is not None) is expected, case.case


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_fast_crawler_matcher_agrees_with_crawlerdetect_on_any_text(agent: str) -> None:
    assert (FAST_CRAWLER_TEST(agent) is not None) is CrawlerDetect().is_crawler(agent)


def test_a_pathological_agent_is_cut_before_crawler_matching() -> None:
    seen: list[str] = []

    def record(agent: str) -> str | None:
        seen.append(agent)
        return None

    matcher = AgentMatcher(rules=(), crawler_test=record)
    matcher.match("x" * 100_000)
    assert seen and len(seen[0]) <= 1024


def test_matches_are_cached_per_agent_string() -> None:
    calls: list[str] = []

    def counting(agent: str) -> str | None:
        calls.append(agent)
        return None

    matcher = AgentMatcher(rules=(), crawler_test=counting)
    for _ in range(5):
        matcher.match("Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0")
    assert len(calls) == 1
