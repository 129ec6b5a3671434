"""A small records store with contacts, a logged email and events, for the contacts,
record, email viewer and reports windows; and a loopback HTTP server that counts hits."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mailbeacon.agent.records.model import Attachment, LoggedCopy
from mailbeacon.agent.records.store import RecordsStore
from tests.helpers.activity import CHROME, HTML_SUBJECT
from tests.helpers.records import event, sent_email

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


PNG = _png(40, 20, (200, 30, 30))


def logged_html(remote_base: str) -> str:
    """An email body that would load four remote things if a viewer let it."""
    return (
        f'<html><head><link rel="stylesheet" href="{remote_base}/style.css"></head>'
        f'<body background="{remote_base}/bg.png">'
        "<p>Hello <b>Alicja</b>, here is <a href=\"https://example.com/offer\">the offer</a>.</p>"
        '<p><img src="cid:logo.png@mail.example" alt="logo"></p>'
        f'<table background="{remote_base}/table.png"><tr><td>quoted</td></tr></table>'
        f'<img src="{remote_base}/o/x.gif" width="1" height="1">'
        "</body></html>"
    )


def fill_records(store: RecordsStore, remote_base: str = "http://127.0.0.1:9") -> dict[str, int]:
    """Alice (named, with a logged email) and Bob (address only); returns ids by name."""
    store.upsert_contact("alice@example.com", name="Alicja Nowak", company="Client <i>Ltd</i>")
    store.set_lawful_basis("alice@example.com", "consent")
    logged = store.record_sent(
        sent_email("alice@example.com", subject=HTML_SUBJECT, sent_at="2030-01-01T09:00:00Z",
                   log=True)
    )
    store.log_copy(
        logged,
        LoggedCopy(
            html=logged_html(remote_base),
            text="Hello Alicja, here is the offer.",
            attachments=(
                Attachment("offer.pdf", "application/pdf", PDF),
                Attachment("logo.png", "image/png", PNG),
            ),
        ),
    )
    unlogged = store.record_sent(
        sent_email("bob@example.com", subject="Quarterly numbers", sent_at="2030-01-02T09:00:00Z")
    )
    specs = {
        "alice_open": event("open", "2030-01-01T10:00:00Z", email_id=logged,
                            contact="alice@example.com", user_agent=CHROME, ip="203.0.113.7"),
        "alice_click": event("click", "2030-01-01T10:05:00Z", email_id=logged,
                             contact="alice@example.com", user_agent=CHROME,
                             url="https://example.com/offer"),
        "bot_open": event("open", "2030-01-01T09:00:01Z", email_id=logged,
                          contact="alice@example.com", verdict="bot",
                          reason="known scanner: Barracuda"),
        "anonymous": event("open", "2030-01-02T10:00:00Z", email_id=unlogged, anonymous=True),
        "bob_reply": event("reply", "2030-01-02T11:00:00Z", email_id=unlogged,
                           contact="bob@example.com", server_id=None, local_key="reply:bob"),
    }
    ids = {"logged": logged, "unlogged": unlogged}
    for name, record in specs.items():
        stored = store.add_event(record)
        assert stored is not None
        ids[name] = stored
    store.update_contact_engagement("alice@example.com", "open", "2030-01-01T10:00:00Z")
    store.update_contact_engagement("alice@example.com", "click", "2030-01-01T10:05:00Z")
    store.update_contact_engagement("bob@example.com", "reply", "2030-01-02T11:00:00Z")
    return ids


@dataclass
class HitCounter:
    """What a loopback HTTP server was asked for."""

    paths: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, path: str, timeout: float = 10.0) -> list[str]:
        """Block until ``path`` was requested; returns every path seen so far."""
        with self.cond:
            seen = self.cond.wait_for(lambda: path in self.paths, timeout)
            got = list(self.paths)
        assert seen, f"{path} was not requested within {timeout}s (saw {got})"
        return got


@contextmanager
def counting_http_server() -> Iterator[tuple[str, HitCounter]]:
    """A loopback HTTP server answering 200 to everything and recording each path."""
    counter = HitCounter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with counter.cond:
                counter.paths.append(self.path)
                counter.cond.notify_all()
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="hit-counter", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
