"""Reading IMAP responses: FETCH attributes with literals, quoting, dates."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.agent.mailbox.imap_parse import parse_fetch, quote
from mailbeacon.agent.mailbox.watch import (
    ImapState,
    ImapStatus,
    StateFile,
    WatchState,
    _internaldate,
    build_watcher,
)
from mailbeacon.agent.settings.errors import SettingError


def fetch(data: bytes) -> dict[str, object]:
    prefix = b"* 12 FETCH"
    assert data.startswith(prefix)
    return parse_fetch(data, len(prefix))


def test_a_header_fetch_with_a_literal() -> None:
    header = b"From: a@b.c\r\nSubject: (hi) \"x\"\r\n\r\n"
    data = (
        b"* 12 FETCH (UID 345 RFC822.SIZE 2048 INTERNALDATE \"01-Jan-2030 10:00:00 +0000\" "
        b"BODY[HEADER] {" + str(len(header)).encode() + b"}\r\n" + header + b")"
    )
    items = fetch(data)
    assert items["UID"] == 345
    assert items["RFC822.SIZE"] == 2048
    assert items["INTERNALDATE"] == b"01-Jan-2030 10:00:00 +0000"
    assert items["BODY[HEADER]"] == header


def test_attributes_in_any_order_with_flags_and_nil() -> None:
    items = fetch(b"* 12 FETCH (FLAGS (\\Seen $Label) BODY[]<0> NIL UID 7)")
    assert items["FLAGS"] == [b"\\Seen", b"$Label"]
    assert items["BODY[]<0>"] is None
    assert items["UID"] == 7


def test_a_section_with_spaces_and_parentheses_is_one_name() -> None:
    items = fetch(b'* 12 FETCH (UID 1 BODY[HEADER.FIELDS (FROM SUBJECT)] "x")')
    assert items["BODY[HEADER.FIELDS (FROM SUBJECT)]"] == b"x"


def test_a_literal_may_hold_parentheses_and_braces() -> None:
    body = b") {99}\r\n ( \""
    items = fetch(b"* 12 FETCH (BODY[] {" + str(len(body)).encode() + b"}\r\n" + body + b" UID 3)")
    assert items["BODY[]"] == body
    assert items["UID"] == 3


def test_a_quoted_string_with_escapes() -> None:
    assert fetch(b'* 12 FETCH (X "a\\"b\\\\c")')["X"] == b'a"b\\c'


@given(st.binary(max_size=300))
def test_garbage_never_raises_or_hangs(data: bytes) -> None:
    parse_fetch(b"* 1 FETCH " + data, 10)


def test_quote_escapes_and_refuses_line_breaks() -> None:
    assert quote('pa"ss\\word') == '"pa\\"ss\\\\word"'
    with pytest.raises(ValueError, match="CR and LF"):
        quote("a\r\nb")


def test_internaldate() -> None:
    assert _internaldate(b" 1-Feb-2030 09:05:00 +0200") == datetime(
        2030, 2, 1, 9, 5, tzinfo=timezone(timedelta(hours=2))
    )
    assert _internaldate(b"not a date") is None
    assert _internaldate(None) is None


@pytest.mark.expect_log("damaged IMAP state file")
def test_the_state_file_round_trips_and_survives_damage(tmp_path: Path) -> None:
    state_file = StateFile(tmp_path / "imap_state.json")
    assert state_file.load() is None
    state = WatchState("imaps://u@h:993/INBOX", 42, 1001, 1_900_000_000.5)
    state_file.save(state)
    assert state_file.load() == state
    state_file.path.write_text("{not json")
    assert state_file.load() is None


def test_build_watcher_reads_the_settings(tmp_path: Path) -> None:
    async def handler(_message: object) -> None:
        return None

    assert build_watcher("", False, lambda: None, tmp_path, handler) is None
    watcher = build_watcher("imaps://rep@mail.example.com", False, lambda: "pw", tmp_path, handler)
    assert watcher is not None
    assert (watcher.url.host, watcher.url.port, watcher.url.security) == (
        "mail.example.com", 993, "tls",
    )
    assert watcher.account == "imaps://rep@mail.example.com:993/INBOX"
    with pytest.raises(SettingError, match="user name"):
        build_watcher("imaps://mail.example.com", False, lambda: "pw", tmp_path, handler)


def test_status_problems_are_sentences_for_the_rep() -> None:
    assert ImapStatus(ImapState.CONNECTED).problem is None
    wrong = ImapStatus(ImapState.WRONG_PASSWORD, "the mail server refused the password")
    assert wrong.problem == "Replies are not being watched: the mail server refused the password"


@pytest.mark.expect_log("password cannot be read")
async def test_a_password_that_cannot_be_read_is_reported_not_raised(tmp_path: Path) -> None:
    errors: asyncio.Queue[ImapStatus] = asyncio.Queue()

    def on_status(status: ImapStatus) -> None:
        if status.state is ImapState.ERROR:
            errors.put_nowait(status)

    def locked_keyring() -> str:
        raise RuntimeError("The OS keyring is unavailable; unlock it")

    async def handler(_message: object) -> None:
        return None

    watcher = build_watcher(
        "imap://rep@127.0.0.1:1", False, locked_keyring, tmp_path, handler, on_status
    )
    assert watcher is not None
    watcher.start()
    status = await asyncio.wait_for(errors.get(), 10)
    await watcher.stop()
    assert status.detail == (
        "the IMAP password cannot be read: The OS keyring is unavailable; unlock it"
    )
    assert watcher.status.state is ImapState.STOPPED
