"""HTML syntax shared by the link scanner: tags, attributes, URLs and link text (rule 2).

The tag and attribute patterns follow the HTML tokenizer (quoted and unquoted
values, ``/`` between attributes) with possessive quantifiers, so they run in
linear time on any input. Attribute values are decoded as a browser decodes
them (:func:`unescape_attr`, :func:`clean_url`) before a URL is judged.
"""

from __future__ import annotations

import html
import html.entities
import re

from mailbeacon.core import tokens
from mailbeacon.core.stale import tracking_claims

WS = "\t\n\f\r "
ATTR_NC = (
    r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >]*+))?+"
)
TAG_BODY = r"(?:[\t\n\f\r /]++|" + ATTR_NC + r")*+"


def ci(word: str) -> str:
    """A case-insensitive pattern for an ASCII word (cheaper than re.IGNORECASE)."""
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


# Any start or end tag (link text drops them).
ANY_TAG = re.compile(r"</?[A-Za-z][^\t\n\f\r />]*+" + TAG_BODY + r">", re.ASCII)
ATTR = re.compile(
    r"(?P<n>[^\t\n\f\r />][^\t\n\f\r />=]*+)(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    r"(?:\"(?P<dq>[^\"]*+)(?:\"|\Z)|'(?P<sq>[^']*+)(?:'|\Z)|(?P<uq>[^\t\n\f\r >]*+)))?+"
)
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
    if not _HTTP.match(url) or "\x00" in url:
        # A NUL is no part of a URL, and PostgreSQL stores no text with one in it: a
        # click on such a link would fail the server's whole group of hits.
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
        fragment = ANY_TAG.sub("", fragment)
    if "&" in fragment:
        fragment = html.unescape(fragment)
    return " ".join(fragment.split())


def is_letter(char: str) -> bool:
    """Whether ``char`` is an ASCII letter (what may follow "<" or "</" in a tag)."""
    return char.isascii() and char.isalpha()


A_FOLLOW = frozenset("\t\n\f\r />")


def href_value(m: re.Match[str]) -> tuple[int, int, str, bool] | None:
    """The href a tag pattern captured (groups dq, sq, uq): value span, raw value, quoted."""
    for group, quoted in (("dq", True), ("sq", True), ("uq", False)):
        start = m.start(group)
        if start >= 0:
            return start, m.end(group), m.group(group), quoted
    return None


def attribute(tag: re.Match[str], wanted: str) -> tuple[int, int, str, bool] | None:
    """The first attribute named ``wanted``: value span, raw value, whether quoted."""
    for m in ATTR.finditer(tag.string, tag.start(3), tag.end(3)):
        if m.group("n").lower() != wanted:
            continue
        for group, quoted in (("dq", True), ("sq", True), ("uq", False)):
            if m.group(group) is not None:
                return m.start(group), m.end(group), m.group(group), quoted
        return None  # present without a value: the empty string, nothing to follow
    return None
