"""The follow-up loop assembled in-process over real parts, with a clock the test moves.

    async with FollowupRig(tmp_path, sink) as rig:
        rig.submit(message)            # a mail client's SMTP submission to the real relay
        rig.clock.advance(3600)
        await rig.tick()               # one pass of the loop
        rig.sink.wait_for(1)

Real relay, real Sender (rewrite, records on a SQLite file, durable outbox) delivering
to a real aiosmtpd sink; the loop's passes are driven by the test (``tick``) so every
rule is checked against the injected clock. ``restart`` stops everything and starts
it again on the same files, as an agent restart would.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field
from datetime import tzinfo
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from mailbeacon.agent.followup.loop import FollowUp
from mailbeacon.agent.followup.sequences import SequenceRunner
from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Sender
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.relay import Relay
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.urls import TrackingUrls
from tests.helpers.fakes import FakeClock
from tests.helpers.smtp import SmtpSink

PASSWORD = "relay-pw"
SIGNING_KEY = b"k" * 32
ENROLLMENT = Enrollment("https://t.example", 7, "api", SIGNING_KEY)
START = 1_796_630_400.0  # Mon 2026-12-07 09:00 Warsaw (08:00 UTC)


@dataclass
class FollowupRig:
    """Relay → follow-up → sender → outbox → sink, over files in ``root``."""

    root: Path
    sink: SmtpSink
    clock: FakeClock = field(default_factory=lambda: FakeClock(START))
    zone: tzinfo = field(default_factory=lambda: ZoneInfo("Europe/Warsaw"))
    settings: Settings = field(default_factory=Settings)
    notifications: list[Notification] = field(default_factory=list)
    templates: Path | None = None

    def __post_init__(self) -> None:
        self.records: RecordsStore | None = None
        self.store: FollowupStore | None = None
        self.outbox: Outbox | None = None
        self.relay: Relay | None = None
        self.followup: FollowUp | None = None
        self.sequences: SequenceRunner | None = None

    async def __aenter__(self) -> FollowupRig:
        await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the files and start relay, outbox and loop (the loop's passes: ``tick``)."""
        self.records = RecordsStore(self.root / "records.db")
        self.store = FollowupStore(self.root / "followup.db")
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{self.sink.port}"), lambda: None)
        self.outbox = Outbox(self.root / "outbox", upstream)
        await self.outbox.start()
        sender = Sender(
            self.records, self.outbox, TrackingUrls(ENROLLMENT, self.clock),
            lambda: self.settings, self.clock,
        )  # fmt: skip
        self.sequences = SequenceRunner(
            self.store, self.records, sender.accept_recorded, lambda: self.settings,
            self.clock, lambda: self.zone, templates=self.templates or self.root / "none.json",
        )  # fmt: skip
        self.followup = FollowUp(
            self.store, self.records, sender.accept_recorded, self.notifications.append,
            lambda: self.settings, self.clock, lambda: self.zone, sequences=self.sequences,
        )  # fmt: skip
        self.followup.recover()
        self.relay = Relay(self.followup.accept, PASSWORD)
        await self.relay.start()

    async def stop(self) -> None:
        """Stop everything and close the files."""
        if self.relay is not None:
            await self.relay.stop()
        if self.outbox is not None:
            await self.outbox.stop()
        if self.records is not None:
            self.records.close()
        if self.store is not None:
            self.store.close()

    async def restart(self) -> None:
        """Stop and start again on the same files."""
        await self.stop()
        await self.start()

    async def tick(self) -> None:
        """One pass of the loop, then wait until the outbox has delivered."""
        assert self.followup is not None and self.outbox is not None
        await self.followup.tick()
        await self.outbox.wait_drained(10)

    async def submit(self, message: EmailMessage) -> str:
        """A mail client's submission; the relay's final reply text."""
        assert self.relay is not None
        port = self.relay.port

        def send() -> str:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.login("mailbeacon", PASSWORD)
                client.send_message(message)
                return "ok"

        return await asyncio.to_thread(send)


def email(
    to: str = "Alicja Nowak <alicja@client.example>",
    subject: str = "Oferta Q4",
    *headers: tuple[str, str],
) -> EmailMessage:
    """A small HTML email from the rep, with extra headers."""
    message = EmailMessage()
    message["From"] = "Anna Kowalska <anna@rep.example>"
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers:
        message[name] = value
    message.add_alternative('<p>Our offer: <a href="https://rep.example/o">see</a></p>', "html")
    return message
