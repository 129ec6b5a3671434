"""rewrite_message: what is sent for an outgoing email (rules 1-4), one copy or one per
recipient, and never an exception or a mangled message whatever comes in."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbeacon.core import mime, tokens
from mailbeacon.core.rewrite import (
    REASON_INTERNAL,
    REASON_NO_HTML,
    REASON_OFF,
    REASON_PLAIN_TEXT,
    REASON_UNDECODABLE,
    REASON_UNPARSABLE,
    Plan,
    RewriteResult,
    rewrite_message,
)
from mailbeacon.core.stale import tracking_claims
from tests.helpers import paths
from tests.helpers.rewrite import (
    SERVER,
    FailingMinter,
    RecordingMinter,
    message_keys,
    recipient_keys,
    stale_click_url,
    stale_pixel_url,
)

CORPUS = paths.MAIL_CORPUS
TRACK = Plan(track=True, clicks=True, per_recipient=False)
PER_RECIPIENT = Plan(track=True, clicks=True, per_recipient=True)
OFF = Plan(track=False, clicks=True, per_recipient=False)
PIXEL_RE = re.compile(rb'<img src="(https://t\.example\.com/o/[A-Za-z0-9_-]+\.gif)"')
HREF_RE = re.compile(rb'href="(https://t\.example\.com/c/[A-Za-z0-9_-]+)"')


def rewrite(
    raw: bytes,
    plan: Plan = TRACK,
    rcpts: tuple[str, ...] = ("ann@example.org",),
    minter: RecordingMinter | None = None,
) -> RewriteResult:
    return rewrite_message(
        raw, rcpts, plan, minter or RecordingMinter(), message_keys(), recipient_keys()
    )


def html_mail(html: str, extra_headers: str = "") -> bytes:
    return (
        "From: Jan <jan@example.com>\r\nTo: Ann <ann@example.org>\r\nSubject: Hi\r\n"
        f"{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html
    ).encode()


def alternative_mail(text: str, html: str) -> bytes:
    return (
        'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--b--\r\n"
    ).encode()


def claims_in(data: bytes) -> list[tokens.Claims]:
    found = []
    for url in PIXEL_RE.findall(data) + HREF_RE.findall(data):
        claims = tracking_claims(url.decode())
        assert claims is not None
        found.append(claims)
    return found


# ------------------------------------------------------------------ rule 1


def test_an_html_email_gets_one_pixel_and_its_links_are_tracked() -> None:
    raw = html_mail(
        '<html><body><p>See <a href="https://example.com/offer">the offer</a></p></body></html>'
    )
    minter = RecordingMinter()
    result = rewrite(raw, minter=minter)
    assert result.tracked and result.untracked_reason is None
    assert result.message_key == "00" * 11 + "01"
    (copy,) = result.copies
    assert copy.recipients == ("ann@example.org",)
    assert copy.recipient_key == "00" * 7 + "01"  # a single recipient gets their own key
    assert len(PIXEL_RE.findall(copy.data)) == 1
    claims = claims_in(copy.data)
    assert {(c.kind, c.message_key, c.recipient_key) for c in claims} == {
        (tokens.Kind.OPEN, result.message_key, copy.recipient_key),
        (tokens.Kind.CLICK, result.message_key, copy.recipient_key),
    }
    assert sorted((c.link_index, c.target) for c in claims if c.kind is tokens.Kind.CLICK) == [
        (0, "https://example.com/offer"),
        (tokens.HONEYPOT_LINK, SERVER + "/"),
    ]
    assert [(link.index, link.target, link.text) for link in result.links] == [
        (0, "https://example.com/offer", "the offer")
    ]
    assert minter.pixels == [(result.message_key, copy.recipient_key)]


def test_a_link_with_a_nul_character_is_left_alone() -> None:
    # No URL has one, and the server's PostgreSQL could not store its clicks.
    raw = html_mail(
        '<p><a href="https://example.com/a\x00b">x</a> <a href="https://example.com/ok">y</a></p>'
    )
    result = rewrite(raw)
    assert [link.target for link in result.links] == ["https://example.com/ok"]
    (copy,) = result.copies
    assert b'href="https://example.com/a\x00b"' in copy.data


def test_multipart_alternative_tracks_the_html_and_leaves_a_plain_text_without_links_alone() -> (
    None
):
    # The plain text carries no target of the HTML's links: it stays byte-identical
    # (with the target in it, it gets the same /c/ URL: test_rewrite_plain.py).
    raw = alternative_mail(
        "Hi Ann, see the offer", '<p>Hi <a href="https://example.com/x">Ann</a></p>'
    )
    out = rewrite(raw).copies[0].data
    plain = b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Ann, see the offer\r\n"
    assert out.startswith(raw[: raw.index(plain) + len(plain)])
    assert out.endswith(b"\r\n--b--\r\n")
    assert len(PIXEL_RE.findall(out)) == 1


def test_a_plain_text_email_is_sent_untouched_and_says_why() -> None:
    raw = b"Subject: Hi\r\nContent-Type: text/plain\r\n\r\nHi, see https://example.com/x\r\n"
    result = rewrite(raw)
    assert (result.tracked, result.untracked_reason) == (False, REASON_PLAIN_TEXT)
    assert result.copies[0].data is raw
    assert result.links == ()


def test_a_message_without_content_type_is_plain_text() -> None:
    raw = b"Subject: Hi\r\n\r\n<p>looks like html</p>\r\n"
    assert rewrite(raw).untracked_reason == REASON_PLAIN_TEXT


def test_an_email_with_only_an_attachment_has_no_body_to_track() -> None:
    raw = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n"
    result = rewrite(raw)
    assert (result.tracked, result.untracked_reason) == (False, REASON_NO_HTML)


def test_tracking_off_sends_the_bytes_unchanged() -> None:
    raw = html_mail('<p><a href="https://example.com/x">x</a></p>')
    result = rewrite(raw, OFF, ("a@x.org", "b@y.org"))
    assert (result.tracked, result.untracked_reason, result.links) == (False, REASON_OFF, ())
    (copy,) = result.copies
    assert (copy.recipients, copy.recipient_key, copy.data) == (("a@x.org", "b@y.org"), None, raw)
    assert copy.data is raw


def test_click_tracking_off_adds_only_the_pixel() -> None:
    raw = html_mail('<p><a href="https://example.com/x">x</a></p>')
    minter = RecordingMinter()
    result = rewrite(raw, Plan(track=True, clicks=False, per_recipient=False), minter=minter)
    assert result.tracked and result.links == ()
    assert minter.clicks == []
    assert result.copies[0].data.count(b"https://example.com/x") == 1


# ------------------------------------------------------------------ rule 3: attribution


def test_several_recipients_share_one_pixel_by_default() -> None:
    raw = html_mail('<p><a href="https://example.com/x">x</a></p>')
    rcpts = ("ann@example.org", "bob@example.org", "carol@example.org")
    result = rewrite(raw, TRACK, rcpts)
    (copy,) = result.copies
    assert (copy.recipients, copy.recipient_key) == (rcpts, None)
    assert {c.recipient_key for c in claims_in(copy.data)} == {None}


def test_one_copy_per_recipient_each_with_its_own_pixel_and_links() -> None:
    raw = alternative_mail("Hi", '<p><a href="https://example.com/x">x</a></p>')
    rcpts = ("ann@example.org", "bob@example.org", "ann@example.org", "carol@example.org")
    result = rewrite(raw, PER_RECIPIENT, rcpts)
    assert [c.recipients for c in result.copies] == [
        ("ann@example.org",),
        ("bob@example.org",),
        ("carol@example.org",),
    ]
    keys = [c.recipient_key for c in result.copies]
    assert len(set(keys)) == 3 and None not in keys
    for copy in result.copies:
        assert {c.recipient_key for c in claims_in(copy.data)} == {copy.recipient_key}
        assert {c.message_key for c in claims_in(copy.data)} == {result.message_key}
    # Identical apart from the tracking URLs.
    neutral = {
        re.sub(rb"https://t\.example\.com/[oc]/[A-Za-z0-9_-]+", b"URL", c.data)
        for c in result.copies
    }
    assert len(neutral) == 1
    assert [link.index for link in result.links] == [0]


def test_one_copy_per_recipient_with_a_single_recipient_is_one_copy() -> None:
    result = rewrite(html_mail("<p>x</p>"), PER_RECIPIENT, ("ann@example.org",))
    assert [(c.recipients, c.recipient_key) for c in result.copies] == [
        (("ann@example.org",), "00" * 7 + "01")
    ]


def test_plain_text_is_never_split_per_recipient() -> None:
    raw = b"Content-Type: text/plain\r\n\r\nHi\r\n"
    result = rewrite(raw, PER_RECIPIENT, ("a@x.org", "b@x.org"))
    assert [(c.recipients, c.recipient_key) for c in result.copies] == [
        (("a@x.org", "b@x.org"), None)
    ]


# ------------------------------------------------------------------ rule 4: stale tracking


# The stale tokens in the corpus reply were minted for user 3 with this key.
CORPUS_REP = RecordingMinter(user_id=3, key=b"p" * 32)


def test_a_reply_quoting_a_tracked_email_carries_only_the_new_pixel() -> None:
    raw = (CORPUS / "reply-quoting-tracked.eml").read_bytes()
    result = rewrite(raw, minter=CORPUS_REP)
    out = result.copies[0].data
    msg = email.message_from_bytes(out, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    assert "old-company" not in text + markup
    assert "> Our offer <https://example.com/offer?x=1&y=2> and the terms:" in text
    assert "> https://example.com/terms <https://example.com/terms>" in text
    assert '<a href="https://example.com/terms">https://example.com/terms</a>' in markup
    # Unwrapped, but inside Gmail's quote: not wrapped again (rule 4).
    assert '<a href="https://example.com/offer?x=1&amp;y=2">offer</a>' in markup
    assert markup.count("<img ") == 1
    assert result.stale_removed == 6  # pixel, honeypot, two links in HTML; two URLs in text
    assert result.links == ()
    assert {c.message_key for c in claims_in(mime_decoded(out))} == {result.message_key}


def test_another_reps_tracking_in_a_quoted_reply_is_left_as_it_is() -> None:
    raw = (CORPUS / "reply-quoting-tracked.eml").read_bytes()
    result = rewrite(raw)  # not user 3: none of the old tokens verifies
    assert (result.tracked, result.stale_removed, result.links) == (True, 0, ())
    out = result.copies[0].data
    plain = email.message_from_bytes(out, policy=policy.default)
    assert isinstance(plain, EmailMessage)
    before = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(before, EmailMessage)
    old_text, new_text = (
        m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for m in (before, plain)
    )
    assert new_text == old_text
    assert mime_decoded(out).count(b"old-company") == mime_decoded(raw).count(b"old-company")


def test_stale_tracking_is_removed_even_when_the_email_is_not_tracked() -> None:
    stale = stale_click_url("https://example.com/offer")
    raw = alternative_mail(
        f"Offer: {stale}", f'<p><a href="{stale}">offer</a><img src="{stale_pixel_url()}"></p>'
    )
    result = rewrite(raw, OFF)
    assert (result.tracked, result.stale_removed) == (False, 3)
    out = result.copies[0].data
    assert b"old.example.net" not in out
    assert out == raw.replace(stale.encode(), b"https://example.com/offer").replace(
        f'<img src="{stale_pixel_url()}">'.encode(), b""
    )


def test_stale_links_in_a_plain_text_email_are_unwrapped_but_it_stays_untracked() -> None:
    stale = stale_click_url("https://example.com/ä ö")
    raw = f"Content-Type: text/plain; charset=us-ascii\r\n\r\nSee {stale}.\r\n".encode()
    result = rewrite(raw)
    assert (result.tracked, result.untracked_reason, result.stale_removed) == (
        False,
        REASON_PLAIN_TEXT,
        1,
    )
    assert result.copies[0].data.endswith(b"See https://example.com/%C3%A4%20%C3%B6.\r\n")


# ------------------------------------------------------------------ several HTML bodies


def test_every_html_body_gets_the_same_pixel_and_links_are_numbered_across_them() -> None:
    raw = (CORPUS / "apple-mail-mixed-inline.eml").read_bytes()
    result = rewrite(raw)
    out = result.copies[0].data
    pixels = PIXEL_RE.findall(mime_decoded(out))
    assert len(pixels) == 2 and len(set(pixels)) == 1
    assert [(link.index, link.target) for link in result.links] == [
        (0, "https://example.com/pricing"),
        (1, "https://cal.example.com/jan"),
    ]


def mime_decoded(data: bytes) -> bytes:
    msg = email.message_from_bytes(data, policy=policy.default)
    chunks = []
    for part in msg.walk():
        if part.get_content_type() == "text/html" and isinstance(part, EmailMessage):
            chunks.append(part.get_content().encode())
    return b"".join(chunks)


# ------------------------------------------------------------------ the corpus

CORPUS_EXPECTED = {
    # name: (tracked, reason, tracked link targets, stale removed)
    "thunderbird-alternative.eml": (True, None, ["https://example.com/oferta?id=7&src=tb"], 0),
    "outlook-related-cp1250.eml": (
        True,
        None,
        ["https://example.com/raport-2026.pdf", "https://example.com/umow-spotkanie"],
        0,
    ),
    "apple-mail-mixed-inline.eml": (
        True,
        None,
        ["https://example.com/pricing", "https://cal.example.com/jan"],
        0,
    ),
    "gmail-mixed-attachment.eml": (
        True,
        None,
        ["https://docs.example.com/d/1AbC?usp=sharing&ts=1"],
        0,
    ),
    "html-only-iso-8859-2-base64-lf.eml": (True, None, ["https://example.pl/szczegoly?a=1&b=2"], 0),
    "plain-text-only.eml": (False, REASON_PLAIN_TEXT, [], 0),
    "forward-attached-message.eml": (True, None, ["https://example.com/notes"], 0),
    "reply-quoting-tracked.eml": (True, None, [], 0),  # another rep's tokens, quoted
    "malformed-missing-boundary-param.eml": (False, REASON_UNPARSABLE, [], 0),
    "malformed-no-boundary-lines.eml": (False, REASON_UNPARSABLE, [], 0),
    "malformed-truncated.eml": (True, None, ["https://example.com/x"], 0),
    "malformed-broken-base64-html.eml": (False, REASON_UNDECODABLE, [], 0),
    "malformed-unknown-charset.eml": (False, REASON_UNDECODABLE, [], 0),
    "malformed-8bit-headers.eml": (True, None, ["https://example.com/x"], 0),
    "malformed-garbage.eml": (False, REASON_PLAIN_TEXT, [], 0),
}


def test_the_corpus_is_complete() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(CORPUS_EXPECTED)


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTED))
def test_corpus_email(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    tracked, reason, targets, stale = CORPUS_EXPECTED[name]
    result = rewrite(raw)
    assert (result.tracked, result.untracked_reason) == (tracked, reason)
    assert [link.target for link in result.links] == targets
    assert result.stale_removed == stale
    out = result.copies[0].data
    if not tracked:
        assert out is raw
        return
    # Every part but the HTML (and, with stale links, plain-text) bodies is byte-identical,
    # header blocks included.
    before, after = _parts(raw), _parts(out)
    assert len(before) == len(after)
    for (ctype, head_a, body_a), (_, head_b, body_b) in zip(before, after, strict=True):
        assert head_a == head_b
        if ctype not in ("text/html", "text/plain"):
            assert body_a == body_b
    # Still a well-formed message with the same structure.
    types_in = [p.get_content_type() for p in email.message_from_bytes(raw).walk()]
    types_out = [p.get_content_type() for p in email.message_from_bytes(out).walk()]
    assert types_in == types_out


def _parts(data: bytes) -> list[tuple[str, bytes, bytes]]:
    root = mime.parse_message(data)
    return [
        (p.content_type, data[p.start : p.header_end], data[p.body_start : p.end])
        for p in mime.walk(root)
        if not p.children
    ]


def test_the_outlook_email_keeps_its_charset_conditional_comments_and_cid_image() -> None:
    raw = (CORPUS / "outlook-related-cp1250.eml").read_bytes()
    out = rewrite(raw).copies[0].data
    msg = email.message_from_bytes(out, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    html = msg.get_body(("html",))
    assert html is not None and html.get_content_charset() == "windows-1250"
    markup = html.get_content()
    assert "zażółć gęślą jaźń \u2013 przesyłam" in markup
    # The VML button carries the same tracked link (index 1) as its non-Outlook twin.
    vml = re.search(r'<!--\[if mso\]><v:roundrect xmlns:v="[^"]+" href="([^"]+)"', markup)
    assert vml is not None
    claims = tracking_claims(vml.group(1))
    assert claims is not None and (claims.link_index, claims.target) == (
        1,
        "https://example.com/umow-spotkanie",
    )
    assert 'src="cid:image001.png@01DA0000.12345670"' in markup
    assert '<a href="mailto:jan@example.com">' in markup and '<a href="tel:+48123456789">' in markup
    assert '<a href="https://www.example.com/">www.example.com</a>' in markup


# ------------------------------------------------------------------ never raises


@pytest.mark.expect_log("rewriting failed")
def test_a_failing_minter_sends_the_message_unmodified() -> None:
    raw = html_mail("<p>x</p>")
    result = rewrite_message(raw, ("a@x.org",), TRACK, FailingMinter())
    assert (result.tracked, result.untracked_reason) == (False, REASON_INTERNAL)
    assert result.copies[0].data is raw


def test_a_hundred_thousand_links_are_tracked_up_to_the_token_limit() -> None:
    links = "".join(f'<a href="https://e.example/{i}">l</a>' for i in range(100_000))
    raw = html_mail(f"<body>{links}</body>")
    result = rewrite_message(raw, (), TRACK, _CheapMinter())
    assert result.tracked
    assert len(result.links) == tokens.HONEYPOT_LINK  # indexes 0..65534
    assert result.links[-1].target == f"https://e.example/{tokens.HONEYPOT_LINK - 1}"


class _CheapMinter:
    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        return "https://t.example.com/o/p.gif"

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        return f"https://t.example.com/c/{index}"

    def verify(self, token: str) -> tokens.Claims | None:
        return None


def test_a_two_megabyte_single_line_html_is_handled() -> None:
    html = ("<p>" + "word " * 30 + '<a href="https://e.example/a?b=1&amp;c=2">go</a></p>') * 10_000
    raw = html_mail(html[:2_000_000])
    result = rewrite_message(raw, (), TRACK, _CheapMinter())
    assert result.tracked and len(result.links) > 9000


_MIME_BITS = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b'Content-Type: multipart/alternative; boundary="b"\r\n',
        b"Content-Type: text/html; charset=utf-8\r\n",
        b"Content-Type: text/plain; charset=iso-8859-2\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Disposition: attachment; filename=x.html\r\n",
        b"\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b'<a href="https://e.example/x">x</a>',
        b"<body></body>",
        b"=3D=\r\n",
        b"PGI+eDwvYj4=\r\n",
        b"\xff\xfe\x00",
        b"<!--",
        stale_pixel_url().encode(),
        stale_click_url("https://example.com/").encode(),
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2000), st.lists(_MIME_BITS, max_size=40).map(b"".join)))
def test_rewrite_never_raises_and_unrewritable_input_goes_out_unmodified(raw: bytes) -> None:
    for plan in (TRACK, PER_RECIPIENT, OFF):
        result = rewrite_message(raw, ("a@x.org", "b@y.org"), plan, RecordingMinter())
        assert result.copies
        assert sorted(r for c in result.copies for r in c.recipients) == ["a@x.org", "b@y.org"]
        if not result.tracked and result.stale_removed == 0:
            assert result.untracked_reason
            assert result.copies[0].data == raw
        assert result.untracked_reason != REASON_INTERNAL
        if result.tracked or result.stale_removed:  # same parts, same header blocks
            heads = [(t, h) for t, h, _ in _parts(raw)]
            for copy in result.copies:
                assert [(t, h) for t, h, _ in _parts(copy.data)] == heads
