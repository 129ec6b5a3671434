"""Replies and forwards (rule 4): the rep's signature goes only on links the rep wrote.
Outlook's VML buttons (rule 2): tracked with the index of their non-Outlook twin."""

from __future__ import annotations

import pytest

from mailbeacon.core import tokens
from mailbeacon.core.html_links import HtmlPlan, plan_html, render
from mailbeacon.core.rewrite import Plan, rewrite_message
from mailbeacon.core.stale import tracking_claims
from tests.helpers.rewrite import (
    SERVER,
    RecordingMinter,
    foreign_click_url,
    own,
    stale_click_url,
)

TRACK = Plan(track=True, clicks=True, per_recipient=False)
MINE = '<a href="https://mine.example/offer">my offer</a>'
THEIRS = '<a href="https://theirs.example/x">their link</a>'


def plan(html: str, **options: bool) -> HtmlPlan:
    return plan_html(html, track=True, clicks=True, ours=own, **options)


def targets(html: str) -> list[str]:
    return [link.target for link in plan(html).links]


# ------------------------------------------------------------------ quoted parts


@pytest.mark.parametrize(
    "quote",
    [
        # Gmail (reply and forward), with its attribution line
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, Ann wrote:</div>'
        '<blockquote class="gmail_quote" style="margin:0 0 0 .8ex">{links}</blockquote></div>',
        '<div class="gmail_quote gmail_quote_container"><div dir="ltr">---------- Forwarded '
        "message ---------<br></div>{links}</div>",
        # Apple Mail, Thunderbird
        '<blockquote type="cite" cite="mid:1@x">{links}</blockquote>',
        "<BLOCKQUOTE TYPE=CITE><div><div>{links}</div></div></BLOCKQUOTE>",
        '<div class="moz-forward-container">-------- Forwarded Message --------{links}</div>',
        '<div class="yahoo_quoted">{links}</div>',
    ],
)
def test_links_in_a_quoted_part_are_not_wrapped_and_the_reps_own_are(quote: str) -> None:
    html = f"<body><p>{MINE}</p>{quote.format(links=THEIRS)}<p>Bottom post: {MINE}</p></body>"
    result = plan(html)
    assert [link.target for link in result.links] == ["https://mine.example/offer"] * 2
    out = render(html, result, "https://t/o/p.gif", None, lambda i, t: f"https://t/c/{i}")
    assert THEIRS in out


@pytest.mark.parametrize(
    "header",
    [
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann</div>',
        '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann<br><b>Sent:</b> Monday</div>',
        '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        "<p><b>From:</b> Ann</p></div></div>",
        '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        "<p><b>From:</b> Ann</p></div>",
    ],
)
def test_everything_after_outlooks_reply_header_is_the_earlier_message(header: str) -> None:
    html = f"<body><p>{MINE}</p>{header}<div><p>{THEIRS}</p></div><p>{THEIRS}</p></body>"
    assert targets(html) == ["https://mine.example/offer"]


@pytest.mark.parametrize(
    "decoy",
    [
        '<!-- <div class="gmail_quote"> -->',
        "<script>'<blockquote type=\"cite\">'</script>",
        '<p title="<div id=divRplyFwdMsg>">gmail_quote</p>',
        '<blockquote class="note">cite</blockquote>',
        '<div class="gmail_quote"></div>',  # closed at once: the quote is over
        '<div class="gmail_quote"><div><div></div></div></div>',
    ],
)
def test_quote_markers_in_comments_scripts_or_attributes_or_closed_quote_no_longer_count(
    decoy: str,
) -> None:
    assert targets(f"<body>{decoy}{THEIRS}</body>") == ["https://theirs.example/x"]


def test_a_quote_ends_only_with_its_own_end_tag() -> None:
    html = (
        '<body><blockquote type="cite"><div><blockquote>nested</blockquote></div>'
        f"</div></div>{THEIRS}</blockquote>{MINE}</body>"
    )
    assert targets(html) == ["https://mine.example/offer"]


def test_the_pixel_goes_before_a_quote_that_precedes_the_body_tag() -> None:
    html = f'<div class="gmail_quote">{THEIRS}</div><body>{MINE}</body>'
    result = plan(html)
    (pixel,) = [e for e in result.edits if e.pixel]
    assert pixel.start == 0


