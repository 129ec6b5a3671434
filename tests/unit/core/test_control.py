"""The per-message control channel: BCC addresses and X-MailBeacon headers (docs/interfaces.md)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.control import control_of, decide, is_control_address

BODY = b"Hello,\r\n\r\nX-MailBeacon-Track: no in the body is just text.\r\n"


def msg(*headers: str, body: bytes = BODY, eol: bytes = b"\r\n") -> bytes:
    head = eol.join(h.encode() for h in headers)
    return head + eol + eol + body.replace(b"\r\n", eol)


def test_no_controls_returns_the_same_bytes_object_and_defaults() -> None:
    raw = msg("From: rep@x.example", "To: b@y.example", "Subject: hi")
    decision = decide(["b@y.example"], raw)
    assert decision.track is None and decision.log is None
    assert decision.recipients == ("b@y.example",)
    assert decision.message is raw


@pytest.mark.parametrize(
    ("address", "track", "log"),
    [
        ("track@mailbeacon.invalid", True, None),
        ("notrack@mailbeacon.invalid", False, None),
        ("log@mailbeacon.invalid", None, True),
        ("nolog@mailbeacon.invalid", None, False),
        ("NoTrack@MailBeacon.INVALID", False, None),
    ],
)
def test_bcc_control_address_sets_the_switch_and_leaves_the_envelope(
    address: str, track: bool | None, log: bool | None
) -> None:
    raw = msg("From: rep@x.example", "To: b@y.example", "Subject: hi")
    decision = decide(["b@y.example", address, "c@z.example"], raw)
    assert (decision.track, decision.log) == (track, log)
    assert decision.recipients == ("b@y.example", "c@z.example")
    assert decision.message is raw


def test_headers_set_switches_and_are_removed_with_their_folded_lines() -> None:
    raw = msg(
        "From: rep@x.example",
        "X-MailBeacon-Track: no",
        "To: b@y.example",
        "x-mailbeacon-log:\r\n   YES",
        "Subject: hi",
    )
    decision = decide(["b@y.example"], raw)
    assert (decision.track, decision.log) == (False, True)
    assert decision.message == msg("From: rep@x.example", "To: b@y.example", "Subject: hi")


def test_no_wins_over_yes_whatever_the_channel() -> None:
    raw = msg("X-MailBeacon-Track: yes", "X-MailBeacon-Log: no", "To: b@y.example")
    decision = decide(["b@y.example", "notrack@mailbeacon.invalid", "log@mailbeacon.invalid"], raw)
    assert (decision.track, decision.log) == (False, False)


def test_control_addresses_in_to_cc_bcc_headers_are_removed_others_kept_verbatim() -> None:
    raw = msg(
        "From: rep@x.example",
        'To: "Bob, Jr." <b@y.example>, track@mailbeacon.invalid',
        "Cc: Log <log@mailbeacon.invalid>",
        "Bcc: notrack@mailbeacon.invalid,\r\n c@z.example (Carol)",
        "Subject: hi",
    )
    decision = decide(
        ["b@y.example", "c@z.example", "track@mailbeacon.invalid", "log@mailbeacon.invalid"],
        raw,
    )
    parsed = message_from_bytes(decision.message, policy=policy.default)
    assert parsed["To"] == '"Bob, Jr." <b@y.example>'
    assert parsed["Cc"] is None
    assert b"\r\nBcc: c@z.example (Carol)\r\n" in decision.message
    assert b"mailbeacon.invalid" not in decision.message.lower()
    assert decision.message.endswith(b"\r\n\r\n" + BODY)
    assert (decision.track, decision.log) == (True, True)


def test_group_syntax_survives_removal_of_a_member() -> None:
    raw = msg("To: Team: a@y.example, track@mailbeacon.invalid;, d@z.example")
    decision = decide(["a@y.example", "d@z.example"], raw)
    parsed = message_from_bytes(decision.message, policy=policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["a@y.example", "d@z.example"]
    assert parsed["To"].groups[0].display_name == "Team"


def test_unknown_control_address_never_reaches_anyone_and_is_noted() -> None:
    raw = msg("To: b@y.example, weird@mailbeacon.invalid")
    decision = decide(["b@y.example", "weird@mailbeacon.invalid"], raw)
    assert decision.recipients == ("b@y.example",)
    assert b"mailbeacon.invalid" not in decision.message
    assert decision.track is None
    assert any("weird@mailbeacon.invalid" in note for note in decision.notes)


def test_unknown_header_value_is_ignored_but_removed() -> None:
    raw = msg("X-MailBeacon-Track: maybe", "X-MailBeacon-Colour: blue", "To: b@y.example")
    decision = decide(["b@y.example"], raw)
    assert decision.track is None
    assert decision.message == msg("To: b@y.example")
    assert len(decision.notes) == 2


def test_only_top_level_headers_count_not_the_body_or_attached_messages() -> None:
    body = b"--b\r\nContent-Type: text/plain\r\nX-MailBeacon-Track: no\r\n\r\nx\r\n--b--\r\n"
    raw = msg("To: b@y.example", 'Content-Type: multipart/mixed; boundary="b"', body=body)
    decision = decide(["b@y.example"], raw)
    assert decision.track is None
    assert decision.message is raw


def test_bare_lf_messages_keep_their_line_endings() -> None:
    raw = msg("X-MailBeacon-Log: no", "To: b@y.example, nolog@mailbeacon.invalid", eol=b"\n")
    decision = decide(["b@y.example"], raw)
    assert decision.log is False
    assert decision.message == msg("To: b@y.example", eol=b"\n")


def test_eight_bit_headers_pass_byte_identical() -> None:
    raw = msg("From: Zoë <rep@x.example>", "X-MailBeacon-Track: yes", "Subject: Grüße")
    decision = decide(["b@y.example"], raw)
    assert decision.message == msg("From: Zoë <rep@x.example>", "Subject: Grüße")


def test_duplicate_envelope_recipients_are_sent_once() -> None:
    decision = decide(["b@y.example", "b@y.example"], msg("To: b@y.example"))
    assert decision.recipients == ("b@y.example",)


def test_address_helpers() -> None:
    assert is_control_address("<Track@mailbeacon.invalid>")
    assert is_control_address("anything@mailbeacon.invalid.")
    assert not is_control_address("track@mailbeacon.invalid.example")
    assert control_of("nolog@mailbeacon.invalid") == ("log", False)
    assert control_of("weird@mailbeacon.invalid") is None
    assert control_of("b@y.example") is None


_local = st.text(alphabet="abcdefghij.-+", min_size=1, max_size=8)
_rcpt = st.builds(lambda a, d: f"{a}@{d}.example", _local, st.sampled_from(["y", "z", "q"]))
_control = st.sampled_from(["track", "notrack", "log", "nolog", "other"]).map(
    lambda local: f"{local}@mailbeacon.invalid"
)


@given(
    real=st.lists(_rcpt, max_size=4),
    controls=st.lists(_control, max_size=4),
    in_headers=st.booleans(),
    header_track=st.sampled_from([None, "yes", "no"]),
)
def test_no_control_trace_ever_survives(
    real: list[str], controls: list[str], in_headers: bool, header_track: str | None
) -> None:
    headers = ["From: rep@x.example"]
    if in_headers:
        headers.append("To: " + ", ".join([*real, *controls]))
    if header_track:
        headers.append(f"X-MailBeacon-Track: {header_track}")
    decision = decide([*real, *controls], msg(*headers))
    assert b"mailbeacon.invalid" not in decision.message.lower()
    assert b"x-mailbeacon-" not in decision.message.split(b"\r\n\r\n")[0].lower()
    assert not any(is_control_address(r) for r in decision.recipients)
    assert set(decision.recipients) == set(real)
    said_no = "notrack@mailbeacon.invalid" in controls or header_track == "no"
    said_yes = "track@mailbeacon.invalid" in controls or header_track == "yes"
    assert decision.track == (False if said_no else True if said_yes else None)


@pytest.mark.parametrize(
    ("recipients", "headers", "track", "opens"),
    [
        (["clicks@mailbeacon.invalid"], [], True, False),
        ([], ["X-MailBeacon-Track: clicks"], True, False),
        ([], ["X-MailBeacon-Track: Clicks-Only"], True, False),
        (["track@mailbeacon.invalid", "clicks@mailbeacon.invalid"], [], True, False),
        (["notrack@mailbeacon.invalid"], ["X-MailBeacon-Track: clicks"], False, False),
        (["track@mailbeacon.invalid"], [], True, None),
        ([], ["X-MailBeacon-Track: yes"], True, None),
    ],
)
def test_clicks_only_is_tracking_without_the_pixel_and_no_still_wins(
    recipients: list[str], headers: list[str], track: bool, opens: bool | None
) -> None:
    raw = msg("From: rep@x.example", *headers, "To: b@y.example", "Subject: hi")
    decision = decide(["b@y.example", *recipients], raw)
    assert (decision.track, decision.opens) == (track, opens)
    assert decision.recipients == ("b@y.example",)
    assert decision.message == msg("From: rep@x.example", "To: b@y.example", "Subject: hi")
    assert control_of("CLICKS@mailbeacon.invalid") == ("track", True)


def test_a_long_folded_header_keeps_every_line_and_loses_only_the_controls() -> None:
    """Fields are rebuilt line by line (once quadratic: `python -m tests.bench rewrite`)."""
    folded = b"".join(b" word%d\r\n" % i for i in range(5_000))
    message = (b"X-MailBeacon-Track: no\r\nSubject: long\r\n" + folded
               + b"To: b@y.example\r\n\r\nbody\r\n")  # fmt: skip
    decision = decide(["b@y.example"], message)
    assert decision.track is False
    assert decision.message == b"Subject: long\r\n" + folded + b"To: b@y.example\r\n\r\nbody\r\n"
