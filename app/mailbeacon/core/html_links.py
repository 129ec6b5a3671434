"""Links, pixels and stale tracking in HTML, edited in place (rules 1, 2 and 4).

The HTML is never re-serialised. A scanner that follows the HTML tokenizer's
rules (comments, bogus comments and CDATA, raw-text elements such as
``<style>`` and ``<script>``, quoted and unquoted attribute values) finds the
spans to change; :func:`render` splices replacements into the original string,
so every byte outside those spans stays as written. Runs of text and of tags
that cannot matter are skipped by one regular expression (possessive
quantifiers: linear, no backtracking), so Python only looks at ``<a>``,
``<img>``, ``<body>``, ``</a>``, ``</body>``, comments and raw-text elements
(and ``<div>``/``<blockquote>`` when the document may quote another email); an
ordinary link (start tag, plain content, ``</a>``) is taken in the same match.

Decisions:

* The pixel goes right after the ``<body>`` start tag, before any quoted part
  and within the first bytes Gmail keeps when it clips a long message (~102 KB);
  without ``<body>``, after the doctype and head (rule 1).
* Links inside quoted or forwarded parts (:mod:`mailbeacon.core.html_quotes`) are
  never wrapped; stale tracking is removed or unwrapped only when ``ours`` (the
  rep's key) verifies it (rule 4).
* Outlook's bulletproof buttons: the ``href`` of a VML element (``<v:roundrect>``
  and kin) inside a conditional comment is tracked with the same link index as
  the ordinary link to the same target, its non-Outlook twin (rule 2).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

from mailbeacon.core import tokens
from mailbeacon.core.html_quotes import TAGS as QUOTE_TAGS
from mailbeacon.core.html_quotes import QuoteTracker, may_quote
from mailbeacon.core.html_text import (
    A_FOLLOW,
    ATTR_NC,
    TAG_BODY,
    attr_encode,
    attribute,
    ci,
    clean_url,
    href_value,
    is_letter,
    looks_like_url,
    trackable_target,
    unescape_attr,
    visible_text,
)
from mailbeacon.core.stale import (
    ANY_SIGNER,
    Verifier,
    click_claims,
    find_stale_clicks,
    is_stale_pixel,
)

__all__ = [
    "HONEYPOT_STYLE",
    "MAX_LINK_TEXT",
    "PIXEL_STYLE",
    "Edit",
    "HtmlPlan",
    "TrackedLink",
    "attr_encode",
    "clean_url",
    "looks_like_url",
    "pixel_block",
    "plan_html",
    "render",
    "trackable_target",
    "unescape_attr",
    "visible_text",
]

# Longest visible text kept for a link record, and scanned for the URL test.
MAX_LINK_TEXT = 500
_MAX_TEXT_SCAN = 16_384

_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_RAW_NAMES = ("plaintext", *_RAW_TEXT)


def _skip_source(names: tuple[str, ...], ends: tuple[str, ...], tag_body: str) -> str:
    """Text, stray "<", and complete tags other than ``names`` and the end tags ``ends``."""
    interesting = (
        r"(?:" + "|".join(map(ci, names)) + r")[\t\n\f\r />]|/(?:"
        + "|".join(map(ci, ends)) + r")[\t\n\f\r />]"
    )
    return (
        r"(?:[^<]++|<(?![A-Za-z/!?])|<(?!" + interesting + r")/?[A-Za-z][^\t\n\f\r />]*+"
        + tag_body
        + r">)*+"
    )


# Without "/o/" in the document no <img> can be a stale pixel, so images are skipped too.
# Without a quoted attribute value holding ">" every tag ends at its first ">": the
# simple skippers then agree with the exact ones, and are faster.
_QUOTED_GT = re.compile(r"=[\t\n\f\r ]*+(?:\"[^\">]*+>|'[^'>]*+>)")
# An <a> start tag with its first href attribute's value captured (dq, sq or uq).
_A_START_SOURCE = (
    r"<[aA](?=[\t\n\f\r />])(?:[\t\n\f\r /]++|(?!" + ci("href") + r"(?![^\t\n\f\r />=]))"
    + ATTR_NC
    + r")*+(?:" + ci("href")
    + r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"(?P<dq>[^\"]*+)(?:\"|\Z)|'(?P<sq>[^']*+)(?:'|\Z)"
    r"|(?P<uq>[^\t\n\f\r >]*+)))?+)?+"
    + TAG_BODY
    + r">"
)
_A_START = re.compile(_A_START_SOURCE)


@cache
def _step(anchors: bool, images: bool, exact: bool, quotes: bool) -> re.Pattern[str]:
    """One step of the scan: a skipped run, then, in the usual case, a whole link (start
    tag, content of text and uninteresting tags, "</a>") in the same match."""
    quote_tags = QUOTE_TAGS if quotes else ()
    names = (("a",) if anchors else ()) + (("img",) if images else ()) + ("body",)
    ends = (("a",) if anchors else ()) + ("body",) + quote_tags
    source = _skip_source(names + quote_tags + _RAW_NAMES, ends, TAG_BODY if exact else "[^>]*+")
    if anchors:
        source += r"(?:(?P<a>" + _A_START_SOURCE + r")(?P<content>" + source + r")</[aA]>)?+"
    return re.compile(source)


_TAG = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*+)(" + TAG_BODY + r")>", re.ASCII)
# A VML start tag (Outlook's buttons), attributes in group 3 as in _TAG.
_VML_TAG = re.compile(r"<()([vV]:[A-Za-z][^\t\n\f\r />]*+)(" + TAG_BODY + r")>", re.ASCII)
_RAW_END = {
    name: re.compile(r"</" + name + r"[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
    for name in _RAW_TEXT
}
_COMMENT_END = re.compile(r"--!?>")
# What comes before the body when there is no <body> tag: doctype, comments, <html>,
# the head and its elements. The pixel goes after it (before it, the doctype would no
# longer be first and the page would render in quirks mode).
_PRELUDE = re.compile(
    r"(?:[\t\n\f\r ]++|<!--(?:(?!-->).)*+-->|<![^>]*+>|<\?[^>]*+>"
    r"|</?(?:html|head|meta|link|base)(?=[\t\n\f\r />])" + TAG_BODY + r">"
    r"|<(?P<raw>title|style|script)(?=[\t\n\f\r />])" + TAG_BODY + r">.*?</(?P=raw)\s*>)*+",
    re.IGNORECASE | re.ASCII | re.DOTALL,
)

# The invisible 1x1 image: no alt text, so nothing of it reaches a preview line.
PIXEL_STYLE = "display:block;width:1px;height:1px;border:0;margin:0;padding:0"
HONEYPOT_STYLE = (
    "display:none !important;font-size:0;line-height:0;max-height:0;max-width:0;"
    "overflow:hidden;opacity:0;mso-hide:all"
)


@dataclass(frozen=True, slots=True)
class TrackedLink:
    """A link rewritten for click tracking."""

    index: int
    target: str
    text: str  # visible text, whitespace-collapsed


class Edit(NamedTuple):
    """One change to the HTML: ``text[start:end]`` is replaced when rendering.

    Exactly one of: ``static`` text; a tracked link (``link`` index, ``target``,
    minted per copy, wrapped in quotes when ``quote``); the ``pixel`` block.
    """

    start: int
    end: int
    static: str = ""
    link: int | None = None
    target: str = ""
    quote: bool = False
    pixel: bool = False


@dataclass(frozen=True, slots=True)
class HtmlPlan:
    """Where one HTML document changes; rendered once per copy by :func:`render`."""

    edits: tuple[Edit, ...]
    links: tuple[TrackedLink, ...]
    stale: int  # stale pixels removed + stale links unwrapped
    tracked: bool  # a pixel goes in

    @property
    def changed(self) -> bool:
        """Whether rendering changes anything."""
        return bool(self.edits)


def plan_html(
    html_text: str,
    *,
    track: bool,
    clicks: bool,
    first_link: int = 0,
    ours: Verifier = ANY_SIGNER,
    opens: bool = True,
) -> HtmlPlan:
    """Plan the changes to one HTML body: stale removal always; pixel (unless ``opens`` is
    off: clicks only) and links if ``track``.

    ``ours`` says which stale tracking is the rep's own (removed or unwrapped); the
    rewrite engine passes the rep's key. The default accepts any token that parses
    (for callers without a key that sign nothing)."""
    scanner = _Scanner(html_text, clicks=track and clicks, first_link=first_link, ours=ours)
    scanner.run(0, len(html_text), fresh=track)
    scanner.index_vml()
    if track and opens:
        at = scanner.pixel_position()
        scanner.edits.append(Edit(at, at, pixel=True))
    edits = scanner.edits
    edits.sort(key=lambda e: (e.start, e.end))
    if "/c/" in html_text:
        edits, extra = _add_textual_unwraps(html_text, edits, ours)
        scanner.stale += extra
    return HtmlPlan(tuple(edits), tuple(scanner.links), scanner.stale, track and opens)


def render(
    html_text: str,
    plan: HtmlPlan,
    pixel_url: str | None,
    honeypot_url: str | None,
    click_url: Callable[[int, str], str],
) -> str:
    """The HTML with the plan applied: minted URLs spliced in, everything else as written."""
    out: list[str] = []
    pos = 0
    for e in plan.edits:
        out.append(html_text[pos : e.start])
        if e.pixel:
            if pixel_url is not None:
                out.append(pixel_block(pixel_url, honeypot_url))
        elif e.link is not None:
            value = attr_encode(click_url(e.link, e.target))
            out.append(f'"{value}"' if e.quote else value)
        else:
            out.append(e.static)
        pos = e.end
    out.append(html_text[pos:])
    return "".join(out)


def pixel_block(pixel_url: str, honeypot_url: str | None) -> str:
    """The invisible honeypot link (if any) followed by the 1x1 pixel."""
    img = (
        f'<img src="{attr_encode(pixel_url)}" width="1" height="1" alt="" '
        f'style="{PIXEL_STYLE}">'
    )
    if honeypot_url is None:
        return img
    return (
        f'<a href="{attr_encode(honeypot_url)}" style="{HONEYPOT_STYLE}" '
        f'aria-hidden="true" tabindex="-1"></a>{img}'
    )


@dataclass(slots=True)
class _Anchor:
    tag_start: int
    tag_end: int
    href: tuple[int, int, str, bool] | None  # value start, end, raw value, quoted
    fresh: bool  # may be wrapped: not in a comment, not in a quoted part
    runs: list[tuple[int, int]] = field(default_factory=list)
    size: int = 0


@dataclass(frozen=True, slots=True)
class _VmlLink:
    """A VML ``href`` to track once the ordinary links (its twins) are known."""

    start: int
    end: int
    target: str
    quoted: bool
    text: str
    stale: bool  # it was one of the rep's tracked links, unwrapped


class _Scanner:
    """One pass over an HTML string, collecting edits."""

    def __init__(self, text: str, *, clicks: bool, first_link: int, ours: Verifier) -> None:
        self.text = text
        # Links only matter when tracking clicks or unwrapping stale ones.
        anchors = clicks or "/c/" in text
        # With links to visit the exact skipper is as fast as checking for the simple one.
        exact = anchors or _QUOTED_GT.search(text) is not None
        # Quoted parts only matter when links are wrapped.
        self.quotes = QuoteTracker() if clicks and may_quote(text.lower()) else None
        self.step = _step(anchors, "/o/" in text, exact, self.quotes is not None)
        self.whole_links = anchors
        self.clicks = clicks
        self.ours = ours
        self.next_link = first_link
        self.edits: list[Edit] = []
        self.links: list[TrackedLink] = []
        self.vml: list[_VmlLink] = []
        self.stale = 0
        self.body_open: int | None = None
        self.in_comment = False

    def pixel_position(self) -> int:
        """Right after the first ``<body>`` start tag; without one, after the doctype and
        head; never after the start of a quoted part."""
        at = self.body_open
        if at is None:
            prelude = _PRELUDE.match(self.text)
            at = prelude.end() if prelude is not None else 0
        first_quote = self.quotes.first_start if self.quotes is not None else None
        return at if first_quote is None else min(at, first_quote)

    def _may_wrap(self, fresh: bool) -> bool:
        return fresh and (self.quotes is None or not self.quotes.inside())

    def run(self, start: int, end: int, *, fresh: bool) -> None:
        """Scan ``text[start:end]``; ``fresh`` is False inside comments (stale removal only)."""
        text = self.text
        anchor: _Anchor | None = None
        pos = start
        while True:
            step = self.step.match(text, pos, end)
            nxt = step.end() if step is not None else pos
            if step is not None and self.whole_links and step.start("a") >= 0:
                link_at = step.start("a")
                if anchor is not None:  # the new <a> closes the one still open
                    anchor.runs.append((pos, link_at))
                    self._finish(anchor, link_at, None)
                    anchor = None
                self._whole_link(step, fresh)
                pos = nxt
                continue
            if anchor is not None and nxt > pos and anchor.size < _MAX_TEXT_SCAN:
                anchor.runs.append((pos, nxt))
                anchor.size += nxt - pos
            pos = nxt
            if pos >= end:
                break
            if anchor is not None and text.startswith("</a>", pos):  # the common case, fast
                self._finish(anchor, pos, (pos, pos + 4))
                anchor = None
                pos += 4
                continue
            after, anchor = self._markup(pos, end, fresh, anchor)
            if after < 0:  # runs to the end: nothing after it is markup
                break
            pos = after
        if anchor is not None:
            self._finish(anchor, pos, None)

    def _markup(
        self, pos: int, end: int, fresh: bool, anchor: _Anchor | None
    ) -> tuple[int, _Anchor | None]:
        """Handle the markup at ``text[pos] == "<"``: the position after it (-1 if it
        runs to the end) and the pending ``<a>`` element."""
        text = self.text
        nxt = text[pos + 1 : pos + 2]
        if nxt in ("!", "?") or (nxt == "/" and not is_letter(text[pos + 2 : pos + 3])):
            return self._declaration(pos, end), anchor
        if nxt in ("a", "A") and text[pos + 2 : pos + 3] in A_FOLLOW:
            return self._open_anchor(pos, end, fresh, anchor)
        m = _TAG.match(text, pos, end)
        if m is None:
            return -1, anchor
        name = m.group(2).lower()
        if m.group(1):  # </a>, </body>, </div>, </blockquote>
            return m.end(), self._end_tag(name, pos, m.end(), anchor)
        if name == "a":
            if anchor is not None:
                self._finish(anchor, pos, None)
            href = attribute(m, "href")
            return m.end(), _Anchor(pos, m.end(), href, self._may_wrap(fresh))
        return self._start_tag(m, name, end), anchor

    def _end_tag(self, name: str, pos: int, after: int, anchor: _Anchor | None) -> _Anchor | None:
        """An end tag the skipper stopped at; the ``<a>`` still open after it."""
        if name in QUOTE_TAGS:  # a link may hold a <div>: it stays open
            if self.quotes is not None and not self.in_comment:
                self.quotes.end_tag(name)
            return anchor
        if anchor is not None:
            self._finish(anchor, pos, (pos, after) if name == "a" else None)
        return None

    def _open_anchor(
        self, pos: int, end: int, fresh: bool, anchor: _Anchor | None
    ) -> tuple[int, _Anchor | None]:
        m = _A_START.match(self.text, pos, end)
        if m is None:
            return -1, anchor
        if anchor is not None:  # an <a> closes the one still open
            self._finish(anchor, pos, None)
        return m.end(), _Anchor(pos, m.end(), href_value(m), self._may_wrap(fresh))

    def _whole_link(self, step: re.Match[str], fresh: bool) -> None:
        """A link the step matched whole: ``<a ...>`` content ``</a>``."""
        close = step.end() - 4
        link = _Anchor(step.start("a"), step.end("a"), href_value(step), self._may_wrap(fresh))
        link.runs.append((step.start("content"), close))
        self._finish(link, close, (close, step.end()))

    def _declaration(self, pos: int, end: int) -> int:
        """Comments, CDATA, doctype, processing instructions and bogus comments."""
        text = self.text
        if text.startswith("<!--", pos):
            return self._comment(pos, end)
        cdata = text.startswith("<![CDATA[", pos)
        close_with, after = ("]]>", pos + 9) if cdata else (">", pos + 2)
        close = text.find(close_with, after, end)
        return -1 if close < 0 else close + len(close_with)

    def _start_tag(self, m: re.Match[str], name: str, end: int) -> int:
        """``<img>`` (stale pixels), ``<body>``, quote markers and raw-text elements
        (skipped to their end tag)."""
        if name == "img":
            src = attribute(m, "src")
            if src is not None and is_stale_pixel(clean_url(unescape_attr(src[2])), self.ours):
                self.edits.append(Edit(m.start(), m.end()))
                self.stale += 1
            return m.end()
        if name == "body":
            if self.body_open is None and not self.in_comment:
                self.body_open = m.end()
            return m.end()
        if name in QUOTE_TAGS:
            if self.quotes is not None and not self.in_comment:
                self.quotes.start_tag(name, m.start(), lambda wanted: _value(m, wanted))
            return m.end()
        if name == "plaintext":
            return -1
        raw_end = _RAW_END.get(name)
        if raw_end is None:  # any other tag (the skipper only stops at these)
            return m.end()
        close_tag = raw_end.search(self.text, m.end(), end)
        return -1 if close_tag is None else close_tag.start()

    def _comment(self, pos: int, end: int) -> int:
        """A comment; its content is scanned once for stale tracking (not for links),
        and a conditional comment's VML buttons for links."""
        text = self.text
        body = pos + 4
        if text.startswith(">", body, end):
            return body + 1
        if text.startswith("->", body, end):
            return body + 2
        close = _COMMENT_END.search(text, body, end)
        stop = end if close is None else close.start()
        if not self.in_comment:
            # Outlook renders conditional comments: no stale pixel may hide there either.
            if self.clicks and text.startswith("[if", body, stop):
                self._vml_links(body, stop)
            self.in_comment = True
            self.run(body, stop, fresh=False)
            self.in_comment = False
        return -1 if close is None else close.end()

    def _vml_links(self, start: int, stop: int) -> None:
        """The ``href`` of each VML element in a conditional comment (Outlook's buttons)."""
        if self.quotes is not None and self.quotes.inside():
            return
        text = self.text
        for m in _VML_TAG.finditer(text, start, stop):
            href = attribute(m, "href")
            if href is None:
                continue
            vstart, vend, raw, quoted = href
            url = clean_url(unescape_attr(raw))
            claims = click_claims(url, self.ours) if "/c/" in url else None
            if claims is not None:
                if claims.link_index == tokens.HONEYPOT_LINK or claims.target is None:
                    continue  # left to the textual unwrap
                url = claims.target
            if not trackable_target(url):
                continue
            closing = re.compile(r"</" + re.escape(m.group(2)) + r"[\t\n\f\r />]", re.I)
            close = closing.search(text, m.end(), min(stop, m.end() + _MAX_TEXT_SCAN))
            shown = visible_text(text[m.end() : close.start() if close else m.end()])
            if looks_like_url(shown):
                continue
            self.vml.append(_VmlLink(vstart, vend, url, quoted, shown, claims is not None))

    def index_vml(self) -> None:
        """Give each VML link the index of the ordinary link to the same target, or a
        new one when it has no twin."""
        by_target: dict[str, int] = {}
        for link in self.links:
            by_target.setdefault(link.target, link.index)
        for v in self.vml:
            index = by_target.get(v.target)
            if index is None:
                if self.next_link >= tokens.HONEYPOT_LINK:
                    continue  # no index left: a stale one is still unwrapped as text
                index = self.next_link
                self.next_link += 1
                self.links.append(TrackedLink(index, v.target, _shown(v.text)))
                by_target[v.target] = index
            self.stale += v.stale
            self.edits.append(Edit(v.start, v.end, "", index, v.target, not v.quoted))

    def _finish(self, a: _Anchor, content_end: int, close: tuple[int, int] | None) -> None:
        if a.href is None:
            return
        vstart, vend, raw, quoted = a.href
        url = clean_url(unescape_attr(raw))
        claims = click_claims(url, self.ours) if "/c/" in url else None
        if claims is not None:
            self.stale += 1
            if claims.link_index == tokens.HONEYPOT_LINK:
                self.edits.append(Edit(a.tag_start, a.tag_end))
                if close is not None:
                    self.edits.append(Edit(close[0], close[1]))
                return
            url = claims.target or url
        room = self.next_link < tokens.HONEYPOT_LINK  # link indexes are 16-bit in tokens
        if a.fresh and self.clicks and room and trackable_target(url):
            text = visible_text("".join(self.text[s:e] for s, e in a.runs))
            if not looks_like_url(text):
                index = self.next_link
                self.next_link += 1
                self.links.append(TrackedLink(index, url, _shown(text)))
                self.edits.append(Edit(vstart, vend, "", index, url, not quoted))
                return
        if claims is not None:
            value = attr_encode(url)
            self.edits.append(Edit(vstart, vend, static=value if quoted else f'"{value}"'))


def _shown(text: str) -> str:
    """Link text as recorded: capped, and never undecodable bytes of the part."""
    shown = text[:MAX_LINK_TEXT]
    if not shown.isascii():
        shown = shown.encode("utf-8", "replace").decode("utf-8")
    return shown


def _value(tag: re.Match[str], wanted: str) -> str | None:
    """An attribute's decoded value, None when absent."""
    found = attribute(tag, wanted)
    return None if found is None else html.unescape(found[2])


def _add_textual_unwraps(text: str, edits: list[Edit], ours: Verifier) -> tuple[list[Edit], int]:
    """Unwrap tracked-link URLs written anywhere else (VML buttons, text, styles)."""
    kept: list[Edit] = []
    j = 0
    for start, end, claims in find_stale_clicks(text, ours=ours):
        while j < len(edits) and edits[j].end <= start:
            j += 1
        if j < len(edits) and edits[j].start < end:
            continue  # already handled as a link, or removed with its tag
        value = attr_encode(claims.target or "").replace(" ", "%20")
        kept.append(Edit(start, end, static=value))
    if not kept:
        return edits, 0
    merged = edits + kept
    merged.sort(key=lambda e: (e.start, e.end))
    return merged, len(kept)

