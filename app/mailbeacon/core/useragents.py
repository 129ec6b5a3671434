"""Is this user agent a machine (scanner, proxy, crawler)? For verdicts (uainfo: the device).

Recognising user agents: the curated lists first, then CrawlerDetect.

The server calls this for every hit, so the work per agent is bounded (a hit
must never cost the server more than ~0.5 ms of CPU, whatever the agent says;
see ``tests/bench/bench_classify.py``):

* **A length cap.** Only the first :data:`MAX_SCAN_CHARS` (512) characters are
  matched. Real agents are 100-400 characters (the longest in
  ``tests/data/user_agents.csv`` is 200), and the few patterns that rescan the
  rest of the agent from each occurrence of their word (``Yandex\\w*/``) cost
  the square of the length; over 1,024 characters an agent is a bot by its
  length alone (docs/rules.md rule 5).
* **A pre-screen.** Almost every pattern needs some word (``Mimecast``,
  ``Googlebot``, ``bot|crawl|spider``...): the words, lowercased, are indexed
  by their first three letters, and a pattern is searched only when its word
  occurs in the lowercased agent. The ~1,500 patterns of CrawlerDetect in one
  alternation cost 15-40 ms on a random 1 KB agent (Python's regex engine tries
  every branch at every position); the pre-screen leaves a handful.
* **Lowercase patterns.** Where it is safe (no ``\\S``-style escapes, no inline
  flags) a pattern is compiled lowercased without ``re.IGNORECASE`` and searched
  in the lowercased agent: the engine then skips ahead by its literal prefix
  (10x faster than case-insensitive matching).
* **A bounded cache** of results keyed by the agent string (a few thousand
  distinct agents cover nearly all traffic).

Agents are matched as ASCII: other characters become ``?`` first (real agents
are ASCII; a pattern never needs more).

CrawlerDetect's patterns are taken from the package's own lists with one change:
a pattern starting with a starred character class (``[a-z0-9\\-_]*(bot|crawl|...)``)
makes Python's regex engine quadratic (6.7 s on a 10 KB agent); dropping that
leading class never changes *whether* it matches. As in CrawlerDetect, browser
tokens (its exclusion list) are removed before the crawler patterns are
searched, and the leftmost match is reported. If the package's internals move,
the matcher falls back to ``CrawlerDetect``'s public ``is_crawler``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from crawlerdetect import CrawlerDetect

from mailbeacon.core import reasons
from mailbeacon.core.botlists import AGENT_RULES, AgentKind, AgentRule, Category

try:
    from crawlerdetect.providers.crawlers import data as _CD_CRAWLERS
    from crawlerdetect.providers.exclusions import data as _CD_EXCLUSIONS
except ImportError:  # the package's internals moved: its public API still works
    _CD_CRAWLERS = _CD_EXCLUSIONS = None

_log = logging.getLogger(__name__)

MAX_SCAN_CHARS = 512
CACHE_SIZE = 8192
_LEADING_STAR_CLASS = re.compile(r"^\[[^\]]*\]\*")
# Lowercasing changes what these mean (\S, \W, \D...; inline flags): keep them as written.
_CASE_SENSITIVE_SYNTAX = re.compile(r"\\[A-Z]|\(\?[a-zA-Z-]")
_MIN_WORD = 3  # words are indexed by their first three letters
_SPECIAL = frozenset("[](){}?*+|^$.")


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
        self._rules = list(rules)
        self._patterns = PatternSet([rule.pattern for rule in self._rules])
        self._crawler_test = crawler_test if crawler_test is not None else crawlerdetect_test()
        self._cached = lru_cache(maxsize=cache_size)(self._match_uncached)

    def match(self, user_agent: str | None) -> AgentMatch:
        """What the curated lists and the crawler detector say about ``user_agent``."""
        if not user_agent:
            return UNKNOWN
        return self._cached(user_agent[:MAX_SCAN_CHARS])

    def _match_uncached(self, user_agent: str) -> AgentMatch:
        text = as_ascii(user_agent)
        found = self._patterns.first(text, text.lower())
        if found is not None:
            rule = self._rules[found]
            return AgentMatch(rule.kind, rule.family, rule.reason, rule.via, rule.category)
        matched = self._crawler_test(text)
        if matched is not None:
            return AgentMatch(
                AgentKind.BOT,
                matched,
                reasons.UA_CRAWLER.text(name=repr(matched)),
                None,
                Category.CRAWLER,
            )
        return UNKNOWN


def as_ascii(text: str) -> str:
    """``text`` with every non-ASCII character as ``?`` (same length)."""
    return text if text.isascii() else text.encode("ascii", "replace").decode("ascii")


class PatternSet:
    """Case-insensitive patterns over ASCII text, searched only when their words occur."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._compiled: list[tuple[re.Pattern[str], bool]] = []  # (regex, on the lowered text)
        self._always: list[int] = []  # patterns without a word to screen by
        self._index: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for number, pattern in enumerate(patterns):
            self._compiled.append(_compile(pattern))
            words = required_words(pattern)
            if words is None:
                self._always.append(number)
                continue
            for word in words:
                self._index.setdefault(tuple(word[:_MIN_WORD]), []).append((word, number))
        self._keys = frozenset(self._index)

    def candidates(self, low: str) -> list[int]:
        """The patterns that may match the lowercased text, in order."""
        found = set(self._always)
        for gram in _trigrams(low) & self._keys:
            for word, number in self._index[gram]:
                if number not in found and word in low:
                    found.add(number)
        return sorted(found)

    def search(self, number: int, text: str, low: str) -> re.Match[str] | None:
        """Pattern ``number`` searched in the text (same length as its lowercase ``low``)."""
        regex, lowered = self._compiled[number]
        return regex.search(low if lowered else text)

    def first(self, text: str, low: str) -> int | None:
        """The first pattern, in order, that matches."""
        for number in self.candidates(low):
            if self.search(number, text, low) is not None:
                return number
        return None

    def leftmost(
        self, text: str, low: str, numbers: Sequence[int] | None = None
    ) -> tuple[int, int] | None:
        """(start, end) of the leftmost match of any pattern (the first pattern on a tie),
        as one alternation of them all would find it; only ``numbers`` when given."""
        best: tuple[int, int, int] | None = None
        for number in self.candidates(low) if numbers is None else numbers:
            m = self.search(number, text, low)
            if m is not None and (best is None or m.start() < best[0]):
                best = (m.start(), number, m.end())
        return None if best is None else (best[0], best[2])

    def spans(self, text: str, low: str) -> list[tuple[int, int]]:
        """Non-overlapping matches, left to right, as ``re.sub`` with one alternation of
        the patterns would replace them."""
        ahead = {n: self._search_from(n, text, low, 0) for n in self.candidates(low)}
        out: list[tuple[int, int]] = []
        while True:
            best: tuple[int, int, int] | None = None
            for number, m in ahead.items():  # in pattern order: the first wins a tie
                if m is not None and (best is None or m.start() < best[0]):
                    best = (m.start(), number, m.end())
            if best is None:
                return out
            out.append((best[0], best[2]))
            pos = best[2] if best[2] > best[0] else best[2] + 1
            for number, m in ahead.items():
                # A match starting at or after pos is still that pattern's next one.
                if m is not None and m.start() < pos:
                    ahead[number] = self._search_from(number, text, low, pos)

    def _search_from(self, number: int, text: str, low: str, pos: int) -> re.Match[str] | None:
        regex, lowered = self._compiled[number]
        return regex.search(low if lowered else text, pos) if pos <= len(text) else None


