"""Quoted and forwarded parts of an HTML reply: where the rep's signature never goes.

A reply or forward carries someone else's HTML. Its links are never wrapped
for click tracking, so no outsider gets a redirect on the tracking domain
signed with the rep's key (docs/rules.md rule 4). The scanner in
:mod:`mailbeacon.core.html_links` walks the tags as the HTML tokenizer does
(comments, raw text and attribute values are not markup) and reports each
``<div>`` and ``<blockquote>`` start and end tag to :class:`QuoteTracker`,
which knows where quoted parts start and end.

Markers, by client:

* an element that *is* the quote (it ends with its end tag, counted with
  nesting, as a browser closes it):
  ``<blockquote type="cite">`` (Apple Mail, Thunderbird and most clients),
  and ``class`` tokens ``gmail_quote`` / ``gmail_quote_container`` (Gmail),
  ``yahoo_quoted`` (Yahoo Mail), ``moz-forward-container`` (Thunderbird's
  inline forward), ``protonmail_quote`` (Proton Mail);
* a header after which *everything* is the earlier message (Outlook puts the
  quoted mail after its header block, not inside it): ``<div id="divRplyFwdMsg">``
  and ``<div id="appendonsend">`` (Outlook on the web, new Outlook), and the
  Word header ``<div style="border:none;border-top:solid #E1E1E1 1.0pt;...">``
  (``#B5C4DF`` in older Outlook for Windows).

A message/rfc822 attachment is never a body at all (:func:`mailbeacon.core.mime.layout`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

QUOTE_CLASSES = frozenset(
    {"gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-forward-container",
     "protonmail_quote"}
)
REST_IDS = frozenset({"divrplyfwdmsg", "appendonsend"})
_OUTLOOK_HEADER = re.compile(
    r"border:\s*none\s*;\s*border-top:\s*solid\s+#(?:e1e1e1|b5c4df)\s+1(?:\.0)?pt",
    re.IGNORECASE | re.ASCII,
)
# Lowercase hints: without one of these no tag can be a marker, and the scanner
# need not stop at every <div>.
_HINTS = ("gmail_quote", "yahoo_quoted", "moz-forward-container", "protonmail_quote",
          "divrplyfwdmsg", "appendonsend", "cite", "border-top")
TAGS = ("div", "blockquote")

# An attribute's value by (lowercase) name, None when the tag has none.
Attribute = Callable[[str], str | None]


def may_quote(lowered_html: str) -> bool:
    """Whether the (lowercased) document can hold a quote marker at all."""
    return any(hint in lowered_html for hint in _HINTS)


def _marker(name: str, attribute: Attribute) -> str | None:
    """"element" when this tag starts a quote, "rest" when everything from it on is
    quoted, else None."""
    if name == "blockquote" and (attribute("type") or "").strip().lower() == "cite":
        return "element"
    classes = (attribute("class") or "").lower().split()
    if QUOTE_CLASSES.intersection(classes):
        return "element"
    if name != "div":
        return None
    if (attribute("id") or "").strip().lower() in REST_IDS:
        return "rest"
    style = attribute("style")
    if style and _OUTLOOK_HEADER.search(style):
        return "rest"
    return None


class QuoteTracker:
    """Follows ``<div>``/``<blockquote>`` nesting and says whether a position is quoted.

    Positions are reported in document order; :meth:`inside` answers for the
    position last reported.
    """

    def __init__(self) -> None:
        self._open: list[str] = []  # names of the open div/blockquote elements
        self._quote_depth: int | None = None  # stack depth of the quoting element
        self._rest = False  # an Outlook header was seen: the rest is quoted
        self.first_start: int | None = None  # where the first quoted part starts

    def inside(self) -> bool:
        """Whether the current position is inside a quoted or forwarded part."""
        return self._rest or self._quote_depth is not None

    def start_tag(self, name: str, pos: int, attribute: Attribute) -> None:
        """A ``<div>`` or ``<blockquote>`` start tag at ``pos``."""
        self._open.append(name)
        if self.inside():
            return
        kind = _marker(name, attribute)
        if kind is None:
            return
        if self.first_start is None:
            self.first_start = pos
        if kind == "rest":
            self._rest = True
        else:
            self._quote_depth = len(self._open) - 1

    def end_tag(self, name: str) -> None:
        """A ``</div>`` or ``</blockquote>`` end tag: closes the nearest open element of
        that name, and any opened inside it (a stray end tag closes nothing)."""
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth] == name:
                del self._open[depth:]
                if self._quote_depth is not None and depth <= self._quote_depth:
                    self._quote_depth = None
                return
