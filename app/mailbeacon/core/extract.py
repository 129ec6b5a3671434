"""What the record keeps of a sent email: subject, bodies and attachments, decoded.

:func:`extract_for_log` never raises: a malformed message gives what can be
salvaged (first the byte-level part tree of :mod:`mailbeacon.core.mime`, then
Python's lenient ``email`` parser, last the raw body as text).
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32
from email.policy import default as default_policy

from mailbeacon.core.mime import (
    MimeError,
    Part,
    codec_for,
    decode_body,
    layout,
    parse_message,
    split_header,
)

log = logging.getLogger(__name__)

_MAX_NAME = 120
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "message/rfc822": ".eml",
    "text/calendar": ".ics",
    "text/plain": ".txt",
    "text/html": ".html",
}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attached or embedded file, decoded."""

    filename: str
    content_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class LoggedCopy:
    """The parts of a sent email that a contact's record keeps."""

    subject: str
    message_id: str | None
    html: str | None
    text: str | None
    attachments: tuple[Attachment, ...]


def extract_for_log(raw: bytes) -> LoggedCopy:
    """Subject, Message-ID, HTML and text bodies and attachments of ``raw``. Never raises."""
    subject = header_value(raw, "Subject") or ""
    message_id = header_value(raw, "Message-ID")
    try:
        return _from_tree(raw, subject, message_id)
    except MimeError as exc:
        log.info("logging a malformed message through the lenient parser: %s", exc)
    except Exception:  # never lose the log copy to a bug here
        log.exception("extracting the log copy failed; trying the lenient parser")
    try:
        return _from_email_package(raw, subject, message_id)
    except Exception:  # the last resort below always works
        log.exception("the lenient parser failed too; logging the raw body as text")
    _, body_start = split_header(raw, 0, len(raw))
    text = raw[body_start:].decode("utf-8", "replace")
    return LoggedCopy(subject, message_id, None, text, ())


def header_value(raw: bytes, name: str) -> str | None:
    """The first top-level header ``name``, unfolded and decoded (RFC 2047, raw UTF-8),
    or None when absent. Never raises."""
    try:
        header_end, _ = split_header(raw, 0, len(raw))
        pattern = re.compile(
            rb"^" + re.escape(name.encode("ascii")) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)",
            re.IGNORECASE | re.MULTILINE,
        )
        m = pattern.search(raw, 0, header_end)
        if m is None:
            return None
        value = re.sub(rb"\r?\n(?=[ \t])", b"", m.group(1)).rstrip(b"\r")
        return decode_header_text(_bytes_to_text(value))
    except Exception:  # a header we cannot read is a header we do not have
        log.exception("could not read header %s", name)
        return None


def decode_header_text(value: str) -> str:
    """A header value with RFC 2047 encoded words decoded, stripped, control characters gone."""
    try:
        decoded = str(default_policy.header_factory("x-mailbeacon-unstructured", value))
    except Exception:  # keep the undecoded text
        decoded = value
    decoded = decoded.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return _CONTROL.sub("", decoded).strip()


def _bytes_to_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", "replace")


def _from_tree(raw: bytes, subject: str, message_id: str | None) -> LoggedCopy:
    parts = layout(parse_message(raw))
    html = _join(_text_of(raw, p) for p in parts.html)
    text = _join(_text_of(raw, p) for p in parts.text)
    attachments = tuple(_attachment(raw, p, n) for n, p in enumerate(parts.others, 1))
    return LoggedCopy(subject, message_id, html, text, attachments)


def _join(texts: Iterable[str]) -> str | None:
    found = list(texts)
    return "\n".join(found) if found else None


def _text_of(raw: bytes, part: Part) -> str:
    data = decode_body(raw, part, strict=False)
    try:
        codec = codec_for(part)
    except MimeError:
        codec = "utf-8"
    return _decode_text(data, codec)


def _decode_text(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec, "replace")
    except (LookupError, UnicodeError):
        return data.decode("utf-8", "replace")


def _attachment(raw: bytes, part: Part, number: int) -> Attachment:
    data = decode_body(raw, part, strict=False)
    name = part.filename
    if part.content_type == "message/rfc822" and not name:
        inner_subject = header_value(data, "Subject")
        name = f"{inner_subject}.eml" if inner_subject else None
    filename = _safe_filename(name, part.content_type, number)
    return Attachment(filename, part.content_type, data, hashlib.sha256(data).hexdigest())


def _safe_filename(name: str | None, content_type: str, number: int) -> str:
    """A file name to show and store: decoded, without path or control characters."""
    if name:
        decoded = decode_header_text(name)
        decoded = decoded.replace("\\", "/").rsplit("/", 1)[-1]
        decoded = _UNSAFE_NAME.sub("_", decoded).strip(" .")
        if decoded:
            return decoded[:_MAX_NAME]
    return f"attachment-{number}{_EXTENSIONS.get(content_type, '.bin')}"


def _from_email_package(raw: bytes, subject: str, message_id: str | None) -> LoggedCopy:
    msg = email.message_from_bytes(raw, policy=compat32)
    html: list[str] = []
    text: list[str] = []
    attachments: list[Attachment] = []
    for number, part in enumerate(msg.walk(), 1):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        payload = _payload(part)
        named = part.get_filename() is not None or part.get_content_disposition() == "attachment"
        if ctype.startswith("multipart/"):  # a multipart it could not split: keep it as text
            ctype = "text/plain"
        if not named and ctype in ("text/html", "text/plain"):
            body = _decode_text(payload, part.get_content_charset() or "us-ascii")
            (html if ctype == "text/html" else text).append(body)
            continue
        filename = _safe_filename(part.get_filename(), ctype, number)
        sha = hashlib.sha256(payload).hexdigest()
        attachments.append(Attachment(filename, ctype, payload, sha))
    return LoggedCopy(
        subject,
        message_id,
        "\n".join(html) if html else None,
        "\n".join(text) if text else None,
        tuple(attachments),
    )


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, Message):
        return payload.as_bytes()
    return b""