@lru_cache(maxsize=8)
def _trigrams(low: str) -> frozenset[tuple[str, ...]]:
    """Every three characters in a row; shared by the pattern sets that screen one agent."""
    return frozenset(zip(low, low[1:], low[2:], strict=False))


def _compile(pattern: str) -> tuple[re.Pattern[str], bool]:
    if _CASE_SENSITIVE_SYNTAX.search(pattern) is None and pattern.isascii():
        return re.compile(pattern.lower()), True
    return re.compile(pattern, re.IGNORECASE), False


def required_words(pattern: str) -> frozenset[str] | None:
    """Lowercase words one of which every match of ``pattern`` contains, or None when
    some branch has no literal word of three or more characters."""
    words: set[str] = set()
    for branch in _branches(_unwrapped(pattern)):
        word = _longest_literal(branch)
        if len(word) < _MIN_WORD:
            return None
        words.add(word.lower())
    return frozenset(words)


def _unwrapped(pattern: str) -> str:
    """The inside of a pattern that is one plain group, ``(...)`` or ``(?:...)``."""
    if pattern.startswith("(?") and not pattern.startswith("(?:"):
        return pattern  # a lookaround or named group: left whole (no word found in it)
    opening = 3 if pattern.startswith("(?:") else 1
    if pattern.startswith("(") and pattern.endswith(")"):
        inner = pattern[opening:-1]
        if _balanced(inner) and not inner.endswith("\\"):
            return inner
    return pattern


