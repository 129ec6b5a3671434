"""MIME at the byte level: charsets and transfer encodings survive a rewrite, and every
part, header block, preamble and epilogue that is not a changed body stays byte-identical."""

from __future__ import annotations

import base64
import binascii
import email
import re
from email import policy
from email.message import EmailMessage, Message

import pytest

from mailbeacon.core import mime
from mailbeacon.core.html_links import pixel_block
from mailbeacon.core.rewrite import (
    REASON_SEALED,
    REASON_UNDECODABLE,
    REASON_UNPARSABLE,
    Plan,
    RewriteResult,
    rewrite_message,
)
from tests.helpers.rewrite import PlainMinter, RecordingMinter

POLISH = "Zażółć gęślą jaźń, ZAŻÓŁĆ GĘŚLĄ JAŹŃ"
PIXEL_ONLY = Plan(track=True, clicks=False, per_recipient=False)
TRACK = Plan(track=True, clicks=True, per_recipient=False)
PIXEL_BLOCK = pixel_block("https://t.example.com/o/PIXEL-None.gif", None)


def rewrite(raw: bytes, plan: Plan = PIXEL_ONLY, rcpts: tuple[str, ...] = ()) -> RewriteResult:
    return rewrite_message(raw, rcpts, plan, PlainMinter())


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def html_of(data: bytes) -> list[str]:
    """The HTML bodies, not looking into attachments or attached messages."""
    out: list[str] = []
    stack = [parse(data)]
    while stack:
        part = stack.pop()
        if part.is_attachment() or part.get_content_type() == "message/rfc822":
            continue
        if part.is_multipart():
            stack.extend(reversed([p for p in part.iter_parts() if isinstance(p, EmailMessage)]))
        elif part.get_content_type() == "text/html":
            out.append(part.get_content())
    return out


def encode(body: bytes, cte: str, eol: bytes = b"\r\n") -> bytes:
    if cte == "quoted-printable":
        return mime.encode_qp(body, eol)
    if cte == "base64":
        return mime.encode_base64(body, eol, final_break=True)
    return body


def html_message(html: str, charset: str, cte: str, eol: bytes = b"\r\n") -> bytes:
    head = (
        "From: Jan <jan@example.com>\nTo: Ann <ann@example.org>\nSubject: Hi\n"
        f"MIME-Version: 1.0\nContent-Type: text/html; charset={charset}\n"
        f"Content-Transfer-Encoding: {cte}\n\n"
    ).replace("\n", eol.decode())
    return head.encode() + encode(html.replace("\n", eol.decode()).encode(charset), cte, eol)


# ------------------------------------------------------------------ charsets and encodings


@pytest.mark.parametrize(
    ("charset", "cte"),
    [
        ("utf-8", "quoted-printable"),
        ("iso-8859-2", "base64"),
        ("windows-1250", "8bit"),
        ("utf-8", "base64"),
        ("utf-8", "8bit"),
        ("iso-8859-2", "quoted-printable"),
        ("windows-1250", "quoted-printable"),
    ],
)
def test_polish_text_survives_in_its_own_charset_and_encoding(charset: str, cte: str) -> None:
    html = f"<html><body><h1>{POLISH}</h1>\n<p>{POLISH * 5}</p>\n</body></html>\n"
    raw = html_message(html, charset, cte)
    out = rewrite(raw).copies[0].data
    msg = parse(out)
    assert msg.get_content_charset() == charset
    assert msg["Content-Transfer-Encoding"] == cte
    assert msg.get_content() == html.replace("\n", "\r\n").replace(
        "<body>", "<body>" + PIXEL_BLOCK
    )
    header_end = raw.index(b"\r\n\r\n")
    assert out[:header_end] == raw[:header_end]


def test_quoted_printable_lines_stay_within_76_characters() -> None:
    html = "<p>" + ("Zażółć=gęślą jaźń " * 40) + "</p>" + "x" * 300
    out = rewrite(html_message(html, "utf-8", "quoted-printable"), TRACK).copies[0].data
    body = out.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert binascii.a2b_qp(body).decode().endswith("</p>" + "x" * 300)


def test_base64_lines_are_76_characters() -> None:
    html = "<p>" + POLISH * 50 + "</p>"
    out = rewrite(html_message(html, "utf-8", "base64")).copies[0].data
    lines = out.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n").split(b"\r\n")
    assert {len(line) for line in lines[:-1]} == {76}
    assert 0 < len(lines[-1]) <= 76
    assert base64.b64decode(b"".join(lines)).decode() == PIXEL_BLOCK + html


