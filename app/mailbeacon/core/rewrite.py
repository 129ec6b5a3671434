"""The rewrite engine: what to send for one outgoing email (docs/rules.md rules 1-4).

:func:`rewrite_message` takes the raw bytes a mail client handed the relay and
returns the copies to send. It is pure: URLs come from the injected
:class:`UrlMinter`, keys from the injected key factories.

Decisions:

* HTML bodies get one pixel (the same URL in every text/html part that is the
  body) and, with click tracking on, rewritten links plus one hidden honeypot
  link. Clicks only (``Plan.opens`` off): the links and nothing else, no pixel
  and no honeypot. Plain-text-only email is sent untouched (rule 1).
* The plain-text alternative of the same ``multipart/alternative`` gets the same
  ``/c/`` URL (same token) wherever an HTML link's tracked target stands in it as
  a URL (:mod:`mailbeacon.core.text_links`), so both alternatives carry the
  same URLs (rule 2).
* Stale pixels and tracked links from the rep's earlier emails are removed or
  unwrapped (rule 4) whenever the message can be taken apart safely, tracked or
  not: one message, one live pixel, and no stale pixel in an untracked email
  either. Only tracking the rep's key verifies (``UrlMinter.verify``) counts;
  anyone else's, or a forgery, stays exactly as it is. Plain-text alternatives
  get their stale tracked URLs unwrapped as well. An old honeypot link is
  removed, not turned into a visible tracked link.
* Links in quoted or forwarded parts of a reply are never wrapped: the rep's
  signature goes only on links the rep wrote (rule 4).
* Links are numbered 0.. across all HTML bodies; tokens carry a 16-bit index,
  so links past the 65,535th stay as they are (the email is still tracked).
* All or nothing: when an HTML body cannot be decoded and re-encoded exactly
  (unknown charset or transfer encoding, broken base64), when the MIME
  structure cannot be split safely, or when the body is signed or encrypted,
  the message goes out byte-for-byte unmodified with ``tracked=False`` and a
  reason for the rep. Nothing here raises.
* Only the bodies of changed text parts are re-encoded, in their own charset
  and transfer encoding. The one header ever changed is the
  Content-Transfer-Encoding of a 7bit/8bit part whose lines the new URLs push
  past 998 octets (it becomes quoted-printable).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailbeacon.core import tokens
from mailbeacon.core.html_links import HtmlPlan, TrackedLink, plan_html, render
from mailbeacon.core.language import mark
from mailbeacon.core.mime import (
    MAX_LINE,
    MimeError,
    Part,
    codec_for,
    decode_body,
    encode_base64,
    encode_qp,
    layout,
    line_ending,
    longest_line,
    parse_message,
    set_cte,
    splice_pieces,
    walk,
)
from mailbeacon.core.stale import unwrap_text
from mailbeacon.core.text_links import TextLink, plan_text, render_text

__all__ = [
    "REASON_INTERNAL",
    "REASON_NO_HTML",
    "REASON_NO_LINKS",
    "REASON_OFF",
    "REASON_PLAIN_TEXT",
    "REASON_SEALED",
    "REASON_UNDECODABLE",
    "REASON_UNPARSABLE",
    "Copy",
    "Plan",
    "RewriteResult",
    "TrackedLink",
    "UrlMinter",
    "rewrite_message",
]

log = logging.getLogger(__name__)

REASON_OFF = mark("tracking is off for this email")
REASON_PLAIN_TEXT = mark("plain-text email: no pixel can work there")
REASON_NO_HTML = mark("no HTML body: no pixel can work there")
REASON_UNPARSABLE = mark("could not parse MIME safely: sent unmodified")
REASON_UNDECODABLE = mark("could not decode the HTML body safely: sent unmodified")
REASON_SEALED = mark("signed or encrypted email: tracking would break it, sent unmodified")
REASON_INTERNAL = mark("could not add tracking (internal error): sent unmodified")
REASON_NO_LINKS = mark("clicks only, and this email has no link that can be tracked")

HONEYPOT_FALLBACK_TARGET = "https://example.invalid/"
_ORIGIN = re.compile(r"(?i:https?)://[^/?#\s]+")
_PGP_MARK = "-----BEGIN PGP "
# Codecs where decoding with surrogateescape and encoding back always gives the same bytes
# (stateless, one byte or UTF-8); others (ISO-2022, UTF-16, ...) are checked each time.
_ROUND_TRIP_CODECS = frozenset(
    {"utf-8", "ascii"}
    | {f"iso8859-{n}" for n in range(1, 17)}
    | {f"cp{n}" for n in range(1250, 1259)}
)


@dataclass(frozen=True)
class Plan:
    """What to do with one message."""

    track: bool  # add pixel (+ links if clicks)
    clicks: bool  # rewrite links (rule 2)
    per_recipient: bool  # one copy per recipient, each with own pixel (rule 3)
    opens: bool = True  # the pixel (and honeypot); off: clicks only (rule 1)


class UrlMinter(Protocol):
    """Mints the tracking URLs put into a message, and knows the rep's own tokens."""

    def pixel(self, message_key: str, recipient_key: str | None) -> str: ...

    def click(
        self, message_key: str, recipient_key: str | None, index: int, target: str
    ) -> str: ...

    def verify(self, token: str) -> tokens.Claims | None:
        """The token's claims if the rep signed it, else None (rule 4)."""
        ...


