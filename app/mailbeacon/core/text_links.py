"""Tracked links in the plain-text alternative of an HTML email (rule 2).

A ``multipart/alternative`` email shows the recipient either its HTML or its
plain text. Where the HTML's tracked link targets appear in the plain-text
alternative, they get the very same ``/c/`` URL (same token, same link index),
so a click counts whichever alternative the recipient's client shows, and both
alternatives carry the same URLs: a filter that compares them (SpamAssassin and
Rspamd both look at the URLs of every part) sees one set of links.

Decisions:

* Only exact occurrences of a tracked HTML link's target are replaced, as a
  whole URL: not preceded by a character that would make it part of a longer
  URL (``...?u=https://...``), and ending at white space, ``>``, ``)``, ``]``,
  a quote or sentence punctuation. Gmail, Outlook, Thunderbird and Apple Mail
  write a link as ``text <URL>``, ``text<URL>``, ``text [URL]`` or the bare URL:
  all match.
* Nothing in a quoted part is replaced: lines starting with ``>`` and
  everything from a reply or forward separator on (Outlook's
  ``-----Original Message-----`` and underscore line, Gmail's
  ``---------- Forwarded message ---------``). Links there belong to someone
  else's email (rule 4).
* The plan is made once per message; :func:`render_text` splices the minted URLs
  in per copy. Everything else stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["TextLink", "plan_text", "render_text", "unquoted_spans"]

# A URL candidate: starts at "http(s)://" not glued to a longer URL, runs to white
# space or a delimiter a mail client puts around a URL.
_URL = re.compile(r"(?<![\w/?=&%#+.~@$*:-])(?i:https?)://[^\s<>\"'\[\]]+")
# Characters a sentence may put right after a URL; tried off its end, one at a time.
_TRAILING = ".,;:!?)"
_QUOTE_LINE = re.compile(r"[ \t]*>")
_SEPARATOR = re.compile(
    r"[ \t]*(?:-{2,}[ \t]*Original Message[ \t]*-{2,}|_{10,}"
    r"|-{5,}[ \t]*Forwarded message[ \t]*-{5,}"
    r"|-{5,}[ \t]*Wiadomo\u015b\u0107 oryginalna[ \t]*-{5,}|Begin forwarded message:)[ \t]*\r?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class TextLink:
    """One tracked link in plain text: ``text[start:end]`` is its target, URL ``index``."""

    start: int
    end: int
    index: int
    target: str


def unquoted_spans(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` that are the rep's own writing: not ``>``-quoted lines, and
    nothing after a reply or forward separator line."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line)
        if _SEPARATOR.match(line.rstrip("\n")):
            break
        if not _QUOTE_LINE.match(line):
            if spans and spans[-1][1] == pos:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((pos, end))
        pos = end
    return spans


def plan_text(text: str, targets: Mapping[str, int]) -> tuple[TextLink, ...]:
    """Where the tracked targets (target -> link index) stand as whole URLs in ``text``."""
    if not targets or "://" not in text:
        return ()
    found: list[TextLink] = []
    for start, end in unquoted_spans(text):
        for m in _URL.finditer(text, start, end):
            url = m.group()
            while url and url not in targets and url[-1] in _TRAILING:
                url = url[:-1]
            index = targets.get(url)
            if index is not None:
                found.append(TextLink(m.start(), m.start() + len(url), index, url))
    return tuple(found)


def render_text(
    text: str, links: tuple[TextLink, ...], click_url: Callable[[int, str], str]
) -> str:
    """``text`` with each planned link replaced by its minted URL."""
    out: list[str] = []
    pos = 0
    for link in links:
        out.append(text[pos : link.start])
        out.append(click_url(link.index, link.target))
        pos = link.end
    out.append(text[pos:])
    return "".join(out)