def _balanced(text: str) -> bool:
    depth = 0
    for kind, _char in _tokens(text):
        if kind == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _branches(pattern: str) -> list[str]:
    """The top-level alternatives of a pattern."""
    out: list[str] = []
    depth = 0
    start = 0
    pos = 0
    for kind, char in _tokens(pattern):
        if kind == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
        elif kind == "|" and depth == 0:
            out.append(pattern[start:pos])
            start = pos + 1
        pos += len(char)
    out.append(pattern[start:])
    return out


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """(kind, source) pieces: "lit" (one literal character, unescaped in ``source``'s
    place), "(", ")", "|", "class", "quant" or "other" (escapes such as \\d, anchors,
    "."). Sources keep their length in the pattern for position counting."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            kind = "other" if nxt.isalnum() else "lit"
            out.append((kind, pattern[i : i + 2]))
            i += 2
        elif c == "[":
            end = _class_end(pattern, i)
            out.append(("class", pattern[i:end]))
            i = end
        elif c in "()|":
            out.append((c, c))
            i += 1
        elif c in "?*+{":
            end = pattern.find("}", i) + 1 if c == "{" and "}" in pattern[i:] else i + 1
            out.append(("quant", pattern[i:end]))
            i = end
        elif c in "^$.":
            out.append(("other", c))
            i += 1
        else:
            out.append(("lit", c))
            i += 1
    return out


def _class_end(pattern: str, start: int) -> int:
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return min(i + 1, len(pattern))


def _longest_literal(branch: str) -> str:
    """The longest run of characters every match of ``branch`` contains in a row."""
    best = ""
    run: list[str] = []
    depth = 0
    for kind, source in _tokens(branch):
        if kind == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
        if depth or kind in ("(", ")"):  # a group may be optional or repeated: a new run
            best = max(best, "".join(run), key=len)
            run = []
            continue
        if kind == "lit":
            run.append(source[-1])
            continue
        if kind == "quant" and run:
            # x?, x*, x{0,n} make x optional; x+ and x{n} keep one x, then anything may follow.
            keeps = source[0] == "+" or (source[0] == "{" and source[1:2] not in ("0", ","))
            if not keeps:
                run.pop()
            best = max(best, "".join(run), key=len)
            run = []
            continue
        best = max(best, "".join(run), key=len)
        run = []
    return max(best, "".join(run), key=len)


@lru_cache(maxsize=1)
def default_matcher() -> AgentMatcher:
    """The matcher with the shipped lists (built once; the server may inject its own)."""
    return AgentMatcher()


def crawlerdetect_test() -> Callable[[str], str | None]:
    """A function returning CrawlerDetect's matched fragment for a crawler agent, else None."""
    try:
        crawlers = PatternSet([_LEADING_STAR_CLASS.sub("", p) for p in _CD_CRAWLERS])
        exclusions = PatternSet(list(_CD_EXCLUSIONS))
    except (TypeError, re.error):
        _log.warning("CrawlerDetect internals changed; using its slower public API")
        return _public_crawlerdetect()

    def test(user_agent: str) -> str | None:
        # Same steps as CrawlerDetect.is_crawler: strip browser tokens, then search.
        text = as_ascii(user_agent).strip()
        low = text.lower()
        numbers = crawlers.candidates(low)
        if not numbers:
            return None  # the usual case: no crawler word at all
        pieces: list[str] = []
        pos = 0
        for start, end in exclusions.spans(text, low):
            pieces.append(text[pos:start])
            pos = end
        rest = "".join(pieces) + text[pos:]
        if not rest:
            return None
        # Only patterns whose word the agent holds: a word that appears only once browser
        # tokens are cut out ("Go" + "Safari/1" + "oglebot") is no crawler's.
        found = crawlers.leftmost(rest, rest.lower(), numbers)
        return None if found is None else rest[found[0] : found[1]]

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
