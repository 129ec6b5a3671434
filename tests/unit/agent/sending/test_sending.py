"""The sending pipeline's own rules: Track/Log decision, Message-ID, To/Cc/Bcc."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import (
    Decision,
    Sender,
    decide,
    ensure_message_id,
    recipient_fields,
)
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.urls import TrackingUrls


def incoming(track: bool | None, log: bool | None) -> IncomingMessage:
    return IncomingMessage("rep@x.example", ("a@y.example",), b"Subject: s\r\n\r\nbody", track, log)


def test_message_overrides_win_over_defaults() -> None:
    settings = Settings()
    settings.set("defaults.track", "true")
    settings.set("defaults.log", "false")
    assert decide(incoming(None, None), settings) == Decision(track=True, log=False)
    assert decide(incoming(False, True), settings) == Decision(track=False, log=True)


def test_a_message_id_is_added_only_when_missing() -> None:
    raw, mid = ensure_message_id(b"Subject: s\r\n\r\nbody", "rep.example")
    assert raw.startswith(b"Message-ID: <") and mid.endswith("@rep.example>")
    assert raw.endswith(b"Subject: s\r\n\r\nbody")
    kept, same = ensure_message_id(b"Message-ID: <a@b>\r\nSubject: s\r\n\r\nx", "rep.example")
    assert same == "<a@b>" and kept.startswith(b"Message-ID: <a@b>")


def test_recipients_not_in_to_or_cc_were_bcc() -> None:
    raw = (
        b"To: =?utf-8?q?Nowak=2C_Alicja?= <alicja@client.example>, jan@client.example\r\n"
        b"Cc: Ewa <EWA@client.example>\r\n\r\nbody"
    )
    envelope = ("alicja@client.example", "jan@client.example", "ewa@client.example",
                "boss@rep.example")
    assert recipient_fields(raw, envelope) == {
        "alicja@client.example": ("to", "Nowak, Alicja"),
        "jan@client.example": ("to", ""),
        "ewa@client.example": ("cc", "Ewa"),
        "boss@rep.example": ("bcc", ""),
    }


class FullDisk:
    """An outbox whose spool cannot be written (though it seemed to have room)."""

    async def ensure_space(self, _size: int) -> None:
        return None

    async def enqueue_many(self, _items: object) -> list[str]:
        raise OSError(28, "No space left on device")


async def test_mail_that_cannot_be_queued_leaves_no_sent_record(tmp_path: Path) -> None:
    store = RecordsStore(tmp_path / "records.db")
    store.upsert_contact("known@client.example", name="Known")
    enrollment = Enrollment("http://127.0.0.1:1", 1, "t", b"k" * 32)
    sender = Sender(store, FullDisk(), TrackingUrls(enrollment), Settings)  # type: ignore[arg-type]
    raw = (b"From: rep@rep.example\r\nTo: new@client.example, known@client.example\r\n"
           b"Subject: S\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n")
    message = IncomingMessage("rep@rep.example", ("new@client.example", "known@client.example"),
                              raw, None, True)
    with pytest.raises(OSError, match="No space"):
        await sender.accept(message)
    assert store.activity() == []
    assert store.contact("new@client.example") is None
    assert store.contact("known@client.example") is not None  # it was there before
    assert store.contact_record("known@client.example").timeline == ()  # type: ignore[union-attr]
    store.close()
