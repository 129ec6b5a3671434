"""The corpus sent through MailBeacon's real relay path, three ways.

Each email of ``tests/data/deliverability/`` goes to the real relay (SMTP AUTH,
control channel), ``Sender.accept`` (rewrite, records, durable outbox) and the
outbox's real SMTP delivery to an ``SmtpSink`` upstream: once untracked
(``X-MailBeacon-Track: no``), once tracked with the defaults (pixel and links), and
once clicks only (``X-MailBeacon-Track: clicks`` and the setting
``tracking.opens`` off). The tracking URL is a hostname one over https,
``https://track.acme-sales.com``, as docs/rules.md "The tracking domain"
recommends; nothing is fetched from it.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Sender
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.relay import Relay
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.urls import TrackingUrls
from tests.helpers import paths
from tests.helpers.smtp import SmtpSink

CORPUS = paths.DATA / "deliverability"
TRACKING_URL = "https://track.acme-sales.com"
TRACKING_HOST = "track.acme-sales.com"
RELAY_PASSWORD = "deliverability-relay"
MODES = ("untracked", "tracked", "clicks")
_HEADERS = {"untracked": b"no", "tracked": b"yes", "clicks": b"clicks"}


@dataclass(frozen=True)
class Sent:
    """One corpus email as the upstream received it, each way."""

    name: str
    mail_from: str
    rcpt: str
    original: bytes
    delivered: dict[str, bytes]  # mode -> the bytes the upstream got


def corpus() -> list[tuple[str, bytes]]:
    """The corpus files, in name order."""
    return [(p.stem, p.read_bytes()) for p in sorted(CORPUS.glob("*.eml"))]


def _envelope(raw: bytes) -> tuple[str, str]:
    headers = BytesHeaderParser().parsebytes(raw)
    mail_from = getaddresses([str(headers["From"])])[0][1]
    rcpt = getaddresses([str(headers["To"])])[0][1]
    return mail_from, rcpt


def _message_id(raw: bytes) -> str:
    return str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).strip()


def _submit(port: int, mail_from: str, rcpt: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.login("mailbeacon", RELAY_PASSWORD)
        client.sendmail(mail_from, [rcpt], data)


async def send_corpus(workdir: Path) -> list[Sent]:
    """Send every corpus email three ways through the real relay; what arrived."""
    emails = corpus()
    settings = Settings()
    enrollment = Enrollment(TRACKING_URL, 1, "api-token", b"d" * 32)
    received: dict[str, dict[str, bytes]] = {name: {} for name, _raw in emails}
    with SmtpSink() as sink, RecordsStore(workdir / "records.db") as store:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
        outbox = Outbox(workdir / "outbox", upstream)
        sender = Sender(store, outbox, TrackingUrls(enrollment), lambda: settings)
        relay = Relay(sender.accept, RELAY_PASSWORD)
        await outbox.start()
        await relay.start()
        try:
            for mode in MODES:
                settings = Settings()
                if mode == "clicks":
                    settings.set("tracking.opens", "false")
                before = len(sink.received)
                for _name, raw in emails:
                    mail_from, rcpt = _envelope(raw)
                    data = b"X-MailBeacon-Track: " + _HEADERS[mode] + b"\r\n" + raw
                    await asyncio.to_thread(_submit, relay.port, mail_from, rcpt, data)
                arrived = await sink.until(before + len(emails), within=60)
                by_id = {e.message_id: e.data for e in arrived[before:]}
                for name, raw in emails:
                    received[name][mode] = by_id[_message_id(raw)]
        finally:
            await relay.stop()
            await outbox.stop()
    out = []
    for name, raw in emails:
        mail_from, rcpt = _envelope(raw)
        out.append(Sent(name, mail_from, rcpt, raw, received[name]))
    return out