def test_a_reply_to_an_outsiders_email_signs_none_of_their_links() -> None:
    # The outsider's email held a forged /c/ link on the rep's tracking domain (the
    # server answers 404) and ordinary links: none of them may come out signed.
    forged = foreign_click_url("https://evil.example/login").replace(
        "https://old.example.net", SERVER
    )
    quoted = (
        f'<a href="{forged}">Your invoice</a> <a href="https://evil.example/pay">Pay now</a>'
    )
    html = (
        "<html><body><p>Thanks, see below.</p>"
        f'<div class="gmail_quote"><blockquote class="gmail_quote">{quoted}</blockquote></div>'
        "</body></html>"
    )
    raw = (
        "From: rep@example.com\r\nTo: ann@example.org\r\nSubject: Re: x\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()
    minter = RecordingMinter()
    result = rewrite_message(raw, ("ann@example.org",), TRACK, minter)
    assert result.tracked and result.links == () and result.stale_removed == 0
    assert [c[2] for c in minter.clicks] == [tokens.HONEYPOT_LINK]  # only the honeypot
    assert forged.encode() in result.copies[0].data


def test_an_attached_forwarded_message_is_never_rewritten() -> None:
    inner = (
        "From: ann@example.org\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
        f"<p>{THEIRS}</p>\r\n"
    )
    raw = (
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        f"Content-Type: text/html\r\n\r\n<body>{MINE}</body>\r\n--b\r\n"
        f"Content-Type: message/rfc822\r\n\r\n{inner}--b--\r\n"
    ).encode()
    result = rewrite_message(raw, ("ann@example.org",), TRACK, RecordingMinter())
    assert [link.target for link in result.links] == ["https://mine.example/offer"]
    assert inner.encode() in result.copies[0].data


# ------------------------------------------------------------------ Outlook VML buttons

BUTTON = (
    '<!--[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" href="{vml}" '
    'style="height:40px" arcsize="10%"><w:anchorlock/><center>Book a call</center>'
    "</v:roundrect><![endif]-->"
)


def _claims_of(out: str, prefix: str) -> tokens.Claims:
    start = out.index(prefix) + len(prefix)
    url = out[start : out.index('"', start)]
    claims = tracking_claims(url)
    assert claims is not None
    return claims


def _render_tokens(html: str) -> str:
    minter = RecordingMinter()
    result = plan(html)
    return render(html, result, None, None, lambda i, t: minter.click("00" * 12, None, i, t))


def test_a_vml_button_gets_the_index_of_its_non_outlook_twin() -> None:
    target = "https://cal.example/book"
    html = (
        f'<body><a href="https://e.example/first">First</a>{BUTTON.format(vml=target)}'
        f'<!--[if !mso]><!-- --><a href="{target}">Book a call</a><!--<![endif]--></body>'
    )
    result = plan(html)
    assert [(link.index, link.target) for link in result.links] == [
        (0, "https://e.example/first"),
        (1, target),
    ]
    out = _render_tokens(html)
    vml = _claims_of(out, '<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" href="')
    twin = _claims_of(out, '<!--[if !mso]><!-- --><a href="')
    assert (vml.link_index, vml.target) == (twin.link_index, twin.target) == (1, target)


def test_a_vml_button_without_a_twin_gets_its_own_index() -> None:
    html = f'<body>{BUTTON.format(vml="https://cal.example/solo")}{MINE}</body>'
    assert [(link.index, link.target, link.text) for link in plan(html).links] == [
        (0, "https://mine.example/offer", "my offer"),
        (1, "https://cal.example/solo", "Book a call"),
    ]


@pytest.mark.parametrize(
    "html",
    [
        '<div class="gmail_quote">' + BUTTON.format(vml="https://theirs.example/b") + "</div>",
        BUTTON.format(vml="mailto:ann@example.org"),
        BUTTON.format(vml="https://x.example/a").replace("Book a call", "www.example.com"),
        '<!-- <v:roundrect href="https://x.example/not-conditional"></v:roundrect> -->',
        '<!--[if mso]><a href="https://x.example/outlook-only">x</a><![endif]-->',
    ],
)
def test_vml_outside_the_rules_is_not_tracked(html: str) -> None:
    assert plan(f"<body>{html}</body>").links == ()


def test_the_reps_stale_vml_link_is_tracked_afresh_with_its_twin_and_counted_once() -> None:
    target = "https://cal.example/book"
    html = (
        f"<body>{BUTTON.format(vml=stale_click_url(target))}"
        f'<a href="{stale_click_url(target)}">Book a call</a></body>'
    )
    result = plan(html)
    assert result.stale == 2
    assert [(link.index, link.target) for link in result.links] == [(0, target)]
    assert sorted(e.link for e in result.edits if e.link is not None) == [0, 0]
