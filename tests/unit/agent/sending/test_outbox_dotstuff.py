"""DATA content streamed in pieces equals what aiosmtplib would send for the whole message."""

from __future__ import annotations

import itertools

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.agent.sending.upstream import DotStuffer


def whole(message: bytes) -> bytes:
    """aiosmtplib's transform of a complete message (without the final dot line)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))


def streamed(message: bytes, cuts: list[int]) -> bytes:
    stuffer = DotStuffer()
    edges = sorted({0, len(message), *(c % (len(message) + 1) for c in cuts)})
    pieces = [stuffer.feed(message[a:b]) for a, b in itertools.pairwise(edges)]
    return b"".join(pieces) + stuffer.finish()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n"),
        (b".first\r\n", b"..first\r\n"),
        (b"a\nb\rc", b"a\r\nb\r\nc\r\n"),
        (b"a\r\n.\r\n", b"a\r\n..\r\n"),
        (b"end with cr\r", b"end with cr\r\n"),
    ],
)
def test_examples(message: bytes, expected: bytes) -> None:
    assert streamed(message, []) == expected
    assert streamed(message, list(range(len(message)))) == expected  # one byte at a time


@given(
    message=st.lists(
        st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"x.y", b"\r\n.", b"\xc3\xa9"]),
        max_size=40,
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_matches_aiosmtplib_for_any_split(message: bytes, cuts: list[int]) -> None:
    if message:
        assert streamed(message, cuts) == whole(message)
