"""Links, pixels and stale tracking in HTML, edited in place (rules 1, 2 and 4).

The HTML is never re-serialised. A scanner that follows the HTML tokenizer's
rules (comments, bogus comments and CDATA, raw-text elements such as
``<style>`` and ``<script>``, quoted and unquoted attribute values) finds the
spans to change; :func:`render` splices replacements into the original string,
so every byte outside those spans stays as written. Runs of text and of tags
that cannot matter are skipped by one regular expression (possessive
quantifiers: linear, no backtracking), so Python only looks at ``<a>``,
``<img>``, ``</a>``, ``</body>``, comments and raw-text elements; an ordinary
link (start tag, plain content, ``</a>``) is taken in the same match.
"""

from __future__ import annotations

import html
import html.entities
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from mailbeacon.core import tokens
from mailbeacon.core.stale import click_claims, find_stale_clicks, is_stale_pixel, tracking_claims

# Longest visible text kept for a link record, and scanned for the URL test.
MAX_LINK_TEXT = 500
_MAX_TEXT_SCAN = 16_384

_WS = "\t\n\f\r "
_ATTR_NC = (
    r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >]*+))?+"
)
_TAG_BODY = r"(?:[\t\n\f\r /]++|" + _ATTR_NC + r")*+"
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")


def _ci(word: str) -> str:
    """A case-insensitive pattern for an ASCII word (cheaper than re.IGNORECASE)."""
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


def _skip_source(names: tuple[str, ...], tag_body: str) -> str:
    """Text, stray "<", and complete tags other than ``names`` and ``</a>``, ``</body>``."""
    ends = ("a", "body") if "a" in names else ("body",)
    interesting = (
        r"(?:" + "|".join(map(_ci, names)) + r")[\t\n\f\r />]|/(?:"
        + "|".join(map(_ci, ends)) + r")[\t\n\f\r />]"
    )
    return (
        r"(?:[^<]++|<(?![A-Za-z/!?])|<(?!" + interesting + r")/?[A-Za-z][^\t\n\f\r />]*+"
        + tag_body
        + r">)*+"
    )


