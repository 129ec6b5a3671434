"""Classifying incoming mail: a person's reply, an automatic reply, a bounce."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.inbound import (
    MessageKind,
    auto_subject,
    classify,
    message_ids,
    parse_bounce,
)
from tests.helpers.replies import bounce, out_of_office, reply

OURS = "<m1@rep.example.net>"


def header(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def test_a_persons_reply_names_its_sender_and_the_message_it_answers() -> None:
    incoming = classify(reply(OURS, message_id="<r1@example.com>"))
    assert incoming.kind is MessageKind.PERSON
    assert incoming.sender == "alicja@example.com"
    assert incoming.sender_name == "Alicja Nowak"
    assert incoming.subject == "Re: Oferta Q4"
    assert incoming.message_id == "<r1@example.com>"
    assert incoming.identity == "<r1@example.com>"
    assert incoming.referenced == (OURS,)


def test_references_are_searched_nearest_first_after_in_reply_to() -> None:
    incoming = classify(
        header(
            "From: bob@example.com",
            "In-Reply-To: <c@x>",
            "References: <a@x> <b@x>\r\n <c@x>",
        )
    )
    assert incoming.referenced == ("<c@x>", "<b@x>", "<a@x>")


def test_ids_without_angle_brackets_are_forgiven() -> None:
    assert message_ids("m1@rep.example.net") == ("<m1@rep.example.net>",)
    assert message_ids("<a@x>, <b@x>") == ("<a@x>", "<b@x>")


def test_an_absurd_references_header_is_bounded_and_keeps_the_nearest() -> None:
    refs = " ".join(f"<id{n}@x>" for n in range(20_000))
    incoming = classify(header("From: a@b.c", f"References: {refs}"))
    assert len(incoming.referenced) == 100
    assert incoming.referenced[0] == "<id19999@x>"


def test_a_message_without_message_id_gets_a_stable_identity() -> None:
    raw = header("From: a@b.c", "Subject: hi", "In-Reply-To: <m@x>")
    first, second = classify(raw), classify(raw)
    assert first.message_id is None
    assert first.identity.startswith("sha256:")
    assert first.identity == second.identity


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (("Auto-Submitted: auto-replied",), "Auto-Submitted"),
        (("Auto-Submitted: auto-generated; owner-email=x@y",), "Auto-Submitted"),
        (("X-Autoreply: yes",), "x-autoreply"),
        (("X-Autorespond: Out of office",), "x-autorespond"),
        (("Precedence: auto_reply",), "Precedence"),
        (("Precedence: bulk",), "Precedence"),
        (("Precedence: junk",), "Precedence"),
        (("Return-Path: <>",), "Return-Path"),
    ],
)
def test_automatic_replies_are_known_by_their_headers(lines: tuple[str, ...], why: str) -> None:
    incoming = classify(header("From: alicja@example.com", "Subject: Re: Oferta", *lines))
    assert incoming.kind is MessageKind.AUTO_REPLY
    assert why.lower() in incoming.reason.lower()


def test_auto_submitted_no_is_a_person() -> None:
    incoming = classify(header("From: a@example.com", "Auto-Submitted: no", "Subject: Re: x"))
    assert incoming.kind is MessageKind.PERSON


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Oferta Q4",
        "Automatic reply: Oferta Q4",
        "Autoreply: Oferta Q4",
        "Auto-Reply: Oferta Q4",
        "[Auto-Reply] Oferta Q4",
        "Abwesenheitsnotiz: Oferta Q4",
        "Automatische Antwort: Oferta Q4",
        "Odpowiedź automatyczna: Oferta Q4",
        "Réponse automatique : Oferta Q4",
        "Respuesta automática: Oferta Q4",
        "Risposta automatica: Oferta Q4",
        "Automatisch antwoord: Oferta Q4",
        "Автоответ: Oferta Q4",
        "自動応答: Oferta Q4",
        "=?utf-8?q?Odpowied=C5=BA_automatyczna=3A_Oferta?=",
    ],
)
def test_out_of_office_subjects_in_many_languages(subject: str) -> None:
    incoming = classify(header("From: a@example.com", f"Subject: {subject}"))
    assert incoming.kind is MessageKind.AUTO_REPLY, subject


@pytest.mark.parametrize(
    "subject",
    ["Re: Oferta Q4", "Re: Out of office plans? see below", "Absences list", "Autoreply"[:4]],
)
def test_ordinary_subjects_are_people(subject: str) -> None:
    assert classify(header("From: a@example.com", f"Subject: {subject}")).kind is (
        MessageKind.PERSON
    )


def test_a_word_that_merely_starts_like_a_phrase_is_not_a_match() -> None:
    assert auto_subject("Afwezigheid van het team") is None
    assert auto_subject("Afwezig: tot maandag") == "afwezig"


def test_out_of_office_builder_is_an_auto_reply() -> None:
    assert classify(out_of_office(OURS)).kind is MessageKind.AUTO_REPLY
    plain_headers = out_of_office(OURS, headers=(), subject="Abwesenheitsnotiz: Oferta")
    assert classify(plain_headers).kind is MessageKind.AUTO_REPLY


def test_a_delivery_status_report_is_a_bounce_not_an_auto_reply() -> None:
    incoming = classify(bounce("bob@example.com", OURS))
    assert incoming.kind is MessageKind.BOUNCE


def test_mail_from_mailer_daemon_or_postmaster_is_a_bounce() -> None:
    for sender in ("MAILER-DAEMON@mx.example.com", "postmaster@example.org"):
        assert classify(header(f"From: {sender}", "Subject: failure")).kind is (
            MessageKind.BOUNCE
        )


def test_x_failed_recipients_names_the_failed_addresses() -> None:
    incoming = classify(
        header("From: mail@relay.example", "X-Failed-Recipients: Bob@Example.com, c@d.e")
    )
    assert incoming.kind is MessageKind.BOUNCE
    assert incoming.failed_recipients == ("bob@example.com", "c@d.e")


def test_a_read_receipt_report_is_automatic_not_a_bounce() -> None:
    incoming = classify(
        header(
            "From: alicja@example.com",
            'Content-Type: multipart/report; report-type=disposition-notification; boundary="x"',
        )
    )
    assert incoming.kind is MessageKind.AUTO_REPLY


def test_parse_bounce_finds_the_failed_recipient_reason_and_original() -> None:
    found = parse_bounce(bounce("Bob@Example.com", OURS))
    assert [f.address for f in found.failed] == ["bob@example.com"]
    assert found.failed[0].status == "5.1.1"
    assert "User unknown" in found.failed[0].reason
    assert not found.failed[0].reason.startswith("smtp;")
    assert found.original_message_id == OURS


def test_a_delayed_notice_names_no_failed_recipient() -> None:
    found = parse_bounce(bounce("bob@example.com", OURS, status="4.4.1", action="delayed"))
    assert found.failed == ()


def test_a_bounce_cut_short_still_gives_what_was_read() -> None:
    raw = bounce("bob@example.com", OURS)
    cut = raw[: raw.index(b"text/rfc822-headers")]
    found = parse_bounce(cut)
    assert [f.address for f in found.failed] == ["bob@example.com"]
    assert found.original_message_id is None


def test_a_bounce_without_a_report_uses_x_failed_recipients() -> None:
    raw = header("From: MAILER-DAEMON@x", "X-Failed-Recipients: bob@example.com") + b"sorry\r\n"
    assert [f.address for f in parse_bounce(raw).failed] == ["bob@example.com"]


def test_broken_headers_never_raise() -> None:
    for raw in (
        b"",
        b"\xff\xfe\x00garbage",
        b"From: \xc3\x28 <\xff@\xfe>\r\nSubject: \xe9t\xe9\r\nIn-Reply-To: <\xff@x>\r\n\r\n",
        b"From" + b"x" * 100_000 + b"\r\n\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n--\r\n",
        b"From: =?bogus?x?zz?= <a@b.c>\r\nSubject: =?utf-8?b?!!!?=\r\n\r\n",
    ):
        incoming = classify(raw)
        assert incoming.identity
        parse_bounce(raw)


@given(st.binary(max_size=2000))
def test_any_bytes_classify_without_raising(raw: bytes) -> None:
    classify(raw)
    parse_bounce(raw)


@given(st.text(max_size=300))
def test_any_header_text_classifies_without_raising(text: str) -> None:
    safe = text.replace("\r", " ").replace("\n", " ")
    classify(header(f"From: {safe}", f"Subject: {safe}", f"References: {safe}"))


def test_a_damaged_display_name_still_gives_the_address() -> None:
    raw = b"From: \xc3\x28 <Alicja@Example.com>\r\nSubject: Re: x\r\n\r\n"
    assert classify(raw).sender == "alicja@example.com"
    assert classify(header('From: "Bob (Sales <bob@example.com>')).sender == "bob@example.com"
    assert classify(header("From: undisclosed")).sender is None
