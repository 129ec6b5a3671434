"""The user-agent matcher's bounded cost (must-fix 8) and its equivalence with the
lists it screens: one hit never costs the server more than ~0.5 ms of CPU."""

from __future__ import annotations

import random
import re
import time

import pytest

from mailbeacon.core import useragents
from mailbeacon.core.classify import Context, Hit, classify
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.useragents import AgentMatcher, PatternSet, required_words
from tests.helpers.classify import hostile_agents, load_cases

SENT = 1_800_000_000
# Generous for 2 shared cores: the matcher needs ~0.1 ms a hostile agent, the former one
# 13-40 ms (CrawlerDetect's ~1,500 patterns as one case-insensitive alternation).
BUDGET_S = 2.0


def test_a_thousand_unique_hostile_agents_are_classified_within_a_bound() -> None:
    context = Context(agents=AgentMatcher())
    agents = hostile_agents(1000)
    assert len(set(agents)) == 1000 and {len(a) for a in agents} == {1024}
    deadline = time.perf_counter() + BUDGET_S
    done = 0
    for agent in agents:
        hit = Hit(EventType.OPEN, "GET", "203.0.113.7", agent, SENT + 3600.0, SENT, "m", "r")
        assert classify(hit, context).verdict in (Verdict.BOT, Verdict.HUMAN)
        done += 1
        if time.perf_counter() > deadline:
            break
    assert done == 1000, f"only {done} of 1,000 hostile agents classified in {BUDGET_S} s"


def _reference(agent: str) -> tuple[str, str] | None:
    """What the lists say, the slow way: each curated rule in order, then CrawlerDetect's
    exclusions and crawler patterns as one case-insensitive alternation each."""
    agent = agent[: useragents.MAX_SCAN_CHARS]
    for rule in useragents.AGENT_RULES:
        if re.search(rule.pattern, agent, re.IGNORECASE):
            return "rule", rule.family
    crawlers = [useragents._LEADING_STAR_CLASS.sub("", p) for p in useragents._CD_CRAWLERS]
    rest = re.sub("|".join(useragents._CD_EXCLUSIONS), "", agent.strip(), flags=re.I)
    found = re.search("|".join(crawlers), rest, re.IGNORECASE) if rest else None
    return ("crawler", found.group(0)) if found else None


def _fast(matcher: AgentMatcher, agent: str) -> tuple[str, str] | None:
    found = matcher.match(agent)
    if found.kind is None:
        return None
    if found.reason.startswith("automated agent (CrawlerDetect list"):
        return "crawler", found.family
    return "rule", found.family


def _word_soup(rng: random.Random) -> str:
    words = [w for p in useragents._CD_CRAWLERS[::7] for w in re.findall(r"[A-Za-z]{3,}", p)]
    words += ["Mozilla/5.0", "Safari/537.36", "Chrome/120", "Gecko", "like", "(KHTML,", "Yandex"]
    seps = ["", " ", "/1.0 ", "-", ".", "; "]
    return "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(1, 12)))


def test_the_screened_lists_say_what_the_full_lists_say() -> None:
    rng = random.Random(3)
    agents = [c.user_agent for c in load_cases()] + [_word_soup(rng) for _ in range(300)]
    agents += [a.upper() for a in agents[:50]] + ["  Mozilla/5.0  ", "\u24c2ozilla bot \u017fpider"]
    matcher = AgentMatcher(cache_size=0)
    assert [_fast(matcher, a) for a in agents] == [_reference(a) for a in agents]


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("Mimecast", {"mimecast"}),
        (r"Safe ?Links|Microsoft[ -]?Defender", {"links", "microsoft"}),
        (r"^\s*Mozilla/5\.0\s*$", {"mozilla/5.0"}),
        ("Forti(Guard|Mail)", {"forti"}),
        ("(bot|crawl|spider)", {"bot", "crawl", "spider"}),
        (r"(?<!cu|m[ _])bot(?![ _]TAO)", {"bot"}),
        ("ab+cde", {"cde"}),
        ("abcd?e", {"abc"}),
        ("x{2}yz", None),  # no word of three letters: always searched
        ("(?:ab|cd)", None),
        ("Pinterest(bot)?/|red", {"pinterest", "red"}),
        ("Pinterest|(bot)?/", None),
    ],
)
def test_required_words(pattern: str, words: set[str] | None) -> None:
    assert required_words(pattern) == (None if words is None else frozenset(words))


def test_a_pattern_set_finds_the_leftmost_match_and_the_first_pattern_on_a_tie() -> None:
    patterns = PatternSet(["world", "hello", "hel+o", r"\S+"])
    text = "Say HELLO world"
    assert patterns.leftmost(text, text.lower()) == (0, 3)
    words = PatternSet(["world", "hello", "hel+o"])
    assert words.leftmost(text, text.lower()) == (4, 9)
    assert words.first(text, text.lower()) == 0
    assert words.spans(text, text.lower()) == [(4, 9), (10, 15)]