def test_us_ascii_7bit_stays_7bit_ascii() -> None:
    raw = html_message('<p>Hi <a href="https://e.example/a">there</a></p>\n', "us-ascii", "7bit")
    out = rewrite(raw, TRACK).copies[0].data
    assert out.isascii()
    msg = parse(out)
    assert (msg["Content-Transfer-Encoding"], msg.get_content_charset()) == ("7bit", "us-ascii")


def test_eight_bit_bytes_in_a_us_ascii_part_come_back_unchanged() -> None:
    raw = html_message("<p>caf\u00e9</p>", "latin-1", "8bit").replace(b"latin-1", b"us-ascii")
    out = rewrite(raw).copies[0].data
    assert out == raw.replace(b"<p>", PIXEL_BLOCK.encode() + b"<p>")


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_line_endings_are_kept_as_given(eol: bytes, cte: str) -> None:
    raw = html_message("<p>Line one</p>\n<p>" + POLISH * 4 + "</p>\n", "utf-8", cte, eol)
    out = rewrite(raw).copies[0].data
    if eol == b"\n":
        assert b"\r" not in out
    else:
        assert b"\n" not in out.replace(b"\r\n", b"")


LINKS = "".join(f'<a href="https://e.example/{i}">link {i}</a> ' for i in range(15))


def test_a_line_pushed_past_998_octets_switches_that_part_to_quoted_printable() -> None:
    raw = html_message(f"<p>{LINKS}</p>\n", "utf-8", "8bit")
    assert mime.longest_line(raw) < 998
    out = rewrite_message(raw, (), TRACK, RecordingMinter()).copies[0].data
    assert mime.longest_line(out) <= 76
    msg = parse(out)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().count("https://t.example.com/c/") == 16
    assert out.count(b"Content-Transfer-Encoding") == 1


def test_an_8bit_part_without_cte_header_gets_one_when_it_must_change() -> None:
    raw = html_message(f"<p>{LINKS}</p>", "utf-8", "8bit").replace(
        b"Content-Transfer-Encoding: 8bit\r\n", b""
    )
    out = rewrite_message(raw, (), TRACK, RecordingMinter()).copies[0].data
    assert parse(out)["Content-Transfer-Encoding"] == "quoted-printable"
    assert out.startswith(raw[: raw.index(b"\r\n\r\n")])


# ------------------------------------------------------------------ structure left untouched

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF"


def mixed_message(eol: bytes = b"\r\n") -> bytes:
    from tests.helpers.rewrite import stale_click_url, stale_pixel_url

    inner = (
        "From: Bob <bob@example.net>\nSubject: inner\nContent-Type: text/html\n\n"
        f'<p><a href="{stale_click_url("https://x.example/deal")}">deal</a>'
        f'<a href="https://x.example/more">more</a><img src="{stale_pixel_url()}"></p>\n'
    )
    text = (
        "Preamble for MIME-unaware readers.\n"
        '--outer\nContent-Type: multipart/alternative; boundary="alt"\n\n'
        "--alt\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"{POLISH}\n"
        '--alt\nContent-Type: multipart/related; boundary="rel"; type="text/html"\n\n'
        "--rel\nContent-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"
        "{HTML}\n"
        "--rel\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Disposition: inline\n"
        "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
        "--rel--\n"
        "--alt--\n\n"
        "--outer\nContent-Type: application/pdf; name=offer.pdf\n"
        'Content-Disposition: attachment; filename="offer.pdf"\n'
        "Content-Transfer-Encoding: base64\n\n"
        "{PDF}"
        "--outer\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
        f"{inner}\n"
        "--outer\nContent-Type: text/html; name=page.html\nContent-Disposition: attachment; "
        'filename="page.html"\n\n<html><body><a href="https://x.example/file">f</a></body></html>\n'
        "--outer--\nEpilogue text.\n"
    )
    html = (
        '<html><body><p>Hi <a href="https://e.example/offer">the offer</a></p>'
        '<img src="cid:logo@x"></body></html>'
    )
    head = (
        "From: Jan <jan@example.com>\nTo: Ann <ann@example.org>\nSubject: Offer\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="outer"\n\n'
    )
    raw = (head + text).replace("\n", eol.decode()).encode()
    raw = raw.replace(b"{HTML}", mime.encode_qp(html.encode(), eol))
    return raw.replace(b"{PDF}", mime.encode_base64(PDF, eol, final_break=True))


