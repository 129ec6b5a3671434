"""The log copy of a sent email: decoded subject, bodies and attachments, from any input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core.extract import extract_for_log, header_value
from tests.helpers import paths

CORPUS = paths.MAIL_CORPUS
PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"


def mail_with_attachments() -> bytes:
    pdf_b64 = base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    return (
        b"From: Jan <jan@example.com>\r\n"
        b"Subject: =?UTF-8?Q?Za=C5=BC=C3=B3=C5=82=C4=87?=\r\n"
        b" =?UTF-8?B?IGfEmcWbbMSFIGphxbrFhA==?=\r\n"
        b"Message-ID:\r\n <abc.123@example.com>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b'--m\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/html; charset=iso-8859-2\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b'<p>Za=BF=F3=B3=E6</p><img src=3D"cid:logo">\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
        b"--r--\r\n"
        b"--m\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment;\r\n"
        b" filename*=UTF-8''oferta%20za%C5%BC%C3%B3%C5%82%C4%87.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + pdf_b64 + b"--m\r\n"
        b'Content-Type: application/octet-stream; name="=?UTF-8?B?Y2VubmlrLnhsc3g=?="\r\n'
        b"Content-Disposition: attachment\r\n\r\nraw-bytes\r\n"
        b"--m\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: Inner one\r\n\r\nHello from inside\r\n"
        b'--m\r\nContent-Type: text/plain; name="..\\\\..\\\\evil\x01.txt"\r\n'
        b"Content-Disposition: attachment\r\n\r\nx\r\n"
        b"--m--\r\n"
    )


def test_subject_and_message_id_are_decoded() -> None:
    copy = extract_for_log(mail_with_attachments())
    assert copy.subject == "Zażółć gęślą jaźń"
    assert copy.message_id == "<abc.123@example.com>"


def test_bodies_are_decoded_from_their_charset_and_transfer_encoding() -> None:
    copy = extract_for_log(mail_with_attachments())
    assert copy.html == '<p>Zażółć</p><img src="cid:logo">'
    assert copy.text is None


def test_attachments_inline_images_and_attached_messages_are_kept_decoded() -> None:
    copy = extract_for_log(mail_with_attachments())
    assert [(a.filename, a.content_type) for a in copy.attachments] == [
        ("attachment-1.png", "image/png"),
        ("oferta zażółć.pdf", "application/pdf"),
        ("cennik.xlsx", "application/octet-stream"),
        ("Inner one.eml", "message/rfc822"),
        ("evil.txt", "text/plain"),
    ]
    pdf = copy.attachments[1]
    assert pdf.data == PDF
    assert pdf.sha256 == hashlib.sha256(PDF).hexdigest()
    assert copy.attachments[0].data == b"\x89PNG\r\n\x1a\n"
    assert copy.attachments[3].data == b"Subject: Inner one\r\n\r\nHello from inside"


@pytest.mark.parametrize(
    ("name", "subject", "html_has", "text_has", "files"),
    [
        (
            "thunderbird-alternative.eml",
            "Oferta \u2013 zażółć gęślą jaźń",
            "naszą ofertę",
            "Dzień",
            [],
        ),
        (
            "outlook-related-cp1250.eml",
            "Raport \u2013 zażółć",
            "przesyłam",
            "Pozdrawiam",
            ["image001.png"],
        ),
        (
            "gmail-mixed-attachment.eml",
            "Proposal",
            "proposal",
            "signed PDF",
            ["proposal-signed.pdf"],
        ),
        ("apple-mail-mixed-inline.eml", "The deck", "my calendar", "Book a call", ["deck.pdf"]),
        ("html-only-iso-8859-2-base64-lf.eml", "Zażółć gęślą jaźń", "Szczegóły", None, []),
        (
            "forward-attached-message.eml",
            "Fwd: The deal",
            "my notes",
            None,
            ["The deal.eml", "page.html"],
        ),
        ("malformed-8bit-headers.eml", "Cena: 100 zł \u2013 gęś", "Hello", None, []),
        ("malformed-broken-base64-html.eml", "broken base64", "Hello", None, []),
        ("malformed-missing-boundary-param.eml", "no boundary", None, "Hello", []),
        ("malformed-unknown-charset.eml", "unknown charset", "Hello", None, []),
        ("malformed-truncated.eml", "cut off", "connection dro", "Hello there", []),
        ("malformed-garbage.eml", "", None, None, []),
    ],
)
def test_corpus_log_copies(
    name: str, subject: str, html_has: str | None, text_has: str | None, files: list[str]
) -> None:
    copy = extract_for_log((CORPUS / name).read_bytes())
    assert copy.subject == subject
    assert (html_has is None) == (copy.html is None) or html_has in (copy.html or "")
    if html_has is not None:
        assert copy.html is not None and html_has in copy.html
    if text_has is not None:
        assert copy.text is not None and text_has in copy.text
    assert [a.filename for a in copy.attachments] == files


@pytest.mark.parametrize(
    ("raw", "name", "value"),
    [
        (b"Subject: plain\r\n\r\nbody", "subject", "plain"),
        (b"SUBJECT:  folded\r\n  over\r\n\tlines\r\n\r\n", "Subject", "folded  over\tlines"),
        (b"Subject: =?iso-8859-2?q?Za=BF=F3=B3=E6?= tail\r\n\r\n", "Subject", "Zażółć tail"),
        ("Subject: raw ütf-8\r\n\r\n".encode(), "Subject", "raw ütf-8"),
        (b"Subject: caf\xe9\r\n\r\n", "Subject", "café"),
        (b"Subject: <b>bold</b>\x07\r\n\r\n", "Subject", "<b>bold</b>"),
        (b"Subject: first\r\nSubject: second\r\n\r\n", "Subject", "first"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\n", "Message-ID", None),
        (b"X-Subject: no\r\n\r\n", "Subject", None),
        (b"", "Subject", None),
        (b"Subject: =?x-unknown?q?abc?=\r\n\r\n", "Subject", "abc"),
    ],
)
def test_header_value(raw: bytes, name: str, value: str | None) -> None:
    assert header_value(raw, name) == value


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.lists(
            st.sampled_from(
                [
                    b"Subject: =?utf-8?b?",
                    b"Content-Type: multipart/mixed; boundary=b\r\n",
                    b"Content-Type: text/html; charset=klingon\r\n",
                    b"Content-Transfer-Encoding: base64\r\n",
                    b"Content-Disposition: attachment; filename*=bogus''%ZZ\r\n",
                    b"\r\n",
                    b"--b\r\n",
                    b"--b--\r\n",
                    b"PGI+=!",
                    b"\x80\xff",
                ]
            ),
            max_size=40,
        ).map(b"".join),
    )
)
def test_extract_never_raises(raw: bytes) -> None:
    copy = extract_for_log(raw)
    assert isinstance(copy.subject, str)
    for attachment in copy.attachments:
        assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
        assert attachment.filename and "/" not in attachment.filename
