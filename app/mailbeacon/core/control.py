"""Per-message control channel at the relay (docs/interfaces.md).

A message can override the rep's defaults with a BCC to a reserved address
(``track@``, ``clicks@``, ``notrack@``, ``log@``, ``nolog@mailbeacon.invalid``)
or, for scripts, with the headers ``X-MailBeacon-Track: yes|clicks|no`` and
``X-MailBeacon-Log: yes|no``. "Clicks" means tracked without the open pixel:
links only (docs/rules.md rule 1, "Clicks only"). :func:`decide` reads those controls and strips
every trace of them, so nothing of the control channel reaches a recipient.

Rules:

* Controls are read from the envelope recipients and the top-level headers.
  Control addresses a client also wrote into To/Cc/Bcc (or Resent-*) headers
  are removed from those headers; they do not count twice and do not count on
  their own (the envelope is what the client really sent).
* Conflicts resolve to "no": if anything says ``no`` for a switch, the switch
  is off. Tracking or logging a message the rep tried to exclude is the worse
  mistake. "Clicks" is a "yes" for tracking and a "no" for the pixel, so
  ``notrack@`` with ``clicks@`` sends untracked, and ``track@`` with ``clicks@``
  sends clicks only.
* Every ``X-MailBeacon-*`` header is removed, known or not; an unknown value
  (``X-MailBeacon-Track: maybe``) changes nothing and is reported in ``notes``.
* Everything else of the message stays byte-identical; when nothing had to be
  removed, the very same ``bytes`` object is returned (no copy of a large
  message).
* ``X-MailBeacon-Send-At`` (a date with a zone) and ``X-MailBeacon-Remind``
  (``3d``, ``4h``; ``no`` for none) are read too (core/followup_time.py). A value
  that cannot be read is a ``refusal``: the relay refuses the message instead of
  sending it now or without the reminder the rep asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mailbeacon.core.followup_time import Delay, TimeRuleError, parse_delay, parse_send_at

CONTROL_DOMAIN = "mailbeacon.invalid"
HEADER_PREFIX = "x-mailbeacon-"

# local part -> (switch, value); "clicks" also votes "no" for the pixel (switch "opens")
_ADDRESS_CONTROLS: dict[str, tuple[str, bool]] = {
    "track": ("track", True),
    "clicks": ("track", True),
    "notrack": ("track", False),
    "log": ("log", True),
    "nolog": ("log", False),
}
_CLICKS_ONLY = frozenset({"clicks", "clicks-only", "clicks only"})
_HEADER_CONTROLS = {"x-mailbeacon-track": "track", "x-mailbeacon-log": "log"}
_ADDRESS_HEADERS = frozenset({"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"})
_YES = frozenset({"yes", "true", "on", "1"})
_NO = frozenset({"no", "false", "off", "0"})


@dataclass(frozen=True, slots=True)
class ControlDecision:
    """What the control channel asked for, and the message without it.

    ``track``/``log`` are ``None`` when the message did not say (use the
    defaults). ``opens`` is ``False`` when it asked for clicks only (no pixel),
    else ``None`` (the setting ``tracking.opens`` decides). ``recipients`` are
    the envelope recipients left to deliver to.
    ``notes`` describes ignored controls, for the operator's log.
    ``send_at`` (UTC) asks for a later send; ``remind`` for a reminder when nobody
    replies (amount 0: explicitly none); ``refusal`` says why the message must be
    refused (an unreadable value of either).
    """

    track: bool | None
    log: bool | None
    recipients: tuple[str, ...]
    message: bytes
    notes: tuple[str, ...] = ()
    opens: bool | None = None
    send_at: datetime | None = None
    remind: Delay | None = None
    refusal: str | None = None


def is_control_address(address: str) -> bool:
    """True for any address in the reserved domain, known or not."""
    _, at, domain = address.strip().strip("<>").rpartition("@")
    return bool(at) and domain.rstrip(".").lower() == CONTROL_DOMAIN


def control_of(address: str) -> tuple[str, bool] | None:
    """``("track", False)`` for ``notrack@mailbeacon.invalid``; None if not a known control."""
    if not is_control_address(address):
        return None
    return _ADDRESS_CONTROLS.get(_local(address))


def _local(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[0].lower()


def decide(recipients: Iterable[str], message: bytes) -> ControlDecision:
    """Read the controls of one message and remove them from envelope and headers."""
    votes: dict[str, list[bool]] = {"track": [], "log": [], "opens": []}
    timing: dict[str, object] = {}
    notes: list[str] = []
    kept: list[str] = []
    for address in recipients:
        if not is_control_address(address):
            if address not in kept:
                kept.append(address)
            continue
        control = control_of(address)
        if control is None:
            notes.append(f"unknown control address {address!r} ignored")
        else:
            votes[control[0]].append(control[1])
            if _local(address) == "clicks":
                votes["opens"].append(False)
    cleaned = _strip_headers(message, votes, notes, timing)
    send_at = timing.get("send_at")
    remind = timing.get("remind")
    refusal = timing.get("refusal")
    return ControlDecision(
        track=_resolve(votes["track"]),
        log=_resolve(votes["log"]),
        recipients=tuple(kept),
        message=cleaned,
        notes=tuple(notes),
        opens=_resolve(votes["opens"]),
        send_at=send_at if isinstance(send_at, datetime) else None,
        remind=remind if isinstance(remind, Delay) else None,
        refusal=refusal if isinstance(refusal, str) else None,
    )


def _resolve(values: list[bool]) -> bool | None:
    """No vote: None; any "no": False (the safe side); else True."""
    if not values:
        return None
    return all(values)


def _header_end(message: bytes) -> int:
    """Offset of the blank line that ends the header section (len(message) if none)."""
    if message.startswith((b"\r\n", b"\n")):
        return 0
    ends = [i + 1 for i in (message.find(b"\n\r\n"), message.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(message)


def _fields(header: bytes) -> list[bytes]:
    """Split a header section into fields, each with its folded continuation lines."""
    # Lines are gathered per field and joined once: ``+=`` on bytes copies the field
    # each time, quadratic in a long folded header (1.7 MB took ~1 s on the loop).
    fields: list[list[bytes]] = []
    for line in header.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1].append(line)
        else:
            fields.append([line])
    return [b"".join(lines) for lines in fields]


def _strip_headers(
    message: bytes,
    votes: dict[str, list[bool]],
    notes: list[str],
    timing: dict[str, object] | None = None,
) -> bytes:
    end = _header_end(message)
    header = message[:end]
    lowered = header.lower()
    if b"x-mailbeacon-" not in lowered and CONTROL_DOMAIN.encode() not in lowered:
        return message
    eol = "\r\n" if b"\r\n" in header else "\n"
    out: list[bytes] = []
    changed = False
    for field in _fields(header):
        replacement = _clean_field(field, eol, votes, notes, timing)
        if replacement is not field:
            changed = True
        if replacement is not None:
            out.append(replacement)
    if not changed:
        return message
    return b"".join(out) + message[end:]


def _clean_field(
    field: bytes,
    eol: str,
    votes: dict[str, list[bool]],
    notes: list[str],
    timing: dict[str, object] | None = None,
) -> bytes | None:
    """The field unchanged (same object), a rewritten field, or None to drop it."""
    text = field.decode("ascii", "surrogateescape")
    name, colon, value = text.partition(":")
    if not colon or name[:1] in (" ", "\t"):
        return field
    key = name.strip().lower()
    if key.startswith(HEADER_PREFIX):
        if key in _TIMING_HEADERS:
            _read_timing(key, value, timing if timing is not None else {})
        else:
            _vote_header(key, value, votes, notes)
        return None
    if key not in _ADDRESS_HEADERS or CONTROL_DOMAIN not in value.lower():
        return field
    pieces = _address_pieces(value)
    if not any(kind == "mbox" and _is_control_element(t) for kind, t in pieces):
        return field
    rebuilt = _join_pieces(pieces, eol)
    if not rebuilt:
        return None
    return f"{name}: {rebuilt}{eol}".encode("ascii", "surrogateescape")


def _vote_header(key: str, value: str, votes: dict[str, list[bool]], notes: list[str]) -> None:
    switch = _HEADER_CONTROLS.get(key)
    word = " ".join(value.split()).lower()
    if switch is None:
        notes.append(f"unknown control header {key!r} removed")
    elif word in _YES:
        votes[switch].append(True)
    elif switch == "track" and word in _CLICKS_ONLY:
        votes["track"].append(True)
        votes["opens"].append(False)
    elif word in _NO:
        votes[switch].append(False)
    else:
        notes.append(f"control header {key!r} with unknown value {word!r} ignored")


_TIMING_HEADERS = frozenset({"x-mailbeacon-send-at", "x-mailbeacon-remind"})


def _read_timing(key: str, value: str, timing: dict[str, object]) -> None:
    """Send-At and Remind; an unreadable value becomes the refusal (the first one wins)."""
    word = " ".join(value.split())
    try:
        if key == "x-mailbeacon-send-at":
            timing["send_at"] = parse_send_at(word)
        elif word.lower() in _NO:
            timing["remind"] = Delay(0, "d")
        else:
            timing["remind"] = parse_delay(word, what="X-MailBeacon-Remind")
    except TimeRuleError as exc:
        timing.setdefault("refusal", str(exc))


def _address_pieces(value: str) -> list[tuple[str, str]]:
    """Split an address-list value into ("mbox", text), ("start", "Name:"), ("end", ";").

    Commas, colons and semicolons count only outside quoted strings, comments,
    angle brackets and domain literals.
    """
    pieces: list[tuple[str, str]] = []
    current: list[str] = []
    quoted = escaped = False
    depth = {"(": 0, "<": 0, "[": 0}
    closing = {")": "(", ">": "<", "]": "["}
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or depth["("]):
            escaped = True
        elif ch == '"' and not depth["("]:
            quoted = not quoted
        elif quoted:
            pass
        elif ch in depth:
            depth[ch] += 1
        elif ch in closing and depth[closing[ch]]:
            depth[closing[ch]] -= 1
        elif not any(depth.values()) and ch in ",:;":
            if ch == ":":
                pieces.append(("start", "".join(current).strip() + ":"))
            else:
                pieces.append(("mbox", "".join(current)))
                if ch == ";":
                    pieces.append(("end", ";"))
            current = []
            continue
        current.append(ch)
    pieces.append(("mbox", "".join(current)))
    return pieces


def _is_control_element(text: str) -> bool:
    """True if the mailbox written as ``text`` has its address in the reserved domain."""
    bare = _without_quotes_and_comments(text)
    if "<" in bare:
        bare = bare[bare.index("<") + 1 :].partition(">")[0]
    return is_control_address(bare.strip())


def _without_quotes_and_comments(text: str) -> str:
    out: list[str] = []
    quoted = escaped = False
    comment = 0
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or comment):
            escaped = True
        elif ch == '"' and not comment:
            quoted = not quoted
        elif not quoted and ch == "(":
            comment += 1
        elif not quoted and ch == ")" and comment:
            comment -= 1
        elif not quoted and not comment:
            out.append(ch)
    return "".join(out)


def _join_pieces(pieces: list[tuple[str, str]], eol: str) -> str:
    """Rebuild an address list without control mailboxes, one mailbox per folded line."""
    out: list[str] = []
    need_comma = False
    separator = "," + eol + " "
    for kind, text in pieces:
        if kind == "mbox":
            mailbox = text.strip()
            if not mailbox or _is_control_element(mailbox):
                continue
            out.append((separator if need_comma else "") + mailbox)
            need_comma = True
        elif kind == "start":
            out.append((separator if need_comma else "") + text + " ")
            need_comma = False
        else:
            out[-1:] = [(out[-1].rstrip() if out else "") + ";"]
            need_comma = True
    return "".join(out).strip()