def leaves(data: bytes) -> list[bytes]:
    """Every leaf part of the message, header block and body, as raw bytes."""
    root = mime.parse_message(data)
    return [data[p.start : p.end] for p in mime.walk(root) if not p.children]


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_attachments_attached_messages_inline_images_and_headers_are_byte_identical(
    eol: bytes,
) -> None:
    raw = mixed_message(eol)
    result = rewrite(raw, TRACK)
    out = result.copies[0].data
    assert result.tracked
    assert result.stale_removed == 0  # the attached message's old tracking is not ours to touch
    assert [link.target for link in result.links] == ["https://e.example/offer"]
    before, after = leaves(raw), leaves(out)
    assert len(before) == len(after) == 6
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [1]  # the text/html body, nothing else
    head = before[1].split(eol + eol, 1)[0]
    assert after[1].startswith(head + eol + eol)
    # Preamble, epilogue, delimiters: the output is the input with one body replaced.
    start = out.index(head)
    end_in = raw.index(eol + b"--rel" + eol, raw.index(b'cid:logo@x"'))
    end_out = out.index(eol + b"--rel" + eol, out.index(b'cid:logo@x"'))
    assert out[:start] == raw[:start]
    assert out[end_out:] == raw[end_in:]


def test_the_log_view_of_attachments_matches_after_the_rewrite() -> None:
    raw = mixed_message()
    out = rewrite(raw, TRACK).copies[0].data
    msg = parse(out)
    pdf = next(p for p in msg.walk() if p.get_content_type() == "application/pdf")
    assert isinstance(pdf, EmailMessage)
    assert pdf.get_content() == PDF
    attached = next(p for p in msg.walk() if p.get_content_type() == "message/rfc822")
    assert attached.as_bytes().count(b"https://x.example/more") == 1
    assert html_of(out) == [
        "<html><body>"
        + pixel_block(
            "https://t.example.com/o/PIXEL-None.gif",
            "https://t.example.com/c/LINK-None-65535?q=1&r=2",
        )
        + '<p>Hi <a href="https://t.example.com/c/LINK-None-0?q=1&amp;r=2">the offer'
        '</a></p><img src="cid:logo@x"></body></html>'
    ]


def test_parts_are_found_as_offsets_without_copying() -> None:
    raw = mixed_message()
    root = mime.parse_message(raw)
    assert root.content_type == "multipart/mixed"
    types = [p.content_type for p in mime.walk(root)]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
        "message/rfc822",
        "text/html",
    ]
    layout = mime.layout(root)
    assert [p.content_type for p in layout.html] == ["text/html"]
    assert [p.content_type for p in layout.text] == ["text/plain"]
    assert [p.content_type for p in layout.others] == [
        "image/png",
        "application/pdf",
        "message/rfc822",
        "text/html",
    ]


# ------------------------------------------------------------------ bad input


def nested(depth: int) -> bytes:
    head = b"From: a@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    body = b'Content-Type: text/html\r\n\r\n<p><a href="https://e.example/">x</a></p>\r\n'
    for level in range(depth):
        b = f"b{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + body
            + b"--"
            + b
            + b"--\r\n"
        )
    return head + body


