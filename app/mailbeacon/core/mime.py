"""Email MIME structure at the byte level, for changing a few bodies and nothing else.

:func:`parse_message` finds every part's header block and body as offsets into
the raw bytes; it never copies or re-serialises a part. Preamble, epilogue,
delimiter lines, header blocks and the bodies nobody changes stay exactly as
sent, because a rewrite only splices new bytes over the spans it changes
(:func:`splice`). Python's ``email`` package parses header blocks (parameters,
RFC 2231) and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value

MAX_DEPTH = 50
MAX_PARTS = 10_000
MAX_LINE = 998  # RFC 5322 line limit (octets, without CRLF)

_IDENTITY_CTES = frozenset({"", "7bit", "8bit", "binary"})
_WHITESPACE = b" \t\r\n"
_CTE_HEADER = re.compile(
    rb"^(content-transfer-encoding[ \t]*:)[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.IGNORECASE | re.M
)
_HEADER_PARSER = BytesHeaderParser(policy=compat32)
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


class MimeError(ValueError):
    """The message (or a part of it) cannot be taken apart safely."""


@dataclass(frozen=True, slots=True, eq=False)
class Part:
    """One MIME part, as offsets into the raw message.

    ``raw[start:header_end]`` is the header block (without the blank line),
    ``raw[body_start:end]`` the body (without the line break that belongs to the
    next delimiter line).
    """

    start: int
    header_end: int
    body_start: int
    end: int
    header: Message
    content_type: str
    children: tuple[Part, ...] = ()

    @property
    def cte(self) -> str:
        """Content-Transfer-Encoding, lower-case ("" when absent)."""
        return _header_str(self.header, "content-transfer-encoding").strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset parameter, lower-case, if any."""
        try:
            charset = self.header.get_content_charset()
        except (ValueError, LookupError, TypeError):
            return None
        return str(charset) if charset else None

    @property
    def disposition(self) -> str | None:
        """Content-Disposition type ("inline", "attachment"), lower-case, if any."""
        try:
            return self.header.get_content_disposition()
        except (ValueError, TypeError):
            return None

    @property
    def filename(self) -> str | None:
        """The file name from Content-Disposition or Content-Type, undecoded."""
        try:
            name = self.header.get_filename()
        except (ValueError, TypeError, LookupError):
            return None
        return str(name) if name is not None else None

    @property
    def is_attachment(self) -> bool:
        """An attachment: disposition "attachment", or a part that carries a file name."""
        return self.disposition == "attachment" or self.filename is not None

    @property
    def content_id(self) -> str | None:
        """The Content-ID without angle brackets."""
        value = _header_str(self.header, "content-id").strip()
        return value.strip("<>") or None

    def param(self, name: str) -> str | None:
        """A Content-Type parameter (RFC 2231 collapsed)."""
        try:
            value = self.header.get_param(name)
        except (ValueError, TypeError, LookupError):
            return None
        if value is None or isinstance(value, str):
            return value
        return collapse_rfc2231_value(value)


def parse_message(raw: bytes, *, max_depth: int = MAX_DEPTH, max_parts: int = MAX_PARTS) -> Part:
    """The part tree of a message; raises MimeError when it cannot be split safely."""
    parser = _TreeParser(raw, max_depth, max_parts)
    return parser.part(0, len(raw), 0, "text/plain")


def walk(part: Part) -> list[Part]:
    """The part and all its descendants, depth first (iterative: no recursion limit)."""
    out: list[Part] = []
    stack = [part]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(reversed(p.children))
    return out


class _TreeParser:
    def __init__(self, raw: bytes, max_depth: int, max_parts: int) -> None:
        self.raw = raw
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.count = 0

    def part(self, start: int, end: int, depth: int, default_type: str) -> Part:
        if depth > self.max_depth:
            raise MimeError(f"parts nested more than {self.max_depth} deep")
        self.count += 1
        if self.count > self.max_parts:
            raise MimeError(f"more than {self.max_parts} parts")
        header_end, body_start = split_header(self.raw, start, end)
        header = _HEADER_PARSER.parsebytes(self.raw[start:header_end])
        if default_type != "text/plain":
            header.set_default_type(default_type)
        content_type = header.get_content_type().lower()
        children: tuple[Part, ...] = ()
        if content_type.startswith("multipart/"):
            child_type = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
            spans = self._child_spans(header, body_start, end)
            children = tuple(self.part(s, e, depth + 1, child_type) for s, e in spans)
        return Part(start, header_end, body_start, end, header, content_type, children)

    def _child_spans(self, header: Message, start: int, end: int) -> list[tuple[int, int]]:
        boundary = _boundary(header)
        raw = self.raw
        lines = delimiter_lines(raw, boundary, start, end)
        if not lines:
            raise MimeError("a multipart body has no boundary lines")
        spans: list[tuple[int, int]] = []
        for i, (_line_start, after, closing) in enumerate(lines):
            if closing:
                break
            if i + 1 < len(lines):
                next_start = lines[i + 1][0]
                child_end = max(after, _before_line_break(raw, next_start, start))
            else:  # no closing delimiter (truncated mail): the part runs to the end
                child_end = end
            spans.append((after, child_end))
        return spans


