"""What must never regress: tracking costs the rep no deliveries (issue 21).

The corpus (12 one-to-one sales emails, English and Polish, Gmail-, Outlook-,
Thunderbird- and Apple-Mail-shaped) goes through the real relay untracked, tracked
and clicks only with the tracking URL ``https://track.acme-sales.com``, and is
scored by SpamAssassin and Rspamd running on this machine
(``tests/deliverability/filters.py``). The full table:
``.venv/bin/python -m tests.deliverability``.
"""

from __future__ import annotations

import re

import pytest

from tests.deliverability.pipeline import TRACKING_HOST, Sent
from tests.deliverability.report import ALLOWED_SA_PREFIX, Row

PIXEL = re.compile(rb"https://track\.acme-sales\.com/o/[A-Za-z0-9_-]+\.gif")
CLICK = re.compile(rb"https://track\.acme-sales\.com/c/[A-Za-z0-9_-]+")


def _family(rule: str) -> str:
    """HTML_IMAGE_ONLY_16 -> HTML_IMAGE_ONLY: SpamAssassin's HTML-length bands."""
    return re.sub(r"_\d+$", "", rule)


def _new_families(row: Row, mode: str) -> set[str]:
    """Rule families ``mode`` fires that the untracked email did not: a move to another
    band of a length-banded rule the email already had is not new."""
    before = {_family(r) for r in row.scores["untracked"].rules}
    return {_family(r) for r in row.added(mode)} - before


def _decoded(raw: bytes) -> bytes:
    import email
    from email import policy

    out = []
    for part in email.message_from_bytes(raw, policy=policy.default).walk():
        if part.get_content_maintype() == "text":
            out.append(part.get_payload(decode=True) or b"")
    return b"\n".join(out)


def test_the_corpus_went_through_the_relay_each_way(sent: list[Sent]) -> None:
    assert len(sent) == 12
    for s in sent:
        assert s.delivered["untracked"] == s.original, s.name
        tracked, clicks = _decoded(s.delivered["tracked"]), _decoded(s.delivered["clicks"])
        if s.name.endswith("plain_en"):  # plain-text only: untouched either way
            assert s.delivered["tracked"] == s.delivered["clicks"] == s.original
            continue
        assert len(set(PIXEL.findall(tracked))) == 1, s.name
        assert PIXEL.findall(clicks) == [] and CLICK.search(clicks), s.name


def test_the_plain_text_alternative_carries_the_same_click_urls(sent: list[Sent]) -> None:
    import email
    from email import policy
    from email.message import EmailMessage

    for s in sent:
        msg = email.message_from_bytes(s.delivered["tracked"], policy=policy.default)
        assert isinstance(msg, EmailMessage)
        plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
        if plain is None or html is None:
            continue
        in_plain = set(CLICK.findall(plain.get_content().encode()))
        in_html = set(CLICK.findall(html.get_content().encode()))
        assert in_plain and in_plain <= in_html, s.name


@pytest.mark.needs_program("spamassassin")
def test_tracking_adds_no_spamassassin_rule_outside_html_image_only(sa_rows: list[Row]) -> None:
    for row in sa_rows:
        added = row.added("tracked")
        # T_REMOTE_IMAGE is a 0.01-point testing rule for "a remote image": the pixel is
        # one, and hiding it from filters would be a trick (docs/rules.md rule 1). Longer
        # HTML may move a length-banded rule the email already had (its logo link:
        # HTML_SHORT_LINK_IMG_2 -> _3) to another band.
        outside = _new_families(row, "tracked") - {ALLOWED_SA_PREFIX, "T_REMOTE_IMAGE"}
        assert not outside, (row.email, added)
        assert added.get("T_REMOTE_IMAGE", 0.0) <= 0.01


@pytest.mark.needs_program("spamassassin")
def test_clicks_only_adds_no_spamassassin_rule(sa_rows: list[Row]) -> None:
    for row in sa_rows:
        # Longer click URLs lengthen the HTML, and SpamAssassin's HTML_IMAGE_ONLY_nn bands
        # go by the HTML's length: an email that already has an image (a signature logo)
        # and that rule may move to the next band. No new rule, no rule on the URLs.
        assert _new_families(row, "clicks") == set(), (row.email, row.added("clicks"))


@pytest.mark.needs_program("rspamd")
def test_tracking_and_clicks_only_add_nothing_on_rspamd(rspamd_rows: list[Row]) -> None:
    for row in rspamd_rows:
        assert row.added("tracked") == {} and row.removed("tracked") == {}, row.email
        assert row.added("clicks") == {} and row.removed("clicks") == {}, row.email
        assert row.scores["tracked"].total == row.scores["untracked"].total


@pytest.mark.needs_program("rspamd")
def test_no_rspamd_rule_fires_on_the_click_urls(rspamd_rows: list[Row]) -> None:
    for row in rspamd_rows:
        for mode in ("tracked", "clicks"):
            hits = {
                name: options
                for name, options in row.scores[mode].options.items()
                if any(TRACKING_HOST in option for option in options)
            }
            assert hits == {}, (row.email, mode, hits)
