"""Is this user agent a machine (scanner, proxy, crawler)? For verdicts (uainfo: the device).

Recognising user agents: the curated lists first, then CrawlerDetect.

The server calls this for every hit, so results are kept in an LRU cache keyed
by the agent string (a few thousand distinct agents cover nearly all traffic).

CrawlerDetect's combined pattern is rebuilt here from the package's own pattern
lists with one change: a pattern starting with a starred character class
(``[a-z0-9\\-_]*(bot|crawl|...)``) makes Python's regex engine quadratic (6.7 s on
a 10 KB agent); dropping that leading class never changes *whether* it matches.
If the package's internals move, the matcher falls back to ``CrawlerDetect``'s
public ``is_crawler``. Agents are cut to :data:`MAX_SCAN_CHARS` before matching.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from crawlerdetect import CrawlerDetect

from mailbeacon.core.botlists import AGENT_RULES, AgentKind, AgentRule, Category

try:
    from crawlerdetect.providers.crawlers import data as _CD_CRAWLERS
    from crawlerdetect.providers.exclusions import data as _CD_EXCLUSIONS
except ImportError:  # the package's internals moved: its public API still works
    _CD_CRAWLERS = _CD_EXCLUSIONS = None

_log = logging.getLogger(__name__)

MAX_SCAN_CHARS = 1024
CACHE_SIZE = 8192
_LEADING_STAR_CLASS = re.compile(r"^\[[^\]]*\]\*")


@dataclass(frozen=True, slots=True)
class AgentMatch:
    """What is known about one user-agent string."""

    kind: AgentKind | None  # None: nothing known (no rule, not a crawler)
    family: str = ""
    reason: str = ""
    via: str | None = None
    category: Category | None = None


UNKNOWN = AgentMatch(None)


class AgentMatcher:
    """Matches agent strings against ordered rules, then a crawler detector."""

    def __init__(
        self,
        rules: Sequence[AgentRule] = AGENT_RULES,
        crawler_test: Callable[[str], str | None] | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._rules = [(rule, re.compile(rule.pattern, re.IGNORECASE)) for rule in rules]
        self._crawler_test = crawler_test if crawler_test is not None else crawlerdetect_test()
        self._cached = lru_cache(maxsize=cache_size)(self._match_uncached)

    def match(self, user_agent: str | None) -> AgentMatch:
        """What the curated lists and the crawler detector say about ``user_agent``."""
        if not user_agent:
            return UNKNOWN
        return self._cached(user_agent[:MAX_SCAN_CHARS])

    def _match_uncached(self, user_agent: str) -> AgentMatch:
        for rule, pattern in self._rules:
            if pattern.search(user_agent):
                return AgentMatch(rule.kind, rule.family, rule.reason, rule.via, rule.category)
        matched = self._crawler_test(user_agent)
        if matched is not None:
            return AgentMatch(
                AgentKind.BOT,
                matched,
                f"automated agent (CrawlerDetect list: {matched!r})",
                None,
                Category.CRAWLER,
            )
        return UNKNOWN


@lru_cache(maxsize=1)
def default_matcher() -> AgentMatcher:
    """The matcher with the shipped lists (built once; the server may inject its own)."""
    return AgentMatcher()


def crawlerdetect_test() -> Callable[[str], str | None]:
    """A function returning CrawlerDetect's matched fragment for a crawler agent, else None."""
    try:
        crawler_re = re.compile(
            "(" + "|".join(_LEADING_STAR_CLASS.sub("", p) for p in _CD_CRAWLERS) + ")",
            re.IGNORECASE,
        )
        exclusion_re = re.compile("(" + "|".join(_CD_EXCLUSIONS) + ")", re.IGNORECASE)
    except (TypeError, re.error):
        _log.warning("CrawlerDetect internals changed; using its slower public API")
        return _public_crawlerdetect()

    def test(user_agent: str) -> str | None:
        # Same steps as CrawlerDetect.is_crawler: strip browser tokens, then search.
        rest = exclusion_re.sub("", user_agent.strip())
        if not rest:
            return None
        found = crawler_re.search(rest)
        return found.group(0) if found else None

    return test


def _public_crawlerdetect() -> Callable[[str], str | None]:
    detector = CrawlerDetect()
    lock = threading.Lock()  # the detector keeps its last match in an attribute

    def test(user_agent: str) -> str | None:
        with lock:
            if detector.is_crawler(user_agent):
                return str(detector.get_matches() or "crawler")
        return None

    return test