def _boundary(header: Message) -> bytes:
    try:
        boundary = header.get_boundary()
    except (ValueError, TypeError, LookupError):
        boundary = None
    if not boundary:
        raise MimeError("a multipart part has no boundary")
    try:
        return boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return boundary.encode("utf-8", "surrogateescape")


def split_header(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body) of the part at ``raw[start:end]``."""
    if raw.startswith(b"\r\n", start, end):
        return start, start + 2
    if raw.startswith(b"\n", start, end):
        return start, start + 1
    crlf = raw.find(b"\n\r\n", start, end)
    lf = raw.find(b"\n\n", start, crlf + 2 if crlf >= 0 else end)
    if lf >= 0:
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return end, end


def delimiter_lines(
    raw: bytes, boundary: bytes, start: int, end: int
) -> list[tuple[int, int, bool]]:
    """Delimiter lines of ``boundary`` in ``raw[start:end]``: (line start, after its
    line break, closing). A delimiter starts a line and is followed only by
    optional ``--`` and spaces or tabs (RFC 2046)."""
    needle = b"--" + boundary
    found: list[tuple[int, int, bool]] = []
    i = raw.find(needle, start, end)
    while i >= 0:
        if i == start or raw[i - 1] == 0x0A:
            j = i + len(needle)
            closing = raw.startswith(b"--", j, end)
            k = j + 2 if closing else j
            while k < end and raw[k] in b" \t":
                k += 1
            if k >= end or raw[k] == 0x0A:
                found.append((i, min(k + 1, end), closing))
            elif raw.startswith(b"\r\n", k, end):
                found.append((i, k + 2, closing))
            elif raw[k] == 0x0D and k + 1 >= end:
                found.append((i, end, closing))
        i = raw.find(needle, i + len(needle), end)
    return found


def _before_line_break(raw: bytes, line_start: int, floor: int) -> int:
    """Where the line break in front of a delimiter line starts (it belongs to the delimiter)."""
    if line_start - 2 >= floor and raw[line_start - 2 : line_start] == b"\r\n":
        return line_start - 2
    if line_start - 1 >= floor and raw[line_start - 1] == 0x0A:
        return line_start - 1
    return line_start


def _header_str(header: Message, name: str) -> str:
    value = header.get(name)
    return "" if value is None else str(value)


def line_ending(raw: bytes, start: int = 0, end: int | None = None) -> bytes:
    """The line ending used at ``raw[start:end]`` (of the first line there): CRLF or LF."""
    stop = len(raw) if end is None else end
    lf = raw.find(b"\n", start, stop)
    if lf < 0:
        lf = raw.find(b"\n")
    if lf < 0:
        return b"\r\n"
    return b"\r\n" if lf > 0 and raw[lf - 1] == 0x0D else b"\n"


def codec_for(part: Part) -> str:
    """The Python codec for a text part's charset (us-ascii when none); MimeError if unknown."""
    charset = part.charset or "us-ascii"
    try:
        return codecs.lookup(charset).name
    except LookupError:
        raise MimeError(f"unknown charset {charset!r}") from None


def decode_body(raw: bytes, part: Part, *, strict: bool = True) -> bytes:
    """The body with its transfer encoding undone; MimeError if that cannot be done
    exactly (unknown encoding, broken base64). ``strict=False`` salvages what it can."""
    cte = part.cte
    if cte in _IDENTITY_CTES:
        return raw[part.body_start : part.end]
    # A view, not a copy: attachments can be large.
    body = memoryview(raw)[part.body_start : part.end]
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte == "base64":
        try:
            if strict:
                compact = bytes(body).translate(None, _WHITESPACE)
                return binascii.a2b_base64(compact, strict_mode=True)
            return binascii.a2b_base64(body)  # skips line breaks and stray characters
        except binascii.Error as exc:
            if strict:
                raise MimeError(f"broken base64 ({exc})") from None
            return _salvage_base64(bytes(body))
    if strict:
        raise MimeError(f"unknown transfer encoding {cte!r}")
    return raw[part.body_start : part.end]