@dataclass(frozen=True)
class Copy:
    """One message to send, and to whom."""

    recipients: tuple[str, ...]  # envelope recipients this copy goes to
    recipient_key: str | None  # None for a shared pixel (several recipients) or no pixel
    # The message in order: unchanged spans are views of the original, so the outbox
    # writes a large attachment without a second copy of it in memory.
    pieces: tuple[bytes | memoryview, ...]

    @property
    def data(self) -> bytes:
        """The full message to send, joined."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], bytes):
            return self.pieces[0]
        return b"".join(self.pieces)

    @property
    def size(self) -> int:
        """Its length in bytes."""
        return sum(len(p) for p in self.pieces)


@dataclass(frozen=True)
class RewriteResult:
    """What to send for one outgoing message, and what tracking it carries."""

    message_key: str
    copies: tuple[Copy, ...]
    tracked: bool  # a pixel went in, or (clicks only) at least one tracked link
    untracked_reason: str | None  # why not, for the rep
    links: tuple[TrackedLink, ...]
    stale_removed: int  # stale pixels removed + stale links unwrapped
    pixel: bool = False  # an open pixel went in (False for clicks only)


def rewrite_message(
    raw: bytes,
    recipients: Sequence[str],
    plan: Plan,
    minter: UrlMinter,
    new_message_key: Callable[[], str] = tokens.new_message_key,
    new_recipient_key: Callable[[], str] = tokens.new_recipient_key,
) -> RewriteResult:
    """The copies to send for ``raw``: pixel, links and stale removal per ``plan``. Never raises."""
    message_key = new_message_key()
    rcpts = tuple(recipients)
    try:
        return _Rewrite(raw, rcpts, plan, minter, message_key, new_recipient_key).run()
    except _Unmodified as why:
        log.info("message %s sent unmodified: %s", message_key, why.detail)
        return _unmodified(raw, rcpts, message_key, why.reason)
    except MimeError as exc:
        log.info("message %s sent unmodified: %s", message_key, exc)
        return _unmodified(raw, rcpts, message_key, REASON_UNPARSABLE)
    except Exception:  # the mail must go out whatever happened here
        log.exception("message %s: rewriting failed, sending it unmodified", message_key)
        return _unmodified(raw, rcpts, message_key, REASON_INTERNAL)


class _Unmodified(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _unmodified(raw: bytes, rcpts: tuple[str, ...], key: str, reason: str) -> RewriteResult:
    return RewriteResult(key, (Copy(rcpts, None, (raw,)),), False, reason, (), 0)


@dataclass(frozen=True, slots=True)
class _Html:
    part: Part
    text: str
    codec: str
    plan: HtmlPlan


@dataclass(slots=True)
class _Plain:
    """A plain-text body: its text after stale links were unwrapped, and the tracked
    links planned in it (the HTML alternative's targets)."""

    part: Part
    text: str
    codec: str
    unwrapped: int
    links: tuple[TextLink, ...] = ()


class _Rewrite:
    def __init__(
        self,
        raw: bytes,
        rcpts: tuple[str, ...],
        plan: Plan,
        minter: UrlMinter,
        message_key: str,
        new_recipient_key: Callable[[], str],
    ) -> None:
        self.raw = raw
        self.rcpts = rcpts
        self.plan = plan
        self.minter = minter
        self.message_key = message_key
        self.new_recipient_key = new_recipient_key

    def run(self) -> RewriteResult:
        root = parse_message(self.raw)
        parts = layout(root)
        if parts.sealed:
            raise _Unmodified(REASON_SEALED, "signed or encrypted body")
        decoded = [(part, *self._decode_html(part)) for part in parts.html]
        opens = self.plan.opens
        clicks = self.plan.clicks or not opens  # clicks only tracks clicks, whatever else
        track = self.plan.track and bool(decoded)
        bodies: list[_Html] = []
        next_link = 0
        for part, text, codec in decoded:
            html_plan = plan_html(
                text,
                track=track,
                clicks=clicks,
                first_link=next_link,
                ours=self.minter.verify,
                opens=opens,
            )
            next_link += len(html_plan.links)
            bodies.append(_Html(part, text, codec, html_plan))
        plains, stale = self._unwrap_plain(parts.text)
        stale += sum(b.plan.stale for b in bodies)
        links = tuple(link for b in bodies for link in b.plan.links)
        if track and not opens and not links:
            track = False  # clicks only with nothing to click: send it untracked
        if track and links:
            _plan_plain_links(root, bodies, plains)
        edits = [e for p in plains if not p.links and p.unwrapped for e in self._plain_edits(p)]
        if not track:
            for b in bodies:
                if b.plan.changed:
                    html_out = render(b.text, b.plan, None, None, _no_click)
                    edits.extend(self._encode(b.part, html_out, b.codec))
            reason = self._untracked_reason(parts.text, bool(decoded))
            copy = Copy(self.rcpts, None, splice_pieces(self.raw, edits))
            return RewriteResult(self.message_key, (copy,), False, reason, (), stale)
        copies = tuple(
            self._copy(group, key, bodies, plains, edits) for group, key in self._audiences()
        )
        return RewriteResult(self.message_key, copies, True, None, links, stale, opens)

    def _untracked_reason(self, text_parts: list[Part], html: bool) -> str:
        if not self.plan.track:
            return REASON_OFF
        if html:
            return REASON_NO_LINKS
        return REASON_PLAIN_TEXT if text_parts else REASON_NO_HTML

    def _decode_html(self, part: Part) -> tuple[str, str]:
        try:
            text, codec = _decode_text(self.raw, part)
        except MimeError as exc:
            raise _Unmodified(REASON_UNDECODABLE, f"HTML body: {exc}") from None
        if _PGP_MARK in text:
            raise _Unmodified(REASON_SEALED, "inline PGP in the HTML body")
        return text, codec

    def _unwrap_plain(self, parts: list[Part]) -> tuple[list[_Plain], int]:
        """The plain-text bodies that can be edited, stale tracked links unwrapped."""
        plains: list[_Plain] = []
        count = 0
        for part in parts:
            try:
                text, codec = _decode_text(self.raw, part)
            except MimeError as exc:
                log.info("plain-text part left as is: %s", exc)
                continue
            if _PGP_MARK in text:
                continue
            new_text, n = unwrap_text(text, self.minter.verify)
            plains.append(_Plain(part, new_text, codec, n))
            count += n
        return plains, count

    def _plain_edits(
        self, plain: _Plain, click: Callable[[int, str], str] = lambda i, t: t
    ) -> list[tuple[int, int, bytes]]:
        return self._encode(plain.part, render_text(plain.text, plain.links, click), plain.codec)

    def _audiences(self) -> list[tuple[tuple[str, ...], str | None]]:
        unique = _unique(self.rcpts)
        if self.plan.per_recipient and len(unique) >= 2:
            return [((r,), self.new_recipient_key()) for r in unique]
        if len(self.rcpts) == 1:
            return [(self.rcpts, self.new_recipient_key())]
        return [(self.rcpts, None)]

    def _copy(
        self,
        group: tuple[str, ...],
        recipient_key: str | None,
        bodies: list[_Html],
        plains: list[_Plain],
        static: list[tuple[int, int, bytes]],
    ) -> Copy:
        mkey = self.message_key
        minter = self.minter
        pixel = honeypot = None
        if self.plan.opens:
            pixel = minter.pixel(mkey, recipient_key)
            if self.plan.clicks:
                honeypot = minter.click(mkey, recipient_key, tokens.HONEYPOT_LINK, _origin(pixel))
        minted: dict[int, str] = {}

        def click(index: int, target: str) -> str:
            # One URL per link index and copy: the HTML, its VML twin and the plain-text
            # alternative carry the very same token (rule 2).
            url = minted.get(index)
            if url is None:
                url = minted[index] = minter.click(mkey, recipient_key, index, target)
            return url

        edits = list(static)
        for b in bodies:
            html_out = render(b.text, b.plan, pixel, honeypot, click)
            edits.extend(self._encode(b.part, html_out, b.codec))
        for p in plains:
            if p.links:
                edits.extend(self._plain_edits(p, click))
        return Copy(group, recipient_key, splice_pieces(self.raw, edits))

    def _encode(self, part: Part, text: str, codec: str) -> list[tuple[int, int, bytes]]:
        """Edits that put ``text`` in as the part's body, in its charset and encoding."""
        raw = self.raw
        data = text.encode(codec, "surrogateescape")
        cte = part.cte
        eol = line_ending(raw, part.body_start if part.end > part.body_start else part.start)
        if cte == "quoted-printable":
            return [(part.body_start, part.end, encode_qp(data, eol))]
        if cte == "base64":
            final_break = raw[part.end - 1 : part.end] == b"\n"
            return [(part.body_start, part.end, encode_base64(data, eol, final_break=final_break))]
        body_edit = (part.body_start, part.end, data)
        if cte != "binary" and longest_line(data) > MAX_LINE:
            original = raw[part.body_start : part.end]
            if longest_line(original) <= MAX_LINE:
                # New URLs made a line too long for SMTP: quoted-printable wraps it.
                wrapped = (part.body_start, part.end, encode_qp(data, eol))
                return [wrapped, set_cte(raw, part, "quoted-printable")]
        return [body_edit]


def _decode_text(raw: bytes, part: Part) -> tuple[str, str]:
    """The text of a part and its codec; MimeError unless it re-encodes to the same bytes."""
    if part.body_start == part.header_end:  # no blank line: a body put here would be a header
        raise MimeError("a text part has no body")
    data = decode_body(raw, part)
    codec = codec_for(part)
    try:
        text = data.decode(codec, "surrogateescape")
        same = codec in _ROUND_TRIP_CODECS or text.encode(codec, "surrogateescape") == data
    except (UnicodeError, LookupError) as exc:
        raise MimeError(f"charset {codec}: {exc}") from None
    if not same:
        raise MimeError(f"charset {codec} does not round-trip")
    return text, codec


def _plan_plain_links(root: Part, bodies: list[_Html], plains: list[_Plain]) -> None:
    """Plan tracked links in each plain-text body that is an alternative of HTML bodies:
    the targets of the HTML links in its innermost ``multipart/alternative``."""
    alternatives = [p for p in walk(root) if p.content_type == "multipart/alternative"]
    for plain in plains:
        at = plain.part
        around = [a for a in alternatives if a.start <= at.start and at.end <= a.end]
        if not around:
            continue  # not an alternative of anything: a plain-text body stays as written
        alt = max(around, key=lambda a: a.start)
        targets: dict[str, int] = {}
        for b in bodies:
            if alt.start <= b.part.start and b.part.end <= alt.end:
                for link in b.plan.links:
                    targets.setdefault(link.target, link.index)
        plain.links = plan_text(plain.text, targets)


def _no_click(index: int, target: str) -> str:
    raise AssertionError("an untracked body has no tracked links")


def _origin(url: str) -> str:
    """The harmless honeypot target: the tracking server's own root."""
    m = _ORIGIN.match(url)
    return m.group(0) + "/" if m else HONEYPOT_FALLBACK_TARGET


def _unique(rcpts: tuple[str, ...]) -> list[str]:
    """Recipients in order, each once. Only exact repeats go: a local part may be
    case-sensitive, and a mail not delivered is worse than one delivered twice."""
    return list(dict.fromkeys(rcpts))
