"""What an incoming message is: a person's message, an automatic reply, or a bounce.

Pure functions over raw bytes; none of them raises on bad input. :func:`classify`
needs only the header block (what the IMAP watcher fetches for every new
message); :func:`parse_bounce` reads a delivery status notification (RFC 3464)
for the recipients that failed and the Message-ID of the email that bounced.

Automatic replies are recognised by the headers RFC 3834 and common mail
systems set (``Auto-Submitted``, ``X-Autoreply``, ``Precedence``, a null
``Return-Path``) and, for systems that set none of them, by the subject lines
out-of-office replies use in many languages.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from enum import StrEnum

from mailbeacon.core import reasons
from mailbeacon.core.extract import header_value

log = logging.getLogger(__name__)

MAX_REFERENCES = 100  # a thread deeper than this is matched by its nearest messages
MAX_ID_LENGTH = 250
MAX_FAILED = 50
_HEADER_PARSER = HeaderParser(policy=compat32)
_MSG_ID = re.compile(r"<([^<>\s]{1,250})>")
_ANGLE_ADDRESS = re.compile(r"<([^<>\s@]{1,200}@[^<>\s@]{1,200})>")
_BARE_ADDRESS = re.compile(r"([^<>\s@(),;:\"]{1,200}@[^<>\s@(),;:\"]{1,200})")

# Out-of-office subject beginnings, case-folded (matched after brackets and spaces).
AUTO_SUBJECTS: tuple[str, ...] = (
    # English
    "out of office", "out of the office", "automatic reply", "automatic response",
    "auto reply", "auto-reply", "autoreply", "auto response", "auto-response",
    "autoresponse", "away from the office",
    # German
    "abwesenheitsnotiz", "automatische antwort", "abwesenheit",
    # Polish
    "odpowiedź automatyczna", "automatyczna odpowiedź", "autoodpowiedź", "poza biurem",
    "nieobecność",
    # French
    "réponse automatique", "absent du bureau", "absence du bureau",
    # Spanish, Italian, Portuguese
    "respuesta automática", "fuera de la oficina", "risposta automatica", "fuori ufficio",
    "resposta automática", "fora do escritório",
    # Dutch, Scandinavian, Finnish
    "automatisch antwoord", "afwezig", "automatiskt svar", "automatisk svar", "autosvar",
    "automaattinen vastaus",
    # Czech, Slovak, Russian, Ukrainian, Turkish
    "automatická odpověď", "automatická odpoveď", "автоответ", "автоматический ответ",
    "автоматична відповідь", "otomatik yanıt", "otomatik cevap",  # noqa: RUF001
    # Japanese, Chinese, Korean
    "自動応答", "自動返信", "自动回复", "自動回覆", "자동 회신", "자동 응답",
)
_AUTO_SUBJECTS_NFC = tuple(unicodedata.normalize("NFC", s).casefold() for s in AUTO_SUBJECTS)
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from")
_AUTO_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})


class MessageKind(StrEnum):
    """What sent a message."""

    PERSON = "person"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"


@dataclass(frozen=True, slots=True)
class Incoming:
    """The headers of an incoming message that reply detection needs.

    ``referenced`` holds the Message-IDs it answers, nearest first: In-Reply-To,
    then References from the end (the parent) backwards. ``identity`` is its
    Message-ID, or for a message without one a hash of its header block, so the
    same message always gets the same key.
    """

    message_id: str | None
    identity: str
    sender: str | None
    sender_name: str
    subject: str
    referenced: tuple[str, ...]
    kind: MessageKind
    reason: str
    failed_recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """A recipient a delivery status notification says could not be reached."""

    address: str
    status: str = ""
    diagnostic: str = ""

    @property
    def reason(self) -> str:
        """What the rep reads: the remote server's words, else the status code."""
        text = self.diagnostic
        kind, sep, rest = text.partition(";")
        if sep and kind.strip().lower() in ("smtp", "x-unix", "x-postfix", "x-local"):
            text = rest
        text = " ".join(text.split())
        return text or (f"status {self.status}" if self.status else "delivery failed")


@dataclass(frozen=True, slots=True)
class Bounce:
    """The recipients a bounce names and the Message-ID of the email it returns."""

    failed: tuple[FailedRecipient, ...]
    original_message_id: str | None


# ---------------------------------------------------------------- headers