def test_absurd_nesting_is_sent_unmodified() -> None:
    assert rewrite(nested(mime.MAX_DEPTH)).tracked
    result = rewrite(nested(mime.MAX_DEPTH + 1))
    assert (result.tracked, result.untracked_reason) == (False, REASON_UNPARSABLE)
    assert result.copies[0].data == nested(mime.MAX_DEPTH + 1)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b"Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n"
            b"<p>x</p>\r\n--x--",
            REASON_UNPARSABLE,
        ),
        (
            b'Content-Type: multipart/mixed; boundary="y"\r\n\r\n--x\r\n\r\n<p>x</p>\r\n--x--',
            REASON_UNPARSABLE,
        ),
        (
            b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+!!eDwv\r\n",
            REASON_UNDECODABLE,
        ),
        (
            b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+eDwvYj4\r\n",
            REASON_UNDECODABLE,
        ),
        (
            b"Content-Type: text/html; charset=x-martian\r\n\r\n<p>x</p>",
            REASON_UNDECODABLE,
        ),
        (b"Content-Type: text/html\r\n", REASON_UNDECODABLE),
        (
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/html\r\n--b--\r\n",
            REASON_UNDECODABLE,
        ),
        (
            b"Content-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n<p>x</p>",
            REASON_UNDECODABLE,
        ),
        (
            b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
            b'boundary="s"\r\n\r\n--s\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--s\r\n'
            b"Content-Type: application/pkcs7-signature\r\n\r\nMIAG\r\n--s--\r\n",
            REASON_SEALED,
        ),
        (
            b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIAG\r\n",
            REASON_SEALED,
        ),
        (
            b"Content-Type: text/html\r\n\r\n<pre>-----BEGIN PGP SIGNED MESSAGE-----\r\n</pre>",
            REASON_SEALED,
        ),
    ],
)
def test_messages_that_cannot_be_rewritten_safely_go_out_unmodified(
    raw: bytes, reason: str
) -> None:
    result = rewrite(raw, TRACK, ("ann@example.org",))
    assert (result.tracked, result.untracked_reason) == (False, reason)
    assert result.copies[0].data is raw
    assert result.copies[0].recipients == ("ann@example.org",)


def test_a_truncated_message_without_closing_delimiter_is_still_tracked() -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/html\r\n\r\n<p>Hi</p><p>cut of"
    )
    out = rewrite(raw).copies[0].data
    assert out == raw.replace(b"<p>Hi", PIXEL_BLOCK.encode() + b"<p>Hi")


def test_broken_base64_in_an_attachment_does_not_stop_tracking() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/html\r\n\r\n<p>Hi</p>\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!not base64\r\n"
        b"--b--\r\n"
    )
    result = rewrite(raw)
    assert result.tracked
    assert result.copies[0].data == raw.replace(b"<p>Hi</p>", PIXEL_BLOCK.encode() + b"<p>Hi</p>")


def test_eight_bit_header_bytes_are_kept_as_they_are() -> None:
    raw = (
        "Subject: Cena 100 zł\r\nFrom: Żółć <z@example.com>\r\n"
        "Content-Type: text/html\r\n\r\n<p>x</p>"
    ).encode()
    raw = raw.replace("Żółć".encode(), "Żółć".encode("iso-8859-2"))
    out = rewrite(raw).copies[0].data
    assert out == raw.replace(b"<p>x</p>", PIXEL_BLOCK.encode() + b"<p>x</p>")


def test_delimiter_lines_need_the_boundary_at_a_line_start() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\nx--b\r\n--bb\r\n--b  \r\nA\r\n--b--'
    root = mime.parse_message(raw)
    assert [raw[c.start : c.end] for c in root.children] == [b"A"]


def test_header_parsing_helpers() -> None:
    raw = (
        b'Content-Type: text/html;\r\n charset="ISO-8859-2"\r\n'
        b"Content-Transfer-Encoding:  Base64 \r\n\r\nx"
    )
    part = mime.parse_message(raw)
    assert (part.content_type, part.charset, part.cte) == ("text/html", "iso-8859-2", "base64")
    assert mime.codec_for(part) == "iso8859-2"
    message: Message = part.header
    assert message.get_content_maintype() == "text"
    assert mime.set_cte(raw, part, "quoted-printable") == (
        raw.index(b"Content-Transfer"),
        raw.index(b"\r\n\r\n"),
        b"Content-Transfer-Encoding: quoted-printable",
    )
    assert re.fullmatch(
        rb"[A-Za-z0-9+/=\r\n]*", mime.encode_base64(b"\xff" * 100, b"\r\n", final_break=False)
    )


def test_the_root_of_multipart_related_is_the_start_part_when_named() -> None:
    raw = (
        b'Content-Type: multipart/related; boundary="r"; start="<root@x>"\r\n\r\n'
        b"--r\r\nContent-Type: text/html\r\nContent-ID: <fragment@x>\r\n\r\n<p>fragment</p>\r\n"
        b"--r\r\nContent-Type: text/html\r\nContent-ID: <root@x>\r\n\r\n<p>root</p>\r\n"
        b"--r--\r\n"
    )
    layout = mime.layout(mime.parse_message(raw))
    assert [raw[p.body_start : p.end] for p in layout.html] == [b"<p>root</p>"]
    out = rewrite(raw).copies[0].data
    assert out == raw.replace(b"<p>root</p>", PIXEL_BLOCK.encode() + b"<p>root</p>")
