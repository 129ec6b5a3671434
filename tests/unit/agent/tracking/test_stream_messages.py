"""Stream messages as the agent reads them."""

from __future__ import annotations

import json

import pytest

from mailbeacon.agent.tracking.stream import parse_message, stream_url
from mailbeacon.core.events import Revision, ServerEvent


def test_a_revision_keeps_whether_the_event_still_counts() -> None:
    revised = parse_message('{"type": "revise", "id": 7, "verdict": "proxy", "reason": "r",'
                            ' "counts": true}')
    assert revised == Revision(7, "proxy", "r", True) and revised.counts_as_human
    plain = parse_message('{"type": "revise", "id": 7, "verdict": "bot", "reason": "r"}')
    assert isinstance(plain, Revision) and not plain.counts_as_human


@pytest.mark.expect_log("cannot read")
def test_an_event_round_trips_and_unreadable_messages_are_skipped() -> None:
    event = ServerEvent(1, "open", "m", None, "2030-01-01T00:00:00Z", "127.0.0.9", "UA",
                        "proxy", "Gmail image proxy", counts=True, via="Gmail")
    assert parse_message(json.dumps(event.to_json())) == event
    assert parse_message("not json") is None
    assert parse_message('{"type": "open"}') is None


def test_stream_url_follows_the_server_url() -> None:
    assert stream_url("http://127.0.0.1:8725", 5) == "ws://127.0.0.1:8725/v1/stream?after=5"
    assert stream_url("https://t.example.com/mb/", 0) == (
        "wss://t.example.com/mb/v1/stream?after=0")