def classify(header: bytes) -> Incoming:
    """Read the header block of an incoming message. Never raises."""
    parsed = _Headers(header)
    message_id = _first_id(_text(parsed, "message-id"))
    sender_name, sender = _address(_text(parsed, "from"))
    subject = _text(parsed, "subject")
    referenced = _referenced(_text(parsed, "in-reply-to"), _text(parsed, "references"))
    failed = _failed_header(_text(parsed, "x-failed-recipients"))
    kind, reason = _kind(parsed, sender, subject, bool(failed))
    identity = message_id or "sha256:" + hashlib.sha256(header).hexdigest()
    return Incoming(
        message_id=message_id,
        identity=identity,
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        referenced=referenced,
        kind=kind,
        reason=reason,
        failed_recipients=failed,
    )


class _Headers:
    """The top-level headers of a raw header block, read on demand."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._seen: dict[str, str | None] = {}

    def get(self, name: str) -> str | None:
        """The first header ``name``, decoded and unfolded, or None when absent."""
        if name not in self._seen:
            value = header_value(self._raw, name)
            self._seen[name] = None if value is None else " ".join(value.split())
        return self._seen[name]


def _text(parsed: _Headers, name: str) -> str:
    """The first header ``name`` ("" when absent or unreadable)."""
    return parsed.get(name) or ""


def _address(value: str) -> tuple[str, str | None]:
    name, address = parseaddr(value)
    address = address.strip().lower()
    if not _plausible(address):
        # A damaged display name (an unclosed comment, stray quotes) defeats the
        # parser; the address in angle brackets, or any word with an @, still counts.
        found = _ANGLE_ADDRESS.search(value) or _BARE_ADDRESS.search(value)
        address = found.group(1).lower() if found else ""
        name = value[: found.start()].strip(" \t\"'") if found else ""
    if not _plausible(address):
        return name.strip()[:200], None
    return name.strip()[:200], address


def _plausible(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(local and at and domain) and len(address) <= 320 and not any(
        ch.isspace() or ch in "<>()\"," for ch in address
    )


def _first_id(value: str) -> str | None:
    ids = message_ids(value, 1)
    return ids[0] if ids else None


def message_ids(value: str, limit: int = MAX_REFERENCES, last: bool = False) -> tuple[str, ...]:
    """The first (or ``last``) ``limit`` Message-IDs in a header value, in order,
    each ``<like@this>``.

    Clients that forget the angle brackets are forgiven: without any brackets,
    every word with an ``@`` counts.
    """
    found = _MSG_ID.findall(value)
    if not found:
        found = [w.strip("<>,;") for w in value.split() if "@" in w]
    ids = [f"<{i}>" for i in found if 0 < len(i) <= MAX_ID_LENGTH]
    return tuple(ids[-limit:] if last else ids[:limit])


def _referenced(in_reply_to: str, references: str) -> tuple[str, ...]:
    """In-Reply-To first, then References nearest first, without repeats."""
    # References can be absurdly long; its end (the nearest messages) matters most.
    nearest = list(reversed(message_ids(references[-64_000:], MAX_REFERENCES, last=True)))
    ordered: list[str] = []
    for mid in [*message_ids(in_reply_to, 5), *nearest]:
        if mid not in ordered:
            ordered.append(mid)
        if len(ordered) >= MAX_REFERENCES:
            break
    return tuple(ordered)


def _failed_header(value: str) -> tuple[str, ...]:
    addresses = [a.strip().lower() for _n, a in getaddresses([value]) if "@" in a]
    return tuple(dict.fromkeys(addresses))[:MAX_FAILED]


def _kind(
    parsed: _Headers, sender: str | None, subject: str, failed_header: bool
) -> tuple[MessageKind, str]:
    content_type = _text(parsed, "content-type").lower()
    report_type = _param(content_type, "report-type")
    local_part = (sender or "").rpartition("@")[0]
    if content_type.startswith("multipart/report") and report_type == "delivery-status":
        return MessageKind.BOUNCE, "delivery status notification"
    if failed_header:
        return MessageKind.BOUNCE, "X-Failed-Recipients"
    if local_part in _DAEMONS:
        return MessageKind.BOUNCE, f"from {local_part}"
    if content_type.startswith("multipart/report"):
        return MessageKind.AUTO_REPLY, reasons.WHY_REPORT.text(type=report_type or "unknown")
    return _auto_reply(parsed, subject)


def _param(content_type: str, name: str) -> str:
    match = re.search(rf"{name}\s*=\s*\"?([\w.-]+)", content_type)
    return match.group(1) if match else ""


def _auto_reply(parsed: _Headers, subject: str) -> tuple[MessageKind, str]:
    reason = _auto_header(parsed)
    if reason is None:
        phrase = auto_subject(subject)
        reason = reasons.WHY_SUBJECT.text(phrase=repr(phrase)) if phrase else None
    return (MessageKind.AUTO_REPLY, reason) if reason else (MessageKind.PERSON, "")


def _auto_header(parsed: _Headers) -> str | None:
    """Why the headers say a machine wrote the message, or None."""
    auto_submitted = _text(parsed, "auto-submitted").lower().split(";")[0].strip()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted[:40]}"
    for name in _AUTO_HEADERS:
        value = parsed.get(name)
        if value is not None and value.lower() not in ("no", "false", "0"):
            return reasons.WHY_HEADER.text(header=name)
    if _text(parsed, "x-autogenerated").lower() == "reply":
        return "X-Autogenerated: reply"
    for name in ("precedence", "x-precedence"):
        value = _text(parsed, name).lower()
        if value in _AUTO_PRECEDENCE:
            return f"Precedence: {value}"
    return_path = parsed.get("return-path")
    if return_path is not None and return_path.replace(" ", "") in ("<>", ""):
        return reasons.WHY_NULL_RETURN_PATH.text()
    return None


def auto_subject(subject: str) -> str | None:
    """The out-of-office phrase a subject starts with, or None."""
    text = unicodedata.normalize("NFC", subject).casefold()
    text = text.lstrip(" \t[(<{\"'*")
    for phrase in _AUTO_SUBJECTS_NFC:
        if text.startswith(phrase):
            rest = text[len(phrase):]
            if not rest or not rest[0].isalpha():
                return phrase
    return None


# ---------------------------------------------------------------- bounces


def parse_bounce(raw: bytes) -> Bounce:
    """The failed recipients and the returned email's Message-ID of a bounce. Never raises.

    Reads the ``message/delivery-status`` part (recipients whose Action is
    ``failed``, or with a permanent 5.x.x status), falling back to an
    ``X-Failed-Recipients`` header; the Message-ID comes from the returned
    message or headers part. ``raw`` may be cut short: whatever parses counts.
    """
    try:
        message = email.message_from_bytes(raw, policy=compat32)
    except Exception:  # compat32 is lenient; this is only a last resort
        log.exception("could not parse a bounce")
        return Bounce((), None)
    failed: list[FailedRecipient] = []
    original: str | None = None
    try:
        for part in _walk(message):
            ctype = part.get_content_type()
            if ctype == "message/delivery-status":
                failed.extend(_dsn_failures(part))
            elif original is None and ctype in ("message/rfc822", "text/rfc822-headers"):
                original = _returned_id(part)
    except Exception:  # a damaged report gives what was read before the damage
        log.info("a bounce's report is damaged; using what was read", exc_info=True)
    if not failed:
        header = message.get("x-failed-recipients")
        failed = [FailedRecipient(a) for a in _failed_header(str(header or ""))]
    unique = {f.address: f for f in reversed(failed)}  # the first report of each wins
    ordered = [unique[a] for a in dict.fromkeys(f.address for f in failed)]
    return Bounce(tuple(ordered[:MAX_FAILED]), original)


def _walk(message: Message, limit: int = 200) -> list[Message]:
    # Not Message.walk(): it descends into the delivery-status blocks and has no bound.
    found: list[Message] = []
    stack = [message]
    while stack and len(found) < limit:
        part = stack.pop(0)
        found.append(part)
        if part.get_content_type() == "message/delivery-status":
            continue
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
    return found


def _dsn_failures(part: Message) -> list[FailedRecipient]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    failures = []
    for block in blocks[1:]:  # the first block is about the whole message
        if not isinstance(block, Message):
            continue
        action = str(block.get("action", "")).strip().lower()
        status = str(block.get("status", "")).strip()[:20]
        if action != "failed" and not (not action and status.startswith("5")):
            continue
        address = _dsn_address(str(block.get("final-recipient") or ""))
        address = address or _dsn_address(str(block.get("original-recipient") or ""))
        if address:
            diagnostic = " ".join(str(block.get("diagnostic-code", "")).split())
            failures.append(FailedRecipient(address, status, diagnostic[:500]))
    return failures


def _dsn_address(value: str) -> str | None:
    """``rfc822; Bob@Example.com`` (or without the type) as ``bob@example.com``."""
    _kind_part, sep, rest = value.partition(";")
    address = (rest if sep else value).strip().strip("<>").strip().lower()
    if "@" not in address or len(address) > 320 or any(ch.isspace() for ch in address):
        return None
    return address


def _returned_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _first_id(str(payload[0].get("message-id") or ""))
    if isinstance(payload, str):
        headers = _HEADER_PARSER.parsestr(payload) if payload else Message()
        return _first_id(str(headers.get("message-id") or ""))
    return None
