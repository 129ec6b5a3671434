"""Building a composed email: structure, headers, Bcc only in the envelope, addresses."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest

from mailbeacon.agent.sending.compose_message import (
    Draft,
    DraftError,
    OutgoingAttachment,
    build_message,
    envelope_recipients,
    format_address,
    guess_content_type,
    parse_address,
    split_addresses,
    split_last,
)

NOW = datetime(2030, 1, 31, 17, 0, tzinfo=UTC)
PDF = bytes(range(256)) * 40 + b"\r\n\x00end"


def draft(**overrides: object) -> Draft:
    values: dict[str, object] = {
        "sender": "Rep <rep@example.net>",
        "to": ('"Nowak, Alicja" <alicja@client.example>',),
        "cc": ("ewa@client.example",),
        "bcc": ("boss@example.net",),
        "subject": "Proposal <b>html</b> — zażółć",
        "html": '<p>Hello <b>Alicja</b>, see <a href="https://example.com/offer">the offer</a></p>',
        "text": "Hello Alicja, see the offer (https://example.com/offer)",
    }
    values.update(overrides)
    return Draft(**values)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def test_text_and_html_alternatives_with_the_headers_a_mail_client_writes() -> None:
    raw = build_message(draft(), NOW, message_id="<fixed@example.net>")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == "<fixed@example.net>"
    assert msg["Date"] == "Thu, 31 Jan 2030 17:00:00 +0000"
    assert msg["From"] == "Rep <rep@example.net>"
    assert msg["To"] == '"Nowak, Alicja" <alicja@client.example>'
    assert msg["Cc"] == "ewa@client.example"
    assert msg["Subject"] == "Proposal <b>html</b> — zażółć"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "https://example.com/offer" in plain.get_content()
    assert '<a href="https://example.com/offer">' in html.get_content()


def test_bcc_is_in_the_envelope_and_never_in_a_header() -> None:
    d = draft()
    raw = build_message(d, NOW)
    assert b"boss@example.net" not in raw
    assert parse(raw)["Bcc"] is None
    assert envelope_recipients(d) == (
        "alicja@client.example", "ewa@client.example", "boss@example.net"
    )


def test_an_address_given_twice_is_one_envelope_recipient() -> None:
    d = draft(cc=("ALICJA@client.example",), bcc=())
    assert envelope_recipients(d) == ("alicja@client.example",)


def test_attachments_make_it_mixed_and_arrive_byte_identical() -> None:
    attachment = OutgoingAttachment("Angebot ü.pdf", "application/pdf", PDF)
    msg = parse(build_message(draft(attachments=(attachment,)), NOW))
    assert msg.get_content_type() == "multipart/mixed"
    first = next(msg.iter_parts())
    assert first.get_content_type() == "multipart/alternative"
    found = list(msg.iter_attachments())
    assert len(found) == 1
    assert found[0].get_filename() == "Angebot ü.pdf"
    assert found[0].get_content_type() == "application/pdf"
    assert found[0].get_content() == PDF


def test_a_message_id_is_made_from_the_senders_domain() -> None:
    msg = parse(build_message(draft(), NOW))
    assert str(msg["Message-ID"]).endswith("@example.net>")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"to": (), "cc": (), "bcc": ()}, "recipient"),
        ({"to": ("not an address",)}, "not an email address"),
        ({"sender": ""}, "From"),
        ({"cc": ("a@b",)}, "not an email address"),
    ],
)
def test_a_draft_that_cannot_be_sent_says_why(change: dict[str, object], problem: str) -> None:
    with pytest.raises(DraftError, match=problem):
        build_message(draft(**change), NOW)


def test_address_fields_split_on_commas_and_semicolons_outside_quotes() -> None:
    text = '"Nowak, Alicja" <alicja@client.example>; jan@client.example,  , Ewa <e@x.example>'
    assert split_addresses(text) == [
        '"Nowak, Alicja" <alicja@client.example>',
        "jan@client.example",
        "Ewa <e@x.example>",
    ]
    assert parse_address('"Nowak, Alicja" <alicja@client.example>') == (
        "Nowak, Alicja", "alicja@client.example"
    )


def test_the_address_being_typed_is_the_last_one() -> None:
    assert split_last("") == ("", "")
    assert split_last("ali") == ("", "ali")
    assert split_last("a@b.example, jan") == ("a@b.example, ", "jan")
    assert split_last('"Nowak, Al') == ("", '"Nowak, Al')
    head, last = split_last("a@b.example;x")
    assert head + "x@y.example" == "a@b.example; x@y.example" and last == "x"


def test_names_are_quoted_when_they_need_it() -> None:
    assert format_address("Nowak, Alicja", "a@b.example") == '"Nowak, Alicja" <a@b.example>'
    assert format_address("", "a@b.example") == "a@b.example"


def test_content_types_from_file_names() -> None:
    assert guess_content_type("offer.pdf") == "application/pdf"
    assert guess_content_type("notes") == "application/octet-stream"
    assert guess_content_type("backup.tar.gz") == "application/octet-stream"
