"""HTML rewriting (rules 1, 2, 4): which links are tracked, where the pixel goes, stale
tracking removed, and every byte outside the changed spans left as written.

Quoted and forwarded parts, Outlook's VML buttons: tests/unit/core/test_rewrite_quotes.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core import tokens
from mailbeacon.core.html_links import (
    HONEYPOT_STYLE,
    HtmlPlan,
    clean_url,
    looks_like_url,
    pixel_block,
    plan_html,
    render,
    unescape_attr,
)
from tests.helpers.rewrite import (
    foreign_click_url,
    foreign_pixel_url,
    own,
    stale_click_url,
    stale_pixel_url,
)

PIXEL = "https://t.example.com/o/PIXEL.gif"
HONEYPOT = "https://t.example.com/c/HONEYPOT"


def _click(index: int, target: str) -> str:
    return f"https://t.example.com/c/L{index}"


def rewrite(html: str, *, track: bool = True, clicks: bool = True) -> tuple[str, HtmlPlan]:
    plan = plan_html(html, track=track, clicks=clicks, ours=own)
    return render(html, plan, PIXEL, HONEYPOT if clicks else None, _click), plan


def tracked_targets(html: str) -> list[str]:
    return [link.target for link in rewrite(html)[1].links]


# ------------------------------------------------------------------ rule 2: which links


@pytest.mark.parametrize(
    ("anchor", "target"),
    [
        ('<a href="https://example.com/a">Buy</a>', "https://example.com/a"),
        ('<a href="http://example.com/a">Buy</a>', "http://example.com/a"),
        ('<a href="HTTPS://Example.COM/A">Buy</a>', "HTTPS://Example.COM/A"),
        ('<a href="  https://example.com/a \n">Buy</a>', "https://example.com/a"),
        ('<a href="https://example.com/?a=1&amp;b=2">Buy</a>', "https://example.com/?a=1&b=2"),
        ('<a href="https&#58;//example.com/">Buy</a>', "https://example.com/"),
        ('<a href="https://example.com/?a=1&copy=2">Buy</a>', "https://example.com/?a=1&copy=2"),
        ("<a href='https://example.com/q'>Buy</a>", "https://example.com/q"),
        ("<a href=https://example.com/u>Buy</a>", "https://example.com/u"),
        ('<A HREF = "https://example.com/up">Buy</A>', "https://example.com/up"),
        (
            '<a class="x" id=y href="https://example.com/3" target=_blank>Buy</a>',
            "https://example.com/3",
        ),
        ('<a href="https://example.com/i"><img src="cid:logo"></a>', "https://example.com/i"),
        ('<a href="https://example.com/f">Report.pdf</a>', "https://example.com/f"),
        (
            '<a href="https://example.com/v">Visit www.example.com today</a>',
            "https://example.com/v",
        ),
        (
            '<a href="https://example.com/s"><span style="x">Save</span> <b>now</b></a>',
            "https://example.com/s",
        ),
        ('<a href="https://example.com/n">Buy', "https://example.com/n"),  # never closed
    ],
)
def test_http_links_with_ordinary_text_are_tracked(anchor: str, target: str) -> None:
    assert tracked_targets(f"<p>{anchor}</p>") == [target]


@pytest.mark.parametrize(
    "anchor",
    [
        '<a href="mailto:ann@example.org">Mail me</a>',
        '<a href="tel:+48123456789">Call</a>',
        '<a href="#section-2">Jump</a>',
        '<a href="/relative/path">Relative</a>',
        '<a href="example.com/no-scheme">No scheme</a>',
        '<a href="ftp://example.com/file">FTP</a>',
        '<a href="javascript:alert(1)">Script</a>',
        '<a href="https://">Empty host</a>',
        '<a name="top">Anchor only</a>',
        "<a href>No value</a>",
        '<a href="">Empty</a>',
        '<a href="https://x.example/a">www.example.com</a>',
        '<a href="https://x.example/a">https://x.y/z</a>',
        '<a href="https://x.example/a">  http://example.com/path?q=1  </a>',
        '<a href="https://x.example/a"><span>www.</span>example.com</a>',
        '<a href="https://x.example/a">example.com</a>',
        '<a href="https://x.example/a">&lt;https://example.com&gt;</a>',
        '<a href="https://x.example/a">WWW.EXAMPLE.COM/Path</a>',
        '<a href="https://x.example/a">mailto:ann@example.org</a>',
    ],
)
def test_other_links_and_links_whose_text_is_a_url_are_untouched(anchor: str) -> None:
    html = f"<html><body><p>{anchor}</p></body></html>"
    out, plan = rewrite(html)
    assert plan.links == ()
    assert out == html.replace("<body>", "<body>" + pixel_block(PIXEL, HONEYPOT))


@pytest.mark.parametrize("url", [stale_pixel_url(), foreign_pixel_url(), foreign_click_url("x")])
def test_a_link_to_a_tracking_url_is_not_wrapped_again(url: str) -> None:
    assert tracked_targets(f'<a href="{url}">x</a>') == []


def test_click_tracking_off_leaves_every_link_and_adds_no_honeypot() -> None:
    html = '<body><a href="https://example.com/a">Buy</a></body>'
    out, plan = rewrite(html, clicks=False)
    assert plan.links == ()
    assert out == f'<body>{pixel_block(PIXEL, None)}<a href="https://example.com/a">Buy</a></body>'
    assert HONEYPOT_STYLE not in out


def test_links_are_numbered_in_order_with_their_visible_text() -> None:
    html = (
        '<a href="https://e.example/0">First\n   link</a> <a href="mailto:x@y.z">m</a>'
        '<a href="https://e.example/1"><img src="a.png" alt="Alt"></a>'
        '<a href="https://e.example/2">Zażółć &amp; <b>gęślą</b></a>'
    )
    links = rewrite(html)[1].links
    assert [(link.index, link.target, link.text) for link in links] == [
        (0, "https://e.example/0", "First link"),
        (1, "https://e.example/1", ""),
        (2, "https://e.example/2", "Zażółć & gęślą"),
    ]


def test_rewritten_hrefs_are_attribute_encoded_and_keep_their_quotes() -> None:
    html = (
        "<a href='https://e.example/0'>a</a><a href=https://e.example/1>b</a>"
        '<a href="https://e.example/2">c</a>'
    )
    plan = plan_html(html, track=False, clicks=False)
    assert plan.links == ()
    plan = plan_html(html, track=True, clicks=True)
    out = render(html, plan, PIXEL, None, lambda i, t: f'https://t.example/c/{i}?a=1&b="2"')
    assert out.endswith(
        "<a href='https://t.example/c/0?a=1&amp;b=&quot;2&quot;'>a</a>"
        '<a href="https://t.example/c/1?a=1&amp;b=&quot;2&quot;">b</a>'
        '<a href="https://t.example/c/2?a=1&amp;b=&quot;2&quot;">c</a>'
    )


def test_the_target_minted_is_the_decoded_attribute_value() -> None:
    seen: list[tuple[int, str]] = []
    html = '<a href=" https://e.example/?q=a&amp;r=&lt;b&gt;&#x26;">x</a>'
    plan = plan_html(html, track=True, clicks=True)
    render(html, plan, PIXEL, None, lambda i, t: seen.append((i, t)) or "https://t/c/x")
    assert seen == [(0, "https://e.example/?q=a&r=<b>&")]


# ------------------------------------------------------------------ what is not a link


@pytest.mark.parametrize(
    "html",
    [
        '<!-- <a href="https://e.example/c">commented</a> -->',
        '<!--[if mso]><a href="https://e.example/mso">Outlook only</a><![endif]-->',
        '<style>a[href="https://e.example/s"]{color:red} <a href="https://e.example/s">x</a></style>',
        "<script>var s = '<a href=\"https://e.example/j\">x</a>';</script>",
        '<textarea><a href="https://e.example/t">x</a></textarea>',
        '<title><a href="https://e.example/t">x</a></title>',
        '<![CDATA[ <a href="https://e.example/cd">x</a> ]]>',
        '<p title="<a href=&quot;https://e.example/q&quot;>"></p>',
        "<p title='<a href=\"https://e.example/q\">x</a>'>text</p>",
        '<img alt="<a href=https://e.example/alt>x</a>" src="cid:x">',
        '<p data-x="a > b <a href=https://e.example/gt>">x</p>',
        '<!DOCTYPE html><?xml version="1.0"?><x-a href="https://e.example/xa">x</x-a>',
        '<abbr href="https://e.example/abbr">x</abbr><area href="https://e.example/area">',
    ],
)
def test_comments_raw_text_cdata_and_attribute_values_are_not_links(html: str) -> None:
    assert tracked_targets(html) == []




# ------------------------------------------------------------------ rule 1: the pixel


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<html><body><p>Hi</p></body></html>", "<html><body>{px}<p>Hi</p></body></html>"),
        (
            '<HTML><BODY class="x" >\n<p>Hi</p></BODY ></html>\n',
            '<HTML><BODY class="x" >{px}\n<p>Hi</p></BODY ></html>\n',
        ),
        (
            "<!-- <body> --><script>x='<body>'</script><body><p>a</p>",
            "<!-- <body> --><script>x='<body>'</script><body>{px}<p>a</p>",
        ),
        ("<body>a</body><body>b</body>", "<body>{px}a</body><body>b</body>"),
    ],
)
def test_the_pixel_goes_right_after_the_body_start_tag(html: str, expected: str) -> None:
    out, _ = rewrite(html, clicks=False)
    assert out == expected.replace("{px}", pixel_block(PIXEL, None))
    assert out.count(PIXEL) == 1


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Hi</p>", "{px}<p>Hi</p>"),
        ("\r\n<p>Hi</p>\r\n", "\r\n{px}<p>Hi</p>\r\n"),
        (
            "<!DOCTYPE html><!-- c --><html lang=pl><head><meta charset=utf-8>"
            "<title>a</title><style>p{}</style></head><p>Hi</p>",
            "<!DOCTYPE html><!-- c --><html lang=pl><head><meta charset=utf-8>"
            "<title>a</title><style>p{}</style></head>{px}<p>Hi</p>",
        ),
        ("<div>Hi</div><!-- never closed", "{px}<div>Hi</div><!-- never closed"),
        ("<!-- never closed", "{px}<!-- never closed"),
        ('<p>Hi <a href="x', '{px}<p>Hi <a href="x'),
        ("", "{px}"),
    ],
)
def test_without_body_the_pixel_goes_after_the_doctype_and_head(html: str, expected: str) -> None:
    out, _ = rewrite(html, clicks=False)
    assert out == expected.replace("{px}", pixel_block(PIXEL, None))


def test_the_pixel_is_early_enough_for_gmail_clipping_and_before_the_quote() -> None:
    # Gmail shows only the first ~102 KB of a long message: a pixel at the end is lost.
    html = (
        "<html><head><style>" + "p{}" * 100 + "</style></head><body><p>New text</p>"
        '<div class="gmail_quote"><blockquote>' + "<p>old text</p>" * 20_000
        + "</blockquote></div></body></html>"
    )
    out, _ = rewrite(html)
    assert out.index(PIXEL) < 2048
    assert out.index(PIXEL) < out.index("New text") < out.index("gmail_quote")


def test_pixel_markup_is_a_1x1_image_with_the_honeypot_link_next_to_it() -> None:
    # Invisible everywhere and no text for the preview line: empty alt, empty link.
    block = pixel_block(PIXEL, HONEYPOT)
    assert re.fullmatch(
        r'<a href="https://t.example.com/c/HONEYPOT" style="[^"]*display:none[^"]*" '
        r'aria-hidden="true" tabindex="-1"></a>'
        r'<img src="https://t.example.com/o/PIXEL.gif" width="1" height="1" alt="" style="[^"]*">',
        block,
    )


def test_untracked_html_gets_no_pixel() -> None:
    html = '<body><a href="https://e.example/a">Buy</a></body>'
    out, plan = rewrite(html, track=False)
    assert out == html
    assert plan.links == ()
    assert not plan.changed


# ------------------------------------------------------------------ rule 4: stale tracking


def test_the_reps_stale_pixels_from_any_server_address_are_removed_whole() -> None:
    old = stale_pixel_url()
    plain = stale_pixel_url("http://other.example.org:8080/prefix")
    html = (
        f'<body><p>Quoted:</p><img src="{old}" width="1" height="1">'
        f"<IMG SRC='{plain}' alt=''/>"
        '<img src="https://cdn.example.com/o/not-a-token.gif"></body>'
    )
    out, plan = rewrite(html, clicks=False)
    assert plan.stale == 2
    assert out == (
        "<body>"
        + pixel_block(PIXEL, None)
        + '<p>Quoted:</p><img src="https://cdn.example.com/o/not-a-token.gif"></body>'
    )


@pytest.mark.parametrize("track", [True, False])
def test_tracking_the_reps_key_does_not_verify_is_left_exactly_as_it_is(track: bool) -> None:
    # A forged /c/ link (the server answers 404) or another user's: unwrapping it and
    # tracking its target afresh would sign a target someone else chose.
    forged = foreign_click_url("https://evil.example/phish")
    other_user = stale_click_url("https://evil.example/x", user=8)
    pixel = foreign_pixel_url()
    html = (
        f'<body><a href="{forged}">Invoice</a><a href="{other_user}">Pay</a>'
        f'<img src="{pixel}"><!--[if mso]><v:roundrect href="{forged}"></v:roundrect>'
        f"<![endif]-->See {forged}</body>"
    )
    out, plan = rewrite(html, track=track)
    assert (plan.stale, plan.links) == (0, ())
    assert out.replace(pixel_block(PIXEL, HONEYPOT), "") == html
    assert "evil.example" not in "".join(_click(e.link, e.target) for e in plan.edits if e.link)


def test_a_stale_link_is_unwrapped_only_as_far_as_the_reps_key_verifies() -> None:
    forged_inside = foreign_click_url("https://evil.example/phish")
    outer = stale_click_url(forged_inside)
    out, plan = rewrite(f'<body><a href="{outer}">x</a></body>', track=False)
    assert plan.stale == 1 and plan.links == ()
    assert out == f'<body><a href="{forged_inside}">x</a></body>'


def test_stale_links_are_unwrapped_to_their_target_and_then_tracked_afresh() -> None:
    stale = stale_click_url("https://example.com/offer?a=1&b=2")
    html = f'<a href="{stale}">the offer</a>'
    out, plan = rewrite(html)
    assert plan.stale == 1
    assert [(link.target, link.text) for link in plan.links] == [
        ("https://example.com/offer?a=1&b=2", "the offer")
    ]
    assert out.endswith('<a href="https://t.example.com/c/L0">the offer</a>')


def test_stale_links_are_only_unwrapped_when_they_may_not_be_tracked() -> None:
    stale = stale_click_url('https://example.com/?a=1&b="2"')
    html = f"<a href={stale}>https://example.com/</a>"
    out, plan = rewrite(html)
    assert (plan.stale, plan.links) == (1, ())
    assert out.endswith('<a href="https://example.com/?a=1&amp;b=&quot;2&quot;">https://example.com/</a>')
    untracked, plan = rewrite(html, track=False)
    assert (
        untracked
        == '<a href="https://example.com/?a=1&amp;b=&quot;2&quot;">https://example.com/</a>'
    )


def test_a_stale_honeypot_link_is_removed_not_turned_into_a_visible_link() -> None:
    honeypot = stale_click_url("https://old.example.net/", index=tokens.HONEYPOT_LINK)
    html = f'<p>Hi</p><a href="{honeypot}" style="display:none"></a><p>Bye</p>'
    out, plan = rewrite(html, clicks=False)
    assert plan.stale == 1
    assert out == pixel_block(PIXEL, None) + "<p>Hi</p><p>Bye</p>"


def test_stale_tracking_hidden_in_conditional_comments_and_text_is_unwrapped_too() -> None:
    stale = stale_click_url("https://example.com/book")
    pixel = stale_pixel_url()
    html = (
        f'<!--[if mso]><v:roundrect href="{stale}"><img src="{pixel}"></v:roundrect>'
        f"<![endif]--><p>Copied: {stale}.</p>"
    )
    out, plan = rewrite(html, track=False)
    assert plan.stale == 3
    assert out == (
        '<!--[if mso]><v:roundrect href="https://example.com/book"></v:roundrect><![endif]-->'
        "<p>Copied: https://example.com/book.</p>"
    )


def test_a_doubly_wrapped_stale_link_unwraps_to_the_innermost_target() -> None:
    inner = stale_click_url("https://example.com/real")
    outer = stale_click_url(inner, host="https://third.example.org")
    assert tracked_targets(f'<a href="{outer}">go</a>') == ["https://example.com/real"]


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("text", "is_url"),
    [
        ("www.example.com", True),
        ("https://x.y/z", True),
        ("example.com", True),
        ("sub.example.co.uk/path?q=1", True),
        ("przykład.pl", True),
        ("(https://example.com)", True),
        ("Report.pdf", False),
        ("Click here", False),
        ("john@example.com", False),
        ("", False),
        ("Visit example.com", False),
        ("v1.2", False),
    ],
)
def test_looks_like_url(text: str, is_url: bool) -> None:
    assert looks_like_url(text) is is_url


def test_url_cleanup_follows_browsers() -> None:
    assert clean_url("\x00 https://e.example/a\tb\nc \r\n") == "https://e.example/abc"
    assert unescape_attr("a&amp;b&lt;&copy;&copy=1&notin;&notit;") == "a&b<©&copy=1∉¬it;"


# ------------------------------------------------------------------ properties

_FRAGMENTS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "text ",
        "<a href=",
        '<a href="https://e.example/x">',
        "<a href='http://e.example/y?a=1&amp;b=2'>",
        "<a href=https://e.example/z>",
        "</a>",
        "<img src=",
        '<img src="cid:x">',
        "<!--",
        "-->",
        "<!--[if mso]>",
        "<![endif]-->",
        "<style>",
        "</style>",
        "<script>",
        "</script>",
        "</body>",
        "<body>",
        '"',
        "'",
        "<",
        ">",
        "=",
        " ",
        "&amp;",
        "www.example.com",
        "<![CDATA[",
        "]]>",
        "<!",
        "</",
        "\n",
        "ż",
    ]
)
_HTML = st.one_of(
    st.lists(_FRAGMENTS, max_size=40).map("".join),
    st.text(max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(_HTML)
def test_output_equals_input_outside_the_changed_spans(html: str) -> None:
    plan = plan_html(html, track=True, clicks=True)
    expected: list[str] = []
    pos = 0
    for edit in plan.edits:
        assert pos <= edit.start <= edit.end <= len(html)  # in order, never overlapping
        expected.append(html[pos : edit.start])
        if edit.pixel:
            assert edit.start == edit.end
            expected.append(pixel_block(PIXEL, None))
        else:  # no stale tokens here: the only other edits are href values of tracked links
            assert edit.link is not None
            value = html[edit.start : edit.end]
            assert clean_url(unescape_attr(value)) == edit.target
            assert html[: edit.start].rstrip("\"'").rstrip(" \t\n\r\f=").lower().endswith("href")
            url = _click(edit.link, edit.target)
            expected.append(f'"{url}"' if edit.quote else url)
        pos = edit.end
    expected.append(html[pos:])
    assert sum(e.pixel for e in plan.edits) == 1
    assert render(html, plan, PIXEL, None, _click) == "".join(expected)


@settings(max_examples=200, deadline=None)
@given(_HTML)
def test_without_tracking_or_stale_tokens_nothing_changes(html: str) -> None:
    plan = plan_html(html, track=False, clicks=True)
    assert render(html, plan, None, None, _click) == html
    out, _ = rewrite(html, clicks=False)
    assert out.replace(pixel_block(PIXEL, None), "", 1) == html


_STALE_FRAGMENTS = st.sampled_from(
    [
        f'<img src="{stale_pixel_url()}">',
        f"<IMG SRC={stale_pixel_url()} />",
        f'<a href="{stale_click_url("https://example.com/a?b=1&c=2")}">',
        f'<a href="{stale_click_url("https://example.com/", index=tokens.HONEYPOT_LINK)}">',
        stale_click_url('https://example.com/"quoted" <b>'),
        stale_pixel_url(),
        f'<a href="{foreign_click_url("https://example.com/f")}">',
        f'<img src="{foreign_pixel_url()}">',
        "</a>",
        "<!--[if mso]>",
        "<![endif]-->",
        "<p>",
        "text",
        '"',
        "<",
        ">",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_STALE_FRAGMENTS, _FRAGMENTS), max_size=30).map("".join))
def test_after_stale_removal_nothing_stale_is_left(html: str) -> None:
    plan = plan_html(html, track=False, clicks=True, ours=own)
    out = render(html, plan, None, None, _click)
    again = plan_html(out, track=False, clicks=True, ours=own)
    assert (again.stale, again.edits) == (0, ())
    assert out.count("/o/") <= html.count("/o/")
    for foreign in (foreign_click_url("https://example.com/f"), foreign_pixel_url()):
        assert out.count(foreign) == html.count(foreign)  # someone else's: left as it is