_RAW_NAMES = ("plaintext", *_RAW_TEXT)
# Without "/o/" in the document no <img> can be a stale pixel, so images are skipped too.
# Without a quoted attribute value holding ">" every tag ends at its first ">": the
# simple skippers then agree with the exact ones, and are faster.
_QUOTED_GT = re.compile(r"=[\t\n\f\r ]*+(?:\"[^\">]*+>|'[^'>]*+>)")
_SKIP_SOURCES = {
    (anchors, images, exact): _skip_source(
        (("a",) if anchors else ()) + (("img",) if images else ()) + _RAW_NAMES,
        _TAG_BODY if exact else "[^>]*+",
    )
    for anchors in (True, False)
    for images in (True, False)
    for exact in (True, False)
}
# An <a> start tag with its first href attribute's value captured (dq, sq or uq).
_A_START_SOURCE = (
    r"<[aA](?=[\t\n\f\r />])(?:[\t\n\f\r /]++|(?!" + _ci("href") + r"(?![^\t\n\f\r />=]))"
    + _ATTR_NC
    + r")*+(?:" + _ci("href")
    + r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"(?P<dq>[^\"]*+)(?:\"|\Z)|'(?P<sq>[^']*+)(?:'|\Z)"
    r"|(?P<uq>[^\t\n\f\r >]*+)))?+)?+"
    + _TAG_BODY
    + r">"
)
_A_START = re.compile(_A_START_SOURCE)
# One step of the scan: a skipped run, then, in the usual case, a whole link (start tag,
# content of text and uninteresting tags, "</a>") in the same match.
_STEPS = {
    key: re.compile(
        source
        + (
            r"(?:(?P<a>" + _A_START_SOURCE + r")(?P<content>" + source + r")</[aA]>)?+"
            if key[0]
            else ""
        )
    )
    for key, source in _SKIP_SOURCES.items()
}
_TAG = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*+)(" + _TAG_BODY + r")>", re.ASCII)
_ANY_TAG = re.compile(r"</?[A-Za-z][^\t\n\f\r />]*+" + _TAG_BODY + r">", re.ASCII)
_ATTR = re.compile(
    r"(?P<n>[^\t\n\f\r />][^\t\n\f\r />=]*+)(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    r"(?:\"(?P<dq>[^\"]*+)(?:\"|\Z)|'(?P<sq>[^']*+)(?:'|\Z)|(?P<uq>[^\t\n\f\r >]*+)))?+"
)
_RAW_END = {
    name: re.compile(r"</" + name + r"[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
    for name in _RAW_TEXT
}
_COMMENT_END = re.compile(r"--!?>")
_CHARREF = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|([A-Za-z][A-Za-z0-9]*)(;?))")
_ENTITIES: dict[str, str] = html.entities.html5
_HTTP = re.compile(r"(?i:https?)://[^/?#\s\\]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_NEWLINE = {0x09: None, 0x0A: None, 0x0D: None}
_URLISH = re.compile(
    r"""
      [a-z][a-z0-9+.\-]*://\S*
    | (?:mailto|tel|sms|callto):\S+
    | www\d{0,3}\.\S+
    | (?:[^\W_](?:[\w-]*[^\W_])?\.)+(?P<tld>[^\W\d_]{2,63})\.?(?::\d{1,5})?(?:[/?\#]\S*)?
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Link text such as "Report.pdf" is a file name, not a domain.
_FILE_EXTENSIONS = frozenset(
    {
        "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "txt", "csv", "rtf",
        "zip", "rar", "gz", "tgz", "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "tif",
        "tiff", "mp3", "mp4", "mov", "avi", "wav", "html", "htm", "xml", "json", "js", "py", "md",
        "exe", "dmg", "msi", "eml", "ics", "vcf", "key", "pages", "numbers",
    }
)
_SPACE = re.compile(r"\s")
_URL_PUNCTUATION = "<>()[]{}\"'.,;:!"

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


def plan_html(html_text: str, *, track: bool, clicks: bool, first_link: int = 0) -> HtmlPlan:
    """Plan the changes to one HTML body: stale removal always; pixel and links if ``track``."""
    scanner = _Scanner(html_text, clicks=track and clicks, first_link=first_link)
    scanner.run(0, len(html_text), fresh=track)
    if track:
        scanner.edits.append(Edit(scanner.pixel_position(), scanner.pixel_position(), pixel=True))
    edits = scanner.edits
    edits.sort(key=lambda e: (e.start, e.end))
    if "/c/" in html_text:
        edits, extra = _add_textual_unwraps(html_text, edits)
        scanner.stale += extra
    return HtmlPlan(tuple(edits), tuple(scanner.links), scanner.stale, track)


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


def attr_encode(value: str) -> str:
    """``value`` escaped for a quoted HTML attribute, ASCII only (non-ASCII as &#...;)."""
    escaped = html.escape(value, quote=True)
    if escaped.isascii():
        return escaped
    return escaped.encode("ascii", "xmlcharrefreplace").decode("ascii")


def unescape_attr(value: str) -> str:
    """An attribute value with character references decoded as a browser does.

    Unlike :func:`html.unescape`, a named reference without ``;`` followed by
    ``=`` or a letter or digit is left alone (``?a=1&copy=2`` keeps ``&copy=2``).
    """
    if "&" not in value:
        return value
    if "&" not in value.replace("&amp;", ""):  # the usual case, fast
        return value.replace("&amp;", "&")

    def one(m: re.Match[str]) -> str:
        name, semicolon = m.group(1), m.group(2)
        if name is None or semicolon:
            return html.unescape(m.group(0))
        after = value[m.end() : m.end() + 1]
        decoded: str | None = _ENTITIES.get(name)
        if after == "=" or decoded is None:
            return m.group(0)
        return decoded

    return _CHARREF.sub(one, value)


def clean_url(value: str) -> str:
    """A URL as a browser reads it from an attribute: trimmed, tabs and newlines removed."""
    url = value.strip(_C0_AND_SPACE)
    if "\t" in url or "\n" in url or "\r" in url:
        url = url.translate(_TAB_NEWLINE)
    return url


def looks_like_url(text: str) -> bool:
    """Whether link text is itself a URL ("www.example.com", "https://x.y/z", "x.com")."""
    if "." not in text and ":" not in text:  # every URL has one
        return False
    candidate = text.strip().strip(_URL_PUNCTUATION)
    if not candidate or _SPACE.search(candidate):
        return False
    m = _URLISH.fullmatch(candidate)
    if m is None:
        return False
    tld = m.group("tld")
    return tld is None or tld.lower() not in _FILE_EXTENSIONS


def trackable_target(url: str) -> bool:
    """Whether a link target may be tracked: http(s), not already tracked, fits a token."""
    if not _HTTP.match(url):
        return False
    if ("/o/" in url or "/c/" in url) and tracking_claims(url) is not None:
        return False
    if url.isascii():
        return len(url) <= tokens.MAX_TARGET_BYTES
    try:
        return len(url.encode("utf-8")) <= tokens.MAX_TARGET_BYTES
    except UnicodeEncodeError:  # undecodable bytes in the part: leave the link alone
        return False


def visible_text(fragment: str) -> str:
    """Text of an HTML fragment (tags dropped, entities decoded), whitespace collapsed."""
    if "<" in fragment:
        fragment = _ANY_TAG.sub("", fragment)
    if "&" in fragment:
        fragment = html.unescape(fragment)
    return " ".join(fragment.split())


@dataclass(slots=True)
class _Anchor:
    tag_start: int
    tag_end: int
    href: tuple[int, int, str, bool] | None  # value start, end, raw value, quoted
    fresh: bool
    runs: list[tuple[int, int]] = field(default_factory=list)
    size: int = 0


class _Scanner:
    """One pass over an HTML string, collecting edits."""

    def __init__(self, text: str, *, clicks: bool, first_link: int) -> None:
        self.text = text
        # Links only matter when tracking clicks or unwrapping stale ones.
        anchors = clicks or "/c/" in text
        # With links to visit the exact skipper is as fast as checking for the simple one.
        exact = anchors or _QUOTED_GT.search(text) is not None
        key = (anchors, "/o/" in text, exact)
        self.step = _STEPS[key]
        self.whole_links = anchors
        self.clicks = clicks
        self.next_link = first_link
        self.edits: list[Edit] = []
        self.links: list[TrackedLink] = []
        self.stale = 0
        self.body_close: int | None = None
        self.stop_at: int | None = None
        self.in_comment = False

    def pixel_position(self) -> int:
        """Just before the last ``</body>``; else before anything unterminated; else the end."""
        if self.body_close is not None:
            return self.body_close
        if self.stop_at is not None:
            return self.stop_at
        return len(self.text.rstrip(_WS))

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
                if fresh:
                    self.stop_at = pos
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
        if nxt in ("!", "?") or (nxt == "/" and not _is_letter(text[pos + 2 : pos + 3])):
            return self._declaration(pos, end), anchor
        if nxt in ("a", "A") and text[pos + 2 : pos + 3] in _A_FOLLOW:
            return self._open_anchor(pos, end, fresh, anchor)
        m = _TAG.match(text, pos, end)
        if m is None:
            return -1, anchor
        name = m.group(2).lower()
        if m.group(1):  # </a> or </body>
            if anchor is not None:
                self._finish(anchor, pos, (pos, m.end()) if name == "a" else None)
            if name == "body" and fresh:
                self.body_close = pos
            return m.end(), None
        if name == "a":
            if anchor is not None:
                self._finish(anchor, pos, None)
            return m.end(), _Anchor(pos, m.end(), _attribute(m, "href"), fresh)
        return self._start_tag(m, name, end), anchor

    def _open_anchor(
        self, pos: int, end: int, fresh: bool, anchor: _Anchor | None
    ) -> tuple[int, _Anchor | None]:
        m = _A_START.match(self.text, pos, end)
        if m is None:
            return -1, anchor
        if anchor is not None:  # an <a> closes the one still open
            self._finish(anchor, pos, None)
        return m.end(), _Anchor(pos, m.end(), _href(m), fresh)

    def _whole_link(self, step: re.Match[str], fresh: bool) -> None:
        """A link the step matched whole: ``<a ...>`` content ``</a>``."""
        close = step.end() - 4
        link = _Anchor(step.start("a"), step.end("a"), _href(step), fresh)
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
        """``<img>`` (stale pixels) and raw-text elements (skipped to their end tag)."""
        if name == "img":
            src = _attribute(m, "src")
            if src is not None and is_stale_pixel(clean_url(unescape_attr(src[2]))):
                self.edits.append(Edit(m.start(), m.end()))
                self.stale += 1
            return m.end()
        if name == "plaintext":
            return -1
        raw_end = _RAW_END.get(name)
        if raw_end is None:  # any other tag (the skipper only stops at these)
            return m.end()
        close_tag = raw_end.search(self.text, m.end(), end)
        return -1 if close_tag is None else close_tag.start()

    def _comment(self, pos: int, end: int) -> int:
        """A comment; its content is scanned once for stale tracking (not for links)."""
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
            self.in_comment = True
            self.run(body, stop, fresh=False)
            self.in_comment = False
        return -1 if close is None else close.end()

    def _finish(self, a: _Anchor, content_end: int, close: tuple[int, int] | None) -> None:
        if a.href is None:
            return
        vstart, vend, raw, quoted = a.href
        url = clean_url(unescape_attr(raw))
        claims = click_claims(url) if "/c/" in url else None
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
                shown = text[:MAX_LINK_TEXT]
                if not shown.isascii():  # undecodable bytes of the part must not leak out
                    shown = shown.encode("utf-8", "replace").decode("utf-8")
                self.links.append(TrackedLink(index, url, shown))
                self.edits.append(Edit(vstart, vend, "", index, url, not quoted))
                return
        if claims is not None:
            value = attr_encode(url)
            self.edits.append(Edit(vstart, vend, static=value if quoted else f'"{value}"'))


def _is_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


_A_FOLLOW = frozenset("\t\n\f\r />")


def _href(m: re.Match[str]) -> tuple[int, int, str, bool] | None:
    for group, quoted in (("dq", True), ("sq", True), ("uq", False)):
        start = m.start(group)
        if start >= 0:
            return start, m.end(group), m.group(group), quoted
    return None


def _attribute(tag: re.Match[str], wanted: str) -> tuple[int, int, str, bool] | None:
    """The first attribute named ``wanted``: value span, raw value, whether quoted."""
    for m in _ATTR.finditer(tag.string, tag.start(3), tag.end(3)):
        if m.group("n").lower() != wanted:
            continue
        for group, quoted in (("dq", True), ("sq", True), ("uq", False)):
            if m.group(group) is not None:
                return m.start(group), m.end(group), m.group(group), quoted
        return None  # present without a value: the empty string, nothing to follow
    return None


def _add_textual_unwraps(text: str, edits: list[Edit]) -> tuple[list[Edit], int]:
    """Unwrap tracked-link URLs written anywhere else (VML buttons, text, styles)."""
    kept: list[Edit] = []
    j = 0
    for start, end, claims in find_stale_clicks(text):
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
