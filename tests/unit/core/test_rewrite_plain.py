"""The plain-text alternative carries the same tracked links as the HTML (rule 2), and
clicks-only tracking: links without pixel or honeypot (rule 1)."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage

from mailbeacon.core import tokens
from mailbeacon.core.rewrite import (
    REASON_NO_LINKS,
    REASON_PLAIN_TEXT,
    Plan,
    RewriteResult,
    rewrite_message,
)
from mailbeacon.core.stale import tracking_claims
from mailbeacon.core.text_links import plan_text, unquoted_spans
from tests.helpers.rewrite import RecordingMinter, message_keys, recipient_keys

TRACK = Plan(track=True, clicks=True, per_recipient=False)
CLICKS_ONLY = Plan(track=True, clicks=True, per_recipient=False, opens=False)
CLICK_URL = re.compile(r"https://t\.example\.com/c/[A-Za-z0-9_-]+")
PIXEL_URL = re.compile(r"https://t\.example\.com/o/[A-Za-z0-9_-]+\.gif")
OFFER = "https://example.com/offer?utm=a&x=1"


def rewrite(
    raw: bytes, plan: Plan = TRACK, rcpts: tuple[str, ...] = ("ann@example.org",)
) -> RewriteResult:
    return rewrite_message(raw, rcpts, plan, RecordingMinter(), message_keys(), recipient_keys())


def alternative(text: str, html: str, text_cte: str = "7bit", charset: str = "utf-8") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jan <jan@example.com>"
    msg["To"] = "Ann <ann@example.org>"
    msg["Subject"] = "Offer"
    msg.set_content(text, charset=charset, cte=text_cte)
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes(policy=policy.SMTP)


def bodies(data: bytes) -> tuple[str, str]:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content().replace("\r\n", "\n"), html.get_content()


def link_urls(html: str) -> list[str]:
    """The tracked links of the HTML, in order, without the honeypot."""
    out = []
    for url in CLICK_URL.findall(html):
        claims = tracking_claims(url)
        assert claims is not None
        if claims.link_index != tokens.HONEYPOT_LINK:
            out.append(url)
    return out


HTML = (
    '<html><body><p>Hi Ann,</p><p>Here is <a href="https://example.com/offer?utm=a&amp;x=1">'
    'our offer</a> and <a href="https://example.com/deck">the deck</a>.</p>'
    '<p><a href="https://example.com/site">https://example.com/site</a></p></body></html>'
)


def test_the_plain_text_alternative_gets_the_same_click_urls_as_the_html() -> None:
    text = (
        f"Hi Ann,\n\nHere is our offer <{OFFER}> and the deck<https://example.com/deck>.\n"
        f"Again: {OFFER}.\nhttps://example.com/site\n"
    )
    result = rewrite(alternative(text, HTML))
    plain, html = bodies(result.copies[0].data)
    html_urls = link_urls(html)
    plain_urls = CLICK_URL.findall(plain)
    assert len(html_urls) == 2 and len(CLICK_URL.findall(html)) == 3  # and the honeypot
    assert plain_urls == [html_urls[0], html_urls[1], html_urls[0]]
    assert f"<{html_urls[0]}>" in plain and f"deck<{html_urls[1]}>." in plain
    assert f"Again: {html_urls[0]}.\n" in plain
    # A link whose text is its URL is left alone in both alternatives.
    assert "https://example.com/site\n" in plain and ">https://example.com/site</a>" in html
    assert PIXEL_URL.findall(plain) == []
    claims = tracking_claims(plain_urls[0])
    assert claims is not None and (claims.link_index, claims.target) == (0, OFFER)


def test_only_whole_urls_outside_quotes_are_replaced() -> None:
    text = (
        "See https://example.com/deck2 and https://x.example/?u=https://example.com/deck\n"
        "and https://example.com/deck/more\n"
        "> https://example.com/deck quoted\n"
        "-----Original Message-----\nFrom: Ann\nhttps://example.com/deck\n"
    )
    html = '<body><a href="https://example.com/deck">deck</a></body>'
    plain, _html = bodies(rewrite(alternative(text, html)).copies[0].data)
    assert plain == text


def test_unquoted_spans_stop_at_the_reply_separator() -> None:
    text = "mine\n> theirs\nmine again\n________________\nFrom: Ann\n"
    assert [text[s:e] for s, e in unquoted_spans(text)] == ["mine\n", "mine again\n"]
    assert plan_text("x https://a.example/y)", {"https://a.example/y": 3})[0].index == 3


def test_each_copy_gets_its_own_recipients_urls_in_both_alternatives() -> None:
    raw = alternative(f"Offer: {OFFER}\n", HTML)
    plan = Plan(track=True, clicks=True, per_recipient=True)
    result = rewrite(raw, plan, ("ann@example.org", "bob@example.org"))
    assert len(result.copies) == 2
    for copy in result.copies:
        plain, html = bodies(copy.data)
        url = CLICK_URL.findall(plain)[0]
        assert url == link_urls(html)[0]
        claims = tracking_claims(url)
        assert claims is not None and claims.recipient_key == copy.recipient_key


def test_a_quoted_printable_polish_plain_text_stays_quoted_printable() -> None:
    text = f"Dzień dobry Pani Anno,\n\nprzesyłam ofertę: {OFFER}\n\nPozdrawiam\nJan\n"
    raw = alternative(text, HTML, text_cte="quoted-printable")
    out = rewrite(raw).copies[0].data
    plain, html = bodies(out)
    assert plain.startswith("Dzień dobry") and CLICK_URL.findall(plain)[0] in html
    parsed = email.message_from_bytes(out, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("plain",))
    assert part is not None and part["Content-Transfer-Encoding"] == "quoted-printable"


def test_a_base64_plain_text_is_re_encoded_in_base64() -> None:
    raw = alternative(f"Oferta: {OFFER}\nŻółć\n", HTML, text_cte="base64")
    plain, _html = bodies(rewrite(raw).copies[0].data)
    assert "Żółć" in plain and CLICK_URL.search(plain)


def test_a_plain_line_pushed_past_998_octets_becomes_quoted_printable() -> None:
    text = ("x" * 900) + " " + OFFER + "\n"
    raw = alternative(text, HTML, text_cte="7bit")
    out = rewrite(raw).copies[0].data
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    plain, _html = bodies(out)
    assert plain.startswith("x" * 900 + " https://t.example.com/c/")


def test_a_plain_text_only_email_stays_untouched() -> None:
    raw = f"Subject: Hi\r\nContent-Type: text/plain\r\n\r\nSee {OFFER}\r\n".encode()
    result = rewrite(raw)
    assert (result.tracked, result.untracked_reason) == (False, REASON_PLAIN_TEXT)
    assert result.copies[0].data is raw


def test_clicks_only_tracks_links_without_pixel_or_honeypot() -> None:
    raw = alternative(f"Offer: {OFFER}\n", HTML)
    result = rewrite(raw, CLICKS_ONLY)
    assert result.tracked and not result.pixel
    plain, html = bodies(result.copies[0].data)
    assert PIXEL_URL.findall(html) == [] and "<img" not in html
    urls = CLICK_URL.findall(html)
    assert len(urls) == 2  # the two links, no honeypot
    indexes = set()
    for url in urls:
        claims = tracking_claims(url)
        assert claims is not None
        indexes.add(claims.link_index)
    assert tokens.HONEYPOT_LINK not in indexes
    assert CLICK_URL.findall(plain) == [urls[0]]


def test_clicks_only_tracks_clicks_even_with_click_tracking_off_in_settings() -> None:
    plan = Plan(track=True, clicks=False, per_recipient=False, opens=False)
    result = rewrite(alternative("Hi", HTML), plan)
    assert result.tracked and len(result.links) == 2


def test_clicks_only_without_a_trackable_link_goes_out_untracked_and_says_why() -> None:
    raw = alternative("Hi", "<body><p>Hi Ann, call me.</p></body>")
    result = rewrite(raw, CLICKS_ONLY)
    assert (result.tracked, result.untracked_reason) == (False, REASON_NO_LINKS)
    assert result.copies[0].data == raw


def test_the_usual_tracking_says_a_pixel_went_in() -> None:
    result = rewrite(alternative("Hi", HTML))
    assert result.tracked and result.pixel
    _plain, html = bodies(result.copies[0].data)
    assert len(PIXEL_URL.findall(html)) == 1
