"""Reading and writing IMAP's syntax: the values in responses, the strings in commands.

Pure functions over bytes, apart from the socket (:mod:`imap_client` reads
responses whole, literals included, and hands them here). A parser never raises
on what a server sends: damaged input reads as None or as fewer values, and
every loop advances, so garbage can neither crash nor hang the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_LIST = re.compile(rb"^\* (?:LIST|XLIST) ", re.IGNORECASE)
_ANY_CODE = re.compile(rb"^\S+ (?:OK|NO|BAD|PREAUTH|BYE) \[([^\]]*)\]", re.IGNORECASE)
_LITERAL_AT = re.compile(rb"\{(\d+)\+?\}\r?\n")
_UID_RANGE = re.compile(r"^(\d{1,10})(?::(\d{1,10}))?$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_UID_SET = 100_000  # a COPYUID answer naming more UIDs than this is not believed

Value = bytes | int | None | list[Any]


@dataclass(frozen=True, slots=True)
class Response:
    """One response: untagged (``tag`` None), tagged, or a continuation (``tag`` "+")."""

    tag: str | None
    data: bytes  # the whole response, literals inline, without the final CRLF

    @property
    def text(self) -> str:
        """The response as text (for messages and logs)."""
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class ListedMailbox:
    """One mailbox a LIST answer names."""

    name: str  # as the server spells it (modified UTF-7): pass it back unchanged
    delimiter: str | None
    flags: frozenset[str]  # upper case, e.g. "\\SENT", "\\NOSELECT"

    @property
    def selectable(self) -> bool:
        """False for a mailbox that only holds other mailboxes (or no longer exists)."""
        return not self.flags & {"\\NOSELECT", "\\NONEXISTENT"}


def quote(text: str) -> str:
    """An IMAP quoted string (CR and LF cannot be quoted and are refused)."""
    if "\r" in text or "\n" in text:
        raise ValueError("CR and LF cannot be sent in an IMAP quoted string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids: Sequence[int]) -> str:
    """A compact IMAP sequence set (``1:3,7``) for ``uids``."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set")
    ranges: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            ranges.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges)


def parse_uid_set(text: str, limit: int = MAX_UID_SET) -> list[int] | None:
    """The UIDs of a set like ``4:6,9`` in the order written; None if unreadable or huge."""
    uids: list[int] = []
    for piece in text.split(","):
        match = _UID_RANGE.match(piece.strip())
        if match is None:
            return None
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = 1 if last >= first else -1
        if len(uids) + abs(last - first) + 1 > limit:
            return None
        uids.extend(range(first, last + step, step))
    return uids


def copyuid(responses: Sequence[Response]) -> dict[int, int]:
    """Old UID to new UID from a ``[COPYUID validity old-set new-set]`` answer (else {})."""
    for code in response_codes(responses):
        parts = code.decode("ascii", "replace").split()
        if len(parts) != 4 or parts[0].upper() != "COPYUID":
            continue
        old, new = parse_uid_set(parts[2]), parse_uid_set(parts[3])
        if old is not None and new is not None and len(old) == len(new):
            return dict(zip(old, new, strict=True))
    return {}


def imap_date(when: datetime) -> str:
    """An IMAP date-time (``01-Jan-2030 10:00:00 +0000``) for APPEND."""
    month = _MONTHS[when.month - 1]
    offset = when.strftime("%z") or "+0000"
    return f"{when.day:02d}-{month}-{when.year:04d} {when.strftime('%H:%M:%S')} {offset}"


def parse_list(data: bytes) -> ListedMailbox | None:
    """One ``* LIST (flags) delimiter name`` response; None if it cannot be read."""
    match = _LIST.match(data)
    if match is None:
        return None
    flags, pos = _value(data, match.end())
    delimiter, pos = _value(data, pos)
    name, _ = _value(data, pos)
    if not isinstance(flags, list):
        return None
    if isinstance(name, int):  # an all-digit name reads as a number
        name = str(name).encode()
    if not isinstance(name, bytes) or not name:
        return None
    return ListedMailbox(
        name=name.decode("utf-8", "replace"),
        delimiter=delimiter.decode("ascii", "replace") if isinstance(delimiter, bytes) else None,
        flags=frozenset(f.decode("ascii", "replace").upper() for f in flags
                        if isinstance(f, bytes)),
    )


def response_codes(responses: Iterable[Response]) -> list[bytes]:
    """The response codes (``[...]``) of untagged and tagged status responses."""
    found = []
    for response in responses:
        match = _ANY_CODE.match(response.data)
        if match:
            found.append(match.group(1))
    return found


def parse_fetch(data: bytes, pos: int) -> dict[str, Value]:
    """The attributes of a ``* n FETCH (...)`` response; ``pos`` is after "FETCH"."""
    value, _ = _value(data, pos)
    items: dict[str, Value] = {}
    if not isinstance(value, list):
        return items
    for index in range(0, len(value) - 1, 2):
        key = value[index]
        if isinstance(key, bytes):
            items[key.decode("ascii", "replace").upper()] = value[index + 1]
    return items


def _value(data: bytes, pos: int) -> tuple[Value, int]:
    """One value at ``pos``: list, quoted string, literal, number, NIL or atom."""
    end = len(data)
    while pos < end and data[pos] == 0x20:
        pos += 1
    if pos >= end:
        return None, pos
    char = data[pos : pos + 1]
    if char == b"(":
        return _list(data, pos + 1)
    if char == b'"':
        return _quoted(data, pos + 1)
    if char == b"{":
        match = _LITERAL_AT.match(data, pos)
        if match:
            size = int(match.group(1))
            return data[match.end() : match.end() + size], match.end() + size
    return _atom(data, pos)


def _list(data: bytes, pos: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    end = len(data)
    while pos < end:
        while pos < end and data[pos] == 0x20:
            pos += 1
        if pos >= end:
            break
        if data[pos : pos + 1] == b")":
            return items, pos + 1
        value, new_pos = _value(data, pos)
        if new_pos <= pos:  # nothing readable here: stop rather than loop
            break
        items.append(value)
        pos = new_pos
    return items, pos


def _quoted(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    end = len(data)
    while pos < end:
        char = data[pos]
        if char == 0x5C and pos + 1 < end:  # backslash
            out.append(data[pos + 1])
            pos += 2
            continue
        if char == 0x22:  # closing quote
            return bytes(out), pos + 1
        out.append(char)
        pos += 1
    return bytes(out), pos


def _atom(data: bytes, pos: int) -> tuple[Value, int]:
    start = pos
    end = len(data)
    depth = 0
    while pos < end:
        char = data[pos : pos + 1]
        if char == b"[":
            depth += 1
        elif char == b"]":
            depth = max(0, depth - 1)
        elif depth == 0 and char in (b" ", b"(", b")"):
            break
        pos += 1
    atom = data[start:pos]
    if atom.isdigit():
        return int(atom), pos
    if atom.upper() == b"NIL":
        return None, pos
    return atom, pos