def _salvage_base64(data: bytes) -> bytes:
    """What can be read of broken base64: the alphabet's characters up to the padding."""
    usable = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
    usable = usable[: len(usable) - len(usable) % 4]
    try:
        return binascii.a2b_base64(usable)
    except binascii.Error:
        return b""


def encode_qp(data: bytes, eol: bytes) -> bytes:
    """Quoted-printable text, lines of at most 76 characters, ending in ``eol``."""
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    # b2a_qp writes every line break as the first one in ``data`` is written (LF if none).
    first = data.find(b"\n")
    crlf = first > 0 and data[first - 1] == 0x0D
    if eol == b"\r\n" and not crlf:
        return encoded.replace(b"\n", b"\r\n")
    if eol == b"\n" and crlf:
        return encoded.replace(b"\r\n", b"\n")
    return encoded


def encode_base64(data: bytes, eol: bytes, *, final_break: bool) -> bytes:
    """Base64 in lines of 76 characters ending in ``eol``; ``final_break`` keeps the last one."""
    encoded = base64.encodebytes(data)
    if eol != b"\n":
        encoded = encoded.replace(b"\n", eol)
    if not final_break and encoded.endswith(eol):
        encoded = encoded[: -len(eol)]
    return encoded


def longest_line(data: bytes) -> int:
    """Length of the longest line of ``data`` in octets, line break excluded."""
    return max(len(line) - line.endswith(b"\r") for line in data.split(b"\n"))


def set_cte(raw: bytes, part: Part, cte: str) -> tuple[int, int, bytes]:
    """An edit that makes the part's Content-Transfer-Encoding ``cte``, touching only that
    header (or adding it at the end of the header block)."""
    block = raw[part.start : part.header_end]
    m = _CTE_HEADER.search(block)
    if m is not None:
        return part.start + m.start(), part.start + m.end(), m.group(1) + b" " + cte.encode()
    eol = line_ending(raw, part.start, part.end)
    line = b"Content-Transfer-Encoding: " + cte.encode() + eol
    return part.header_end, part.header_end, line


def splice(raw: bytes, edits: Sequence[tuple[int, int, bytes]]) -> bytes:
    """``raw`` with each ``(start, end, data)`` span replaced (edits must not overlap)."""
    if not edits:
        return raw
    return b"".join(splice_pieces(raw, edits))


def splice_pieces(
    raw: bytes, edits: Sequence[tuple[int, int, bytes]]
) -> tuple[bytes | memoryview, ...]:
    """``splice`` as pieces: the unchanged spans are views of ``raw``, not copies, so a
    large attachment is never held twice."""
    if not edits:
        return (raw,)
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    pos = 0
    for start, end, data in sorted(edits, key=lambda e: (e[0], e[1])):
        pieces.append(view[pos:start])
        pieces.append(data)
        pos = end
    pieces.append(view[pos:])
    return tuple(pieces)


# Content that a signature or encryption covers: changing a byte breaks it.
SEALED_TYPES = frozenset(
    {
        "multipart/signed",
        "multipart/encrypted",
        "application/pkcs7-mime",
        "application/x-pkcs7-mime",
        "application/pgp-encrypted",
    }
)


@dataclass(slots=True)
class Layout:
    """Which parts are the email's body and which are attached or embedded."""

    html: list[Part]  # text/html parts that are the body (every alternative, every inline one)
    text: list[Part]  # text/plain parts that are the body
    others: list[Part]  # every other leaf: attachments, inline images, attached messages
    sealed: bool  # the body is signed or encrypted


def layout(root: Part) -> Layout:
    """Sort the leaves of a part tree into body text and everything else, in order.

    The body is what a mail client shows as the message: the root of a
    multipart/related, every alternative of a multipart/alternative, every
    inline text part of a multipart/mixed. Parts marked as attachments or
    carrying a file name, and everything inside an attached message, are not.
    """
    out = Layout([], [], [], False)
    stack: list[tuple[Part, bool]] = [(root, True)]
    while stack:
        part, body = stack.pop()
        body = body and not part.is_attachment
        if body and part.content_type in SEALED_TYPES:
            out.sealed = True
        if part.children:
            root_child = _related_root(part) if part.content_type == "multipart/related" else None
            for child in reversed(part.children):
                stack.append((child, body and (root_child is None or child is root_child)))
            continue
        if body and part.content_type == "text/html":
            out.html.append(part)
        elif body and part.content_type == "text/plain":
            out.text.append(part)
        else:
            out.others.append(part)
    return out


def _related_root(part: Part) -> Part:
    start = part.param("start")
    if start:
        wanted = start.strip().strip("<>")
        for child in part.children:
            if child.content_id == wanted:
                return child
    return part.children[0]
