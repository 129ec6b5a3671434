"""Renders every window of the tray app offscreen to PNG files, with sample data.

Usage: ``.venv/bin/python packaging/screenshots.py [--lang pl] OUTDIR`` (the committed
sets live in ``packaging/screenshots/``, English, and ``packaging/screenshots/pl/``). A
throw-away profile gets a records store with a few contacts (Polish and English names),
sent emails (one logged, with a PDF), opens and clicks judged human, bot, proxy and
self, an anonymous "Someone" open, replies and a delivery failure; each window is built
over it as ``tray.wiring`` builds it, shown offscreen, grabbed once its background reads
have delivered (waiting on the windows' own signals, bounded), and saved with the
strongest PNG compression (then through ``optipng`` when it is installed).

Writes: ``first_run``, ``toast``, ``tray_menu``, ``tray_menu_paused``, ``icons``,
``settings_<tab>`` (one per tab), ``settings_test_tracking``,
``settings_tracking_this_computer``, ``account-<step>``
(the account flow, one per step), ``activity``, ``activity_filtered``, ``compose``,
``contacts``, ``record``, ``email_viewer``, ``reports`` and ``reports_chart``
(``.png`` each). Times are shown in UTC unless ``TZ`` says otherwise.
"""

# ruff: noqa: E402 - the imports follow the platform choice (offscreen) and TZ
# ruff: noqa: RUF001 - the sample subjects are Polish text, en dashes included

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TZ", "UTC")  # the same pictures wherever they are made
time.tzset()

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import (
    QBuffer,
    QCoreApplication,
    QDeadlineTimer,
    QEvent,
    QEventLoop,
    QIODevice,
    QRect,
    Qt,
    QTimer,
    SignalInstance,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QTextCursor
from PySide6.QtWidgets import QAbstractItemView, QApplication, QScrollArea, QWidget

from mailbeacon.agent.account import presets
from mailbeacon.agent.account.discovery import ENTER_MANUALLY
from mailbeacon.agent.account.model import AuthMethod, Discovered, Security, ServerSetting, Source
from mailbeacon.agent.account.setup import AccountRequest, AccountResult
from mailbeacon.agent.notifications import wording
from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState
from mailbeacon.agent.records.model import (
    Attachment,
    EventRecord,
    LoggedCopy,
    Recipient,
    SentEmail,
)
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.tracking.check import TrackingCheck, public_result
from mailbeacon.agent.tracking.reach import ANSWER_STEP, NAME_STEP, TLS_STEP, CheckStep, Outcome
from mailbeacon.core import reasons
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import LANGUAGES, Language
from mailbeacon.core.profile import Profile
from mailbeacon.core.tokens import new_message_key, new_recipient_key
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet, PanelTheme
from mailbeacon.tray.desktop.toast import Toast
from mailbeacon.tray.icon.menu import Windows
from mailbeacon.tray.icon.pause import PauseState
from mailbeacon.tray.language import QtLanguage
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.account.flow import AccountDialog
from mailbeacon.tray.views.account.runner import AccountRunner
from mailbeacon.tray.views.account.wording import CHECKING, IN_BROWSER, LOOKING_UP, SIGNING_IN
from mailbeacon.tray.views.activity.window import ActivityWindow
from mailbeacon.tray.views.compose.templates import Template, TemplateStore
from mailbeacon.tray.views.compose.window import ComposeDefaults, ComposeWindow
from mailbeacon.tray.views.contacts.model import ContactsModel
from mailbeacon.tray.views.contacts.record import RecordView
from mailbeacon.tray.views.contacts.window import ContactsWindow
from mailbeacon.tray.views.email_viewer import EmailViewer, load_viewer_data
from mailbeacon.tray.views.first_run import FirstRunDialog, MailClientSettings
from mailbeacon.tray.views.reports.window import ReportsWindow
from mailbeacon.tray.views.settings.dialog import TABS, SettingsDialog

ICON_SIZES = (16, 22, 24, 48)
PANELS = {PanelTheme.LIGHT: "#eceff1", PanelTheme.DARK: "#2e3440"}
WAIT_MS = 15_000  # the longest any window may take to read its data
NOW = datetime(2025, 6, 12, 14, 30, tzinfo=UTC)  # "now" for the sample data and reports
REP = "anna.kowalska@mojafirma.pl"

# --------------------------------------------------------------------- waiting and saving


def wait_until(
    done: Callable[[], bool], signals: tuple[SignalInstance, ...], what: str,
    timeout_ms: int = WAIT_MS,
) -> None:
    """Run the event loop until ``done()``, waking on ``signals``; bounded by ``timeout_ms``."""
    deadline = QDeadlineTimer(timeout_ms)
    loop = QEventLoop()
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    for signal in signals:
        signal.connect(loop.quit)
    QApplication.processEvents()
    while not done():
        remaining = deadline.remainingTime()
        if remaining <= 0:
            raise TimeoutError(f"{what} did not finish loading within {timeout_ms} ms")
        timer.start(remaining)
        loop.exec()
    timer.stop()
    for signal in signals:
        signal.disconnect(loop.quit)


def idle(*workers: Worker) -> Callable[[], bool]:
    """True once none of ``workers`` has a call still to deliver."""
    return lambda: not any(worker.busy for worker in workers)


def _write_png(image: QImage, path: Path) -> None:
    # quality 0: the strongest compression (the stub says bytes for the format; Qt wants str)
    if not image.save(str(path), "PNG", 0):  # type: ignore[call-overload]
        raise OSError(f"cannot write {path}")
    optipng = shutil.which("optipng")
    if optipng:  # lossless, about a quarter smaller again
        subprocess.run([optipng, "-quiet", "-o2", str(path)], check=True, timeout=120)  # noqa: S603
    print(path)


def _save(widget: QWidget, path: Path, fit: bool = False) -> None:
    """Show ``widget`` offscreen (shrunk to fit its contents if ``fit``, else at the size
    it gives itself) and write what it draws."""
    widget.ensurePolished()
    if fit:
        widget.adjustSize()
    widget.show()
    QApplication.processEvents()
    _write_png(widget.grab().toImage(), path)


def _dispose(widget: QWidget) -> None:
    """Stop the window's background reads and delete it now, before the store closes
    (left to the interpreter's exit, the Qt objects go in an order that crashes)."""
    shutdown = getattr(widget, "shutdown", None)
    if shutdown is not None:
        shutdown()
    widget.hide()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


# --------------------------------------------------------------------- sample data


class MemoryKeyring(KeyringBackend):
    """Secrets of the throw-away profile, never the real keyring."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@dataclass(frozen=True, slots=True)
class Person:
    """A sample contact."""

    email: str
    name: str
    company: str
    basis: str | None


ALICJA = Person("alicja.nowak@przyklad.pl", "Alicja Nowak", "Nowak i Wspólnicy sp. z o.o.",
                "consent")
ZBIGNIEW = Person("z.lukasiewicz@budpol.com.pl", "Zbigniew Łukasiewicz", "Budpol S.A.",
                  "legitimate-interest")
MALGORZATA = Person("m.wojcik@kwiaciarnia-roza.pl", "Małgorzata Wójcik", "Kwiaciarnia Róża",
                    "contract")
JAMES = Person("james.whitfield@whitfield.co.uk", "James Whitfield", "Whitfield & Partners LLP",
               "legitimate-interest")
SARAH = Person("sarah.oconnor@brightlane.io", "Sarah O'Connor", "Brightlane", "consent")
GRZEGORZ = Person("g.brzeczyszczykiewicz@chrzaszcz.pl", "Grzegorz Brzęczyszczykiewicz",
                  "Chrząszcz Logistyka", None)  # no lawful basis: tracked as "Someone"
READERS = (  # newsletter readers, so the contacts fill a window
    Person("k.wisniewska@sklep-wisnia.pl", "Katarzyna Wiśniewska", "Sklep Wiśnia", "consent"),
    Person("piotr.zielinski@zielinski-transport.pl", "Piotr Zieliński", "Zieliński Transport",
           "consent"),
    Person("joanna.kaminska@example.pl", "Joanna Kamińska", "", "consent"),
    Person("tomasz.dabrowski@dabrowski-it.pl", "Tomasz Dąbrowski", "Dąbrowski IT", "consent"),
    Person("oliver.bennett@northgate.co.uk", "Oliver Bennett", "Northgate Ltd", "consent"),
    Person("charlotte.hughes@kestrel.com", "Charlotte Hughes", "Kestrel Analytics", "consent"),
)
PEOPLE = (ALICJA, ZBIGNIEW, MALGORZATA, JAMES, SARAH, GRZEGORZ, *READERS)

OUTLOOK = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Microsoft Outlook 16.0.17531; Pro)"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Mobile/15E148")
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1"
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.6367.82 Mobile Safari/537.36")
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Safari/605.1.15")
GMAIL_PROXY = ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
               "(via ggpht.com GoogleImageProxy)")

OFFER_HTML = """<html><body style="font-family: sans-serif">
<p>Dzień dobry Pani Alicjo,</p>
<p>w nawiązaniu do naszej rozmowy przesyłam <b>ofertę na wdrożenie w II kwartale</b>.
Najważniejsze punkty:</p>
<ul><li>wdrożenie w 6 tygodni, z dwoma warsztatami dla zespołu,</li>
<li>wsparcie techniczne przez 12 miesięcy,</li>
<li>rabat 10% przy podpisaniu umowy do końca czerwca.</li></ul>
<p>Szczegóły i harmonogram są w załączonym PDF, a cennik online:
<a href="https://mojafirma.pl/oferta/q2">mojafirma.pl/oferta/q2</a>.</p>
<p>Z poważaniem,<br>Anna Kowalska<br><i>MojaFirma sp. z o.o.</i></p>
<p><img src="cid:logo.png@mojafirma.pl" alt="MojaFirma"></p>
<img src="https://t.newsletter.example/o/8f2c.gif" width="1" height="1" alt="">
</body></html>"""
OFFER_TEXT = "Dzień dobry Pani Alicjo, w nawiązaniu do naszej rozmowy przesyłam ofertę."


def _pdf(pages: int = 3) -> bytes:
    """A small, valid-looking PDF for the logged copy and the compose attachment."""
    body = b"".join(b"%d 0 obj\n<< /Type /Page >>\nendobj\n" % (n + 3) for n in range(pages))
    stream = b"stream\n" + bytes(range(256)) * 720 + b"\nendstream\n"  # about 180 KB
    return b"%PDF-1.4\n" + body + stream + b"trailer\n<< >>\n%%EOF\n"


def _logo() -> bytes:
    """The signature logo: inline in the logged copy, so the viewer shows it."""
    image = QImage(150, 36, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor("#1f6fb4"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(0, 4, 28, 28, 6, 6)
    font = QFont(painter.font())
    font.setPixelSize(18)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(QRect(0, 4, 28, 28), Qt.AlignmentFlag.AlignCenter, "M")
    painter.setPen(QColor("#1f3b57"))
    painter.drawText(QRect(36, 0, 114, 36), Qt.AlignmentFlag.AlignVCenter, "MojaFirma")
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stub says bytes; Qt wants str
    return bytes(buffer.data().data())


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Sample:
    """The filled store and what the windows need from it."""

    profile: Profile
    store: RecordsStore
    offer_id: int
    offer_pdf: Path


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


class _Mail:
    """Records sent emails and their events (increasing server ids), and moves the
    contacts' engagement dates as the agent would for counted events."""

    def __init__(self, store: RecordsStore) -> None:
        self.store = store
        self.server_id = 5000
        self.sent_at: dict[int, datetime] = {}

    def send(self, subject: str, at: datetime, to: tuple[Person, ...],
             cc: tuple[Person, ...] = (), *, log: bool = False, per_recipient: bool = False,
             extra_to: tuple[str, ...] = ()) -> int:
        """A tracked email from the rep; returns its id."""
        recipients = tuple(
            Recipient(p.email, field, p.name, new_recipient_key())
            for field, group in (("to", to), ("cc", cc)) for p in group
        ) + tuple(Recipient(address, "to", "", new_recipient_key()) for address in extra_to)
        email_id = self.store.record_sent(SentEmail(
            message_id=f"<{new_message_key()}@mojafirma.pl>",
            message_key=new_message_key(),
            subject=subject,
            sender=f"Anna Kowalska <{REP}>",
            sent_at=_at(at),
            recipients=recipients,
            track=True,
            log=log,
            per_recipient=per_recipient,
            tracked=True,
        ))
        self.sent_at[email_id] = at
        return email_id

    def event(self, type: str, email_id: int, after: timedelta, person: Person | None = None,
              **extra: Any) -> None:
        """An event ``after`` the email was sent; ``person`` None: anonymous ("Someone")."""
        local = type in ("reply", "delivery_failed")
        self.server_id += 1
        at = _at(self.sent_at[email_id] + after)
        values: dict[str, Any] = {
            "server_id": None if local else self.server_id,
            "local_key": f"{type}:{self.server_id}" if local else None,
            "email_id": email_id,
            "contact": person.email if person else None,
            "anonymous": person is None and type in ("open", "click"),
            "ip": "" if local else f"203.0.113.{self.server_id % 200 + 20}",
        }
        values.update(extra)
        self.store.add_event(EventRecord(type=type, at=at, **values))
        if person is not None and values.get("verdict", "human") == "human":
            self.store.update_contact_engagement(person.email, type, at)


def _older_mail(mail: _Mail) -> None:
    """A newsletter and a few conversations from three to four weeks ago."""
    news = mail.send("Nowości w ofercie – maj 2025", NOW - 27 * DAY - 6 * HOUR,
                     (ALICJA, ZBIGNIEW, MALGORZATA, *READERS), per_recipient=True)
    for after, person, agent in ((2 * HOUR, ALICJA, OUTLOOK), (DAY, MALGORZATA, ANDROID),
                                 (DAY + 4 * HOUR, ZBIGNIEW, THUNDERBIRD),
                                 (3 * DAY, ALICJA, IPHONE), (6 * DAY, MALGORZATA, ANDROID)):
        mail.event("open", news, after, person, user_agent=agent)
    mail.event("click", news, DAY + 5 * MINUTE, MALGORZATA, user_agent=ANDROID,
               url="https://mojafirma.pl/nowosci/maj")
    agents = (OUTLOOK, IPHONE, CHROME, ANDROID, SAFARI)
    for number, (reader, agent) in enumerate(zip(READERS[:-1], agents, strict=True)):
        mail.event("open", news, (number * 7 + 3) * HOUR, reader, user_agent=agent)
    mail.event("click", news, 10 * HOUR + 2 * MINUTE, READERS[1], user_agent=IPHONE,
               url="https://mojafirma.pl/nowosci/maj")

    terms = mail.send("Re: partnership terms", NOW - 21 * DAY - 2 * HOUR, (JAMES,))
    for after in (40 * MINUTE, 2 * DAY + 3 * HOUR, 5 * DAY + HOUR):
        mail.event("open", terms, after, JAMES, user_agent=SAFARI)
    mail.event("click", terms, 5 * DAY + HOUR + 6 * MINUTE, JAMES, user_agent=SAFARI,
               url="https://mojafirma.pl/partnerzy/warunki")
    mail.event("reply", terms, 5 * DAY + 2 * HOUR, JAMES)

    thanks = mail.send("Podziękowanie za spotkanie", NOW - 16 * DAY - 5 * HOUR, (ZBIGNIEW,))
    mail.event("open", thanks, HOUR, ZBIGNIEW, user_agent=THUNDERBIRD)
    mail.event("open", thanks, DAY + 2 * HOUR, ZBIGNIEW, user_agent=ANDROID)

    question = mail.send("Quick question about your Q3 plans", NOW - 14 * DAY - HOUR, (SARAH,))
    mail.event("open", question, 3 * HOUR, SARAH, user_agent=CHROME)
    mail.event("click", question, 3 * HOUR + MINUTE, SARAH, user_agent=CHROME,
               url="https://mojafirma.pl/case-studies")
    mail.event("open", question, 2 * DAY, None, user_agent=CHROME)  # forwarded, unknown reader

    flowers = mail.send("Zamówienie kwiatów na konferencję 24.06", NOW - 12 * DAY - 4 * HOUR,
                        (MALGORZATA,))
    mail.event("open", flowers, 9 * MINUTE, MALGORZATA, verdict="proxy",
               reason="opened in Gmail (fetched through Google's image proxy)",
               user_agent=GMAIL_PROXY)
    mail.event("open", flowers, 2 * DAY + 3 * HOUR, MALGORZATA, user_agent=ANDROID)
    mail.event("click", flowers, 2 * DAY + 3 * HOUR + 2 * MINUTE, MALGORZATA,
               user_agent=ANDROID, url="https://mojafirma.pl/konferencja/program")


def _offer(mail: _Mail, pdf: bytes) -> int:
    """The logged offer to Alicja: scanned by a bot, opened, clicked, answered."""
    offer = mail.send("Oferta na II kwartał – wycena wdrożenia", NOW - 9 * DAY - 5 * HOUR,
                      (ALICJA,), log=True)
    mail.store.log_copy(offer, LoggedCopy(
        html=OFFER_HTML, text=OFFER_TEXT,
        attachments=(Attachment("Oferta_MojaFirma_Q2_2025.pdf", "application/pdf", pdf),
                     Attachment("logo.png", "image/png", _logo())),
    ))
    mail.event("open", offer, timedelta(seconds=4), ALICJA, verdict="bot",
               reason="Barracuda email security scanner", user_agent="Barracuda Sentinel (EE)")
    mail.event("open", offer, 38 * MINUTE, ALICJA, user_agent=OUTLOOK)
    mail.event("click", offer, 41 * MINUTE, ALICJA, user_agent=CHROME,
               url="https://mojafirma.pl/oferta/q2")
    mail.event("open", offer, DAY + 2 * HOUR, ALICJA, user_agent=IPHONE)
    mail.event("reply", offer, DAY + 3 * HOUR, ALICJA)
    mail.event("open", offer, 4 * DAY + HOUR, ALICJA, user_agent=OUTLOOK)
    return offer


def _recent_mail(mail: _Mail) -> None:
    """The last week: a proxy open, a link scanner, the rep's own open, "Someone", a bounce."""
    proposal = mail.send("Proposal: website redesign for Whitfield & Partners",
                         NOW - 6 * DAY - 3 * HOUR, (JAMES,), (SARAH,), per_recipient=True)
    mail.event("open", proposal, 2 * MINUTE, JAMES, verdict="proxy",
               reason="Apple Mail Privacy Protection prefetch: may not be a real open",
               user_agent="Mozilla/5.0")
    mail.event("open", proposal, 3 * HOUR, JAMES, user_agent=IPHONE)
    mail.event("click", proposal, 3 * HOUR + 4 * MINUTE, JAMES, user_agent=SAFARI,
               url="https://mojafirma.pl/portfolio")
    mail.event("open", proposal, DAY + 5 * HOUR, SARAH, user_agent=CHROME)
    mail.event("open", proposal, 2 * DAY, JAMES, user_agent=SAFARI)
    mail.event("reply", proposal, 2 * DAY + 40 * MINUTE, JAMES)

    meeting = mail.send("Spotkanie w przyszłym tygodniu", NOW - 4 * DAY - 6 * HOUR, (ZBIGNIEW,))
    mail.event("click", meeting, timedelta(seconds=1.2), ZBIGNIEW, verdict="bot",
               reason=reasons.CLICKED_TOO_FAST.text(seconds="1.2 s"), user_agent=CHROME,
               url="https://mojafirma.pl/kalendarz")
    mail.event("open", meeting, 5 * HOUR, ZBIGNIEW, user_agent=THUNDERBIRD)
    mail.event("open", meeting, 5 * HOUR + 3 * MINUTE, ZBIGNIEW, verdict="self",
               reason=reasons.SELF_AGENT.text(), user_agent=THUNDERBIRD)
    mail.event("reply", meeting, DAY, ZBIGNIEW)

    call = mail.send("Follow-up: our call on Tuesday", NOW - 3 * DAY - 2 * HOUR, (GRZEGORZ,))
    mail.event("open", call, 2 * HOUR, None, user_agent=OUTLOOK)
    mail.event("click", call, 2 * HOUR + 3 * MINUTE, None, user_agent=CHROME,
               url="https://mojafirma.pl/cennik")
    mail.event("open", call, DAY + HOUR, None, user_agent=OUTLOOK)

    prices = mail.send("Cennik 2025 (poprawiony)", NOW - 2 * DAY - HOUR, (ALICJA, ZBIGNIEW),
                       per_recipient=True)
    mail.event("open", prices, 25 * MINUTE, ZBIGNIEW, user_agent=THUNDERBIRD)
    mail.event("open", prices, 3 * HOUR, ALICJA, user_agent=OUTLOOK)
    mail.event("click", prices, 3 * HOUR + 2 * MINUTE, ALICJA, user_agent=CHROME,
               url="https://mojafirma.pl/cennik/2025.pdf")

    demo = mail.send("Invitation: product demo on Thursday", NOW - DAY - 5 * HOUR, (SARAH,),
                     extra_to=("events@brigthlane.io",))
    mail.event("delivery_failed", demo, timedelta(seconds=40), None,
               reason="550 5.1.1 <events@brigthlane.io>: Recipient address rejected",
               details={"recipients": ["events@brigthlane.io"]})
    mail.event("open", demo, 50 * MINUTE, SARAH, user_agent=CHROME)
    mail.event("open", demo, DAY + 3 * HOUR, SARAH, user_agent=IPHONE)


def fill_sample(root: Path) -> Sample:
    """A profile under ``root`` whose records hold a month of a rep's tracked mail."""
    profile = Profile.at(root / "profile")
    store = RecordsStore.for_profile(profile)
    for person in PEOPLE:
        store.upsert_contact(person.email, name=person.name, company=person.company)
        if person.basis:
            store.set_lawful_basis(person.email, person.basis)
    mail = _Mail(store)
    pdf = _pdf()
    _older_mail(mail)
    offer = _offer(mail, pdf)
    _recent_mail(mail)
    attachment = root / "Oferta_MojaFirma_Q2_2025.pdf"
    attachment.write_bytes(pdf)
    return Sample(profile, store, offer, attachment)


def sample_settings() -> Settings:
    """Settings a rep with a remote tracking server and an IMAP inbox might have."""
    settings = Settings()
    for key, value in (
        ("server.mode", "remote"),
        ("server.url", "https://track.mojafirma.pl"),
        ("relay.user", "anna"),
        ("upstream.url", "smtps://smtp.mojafirma.pl:465"),
        ("upstream.user", REP),
        ("defaults.log", "true"),
        ("tracking.per_recipient", "true"),
        ("privacy.enabled", "true"),
        ("imap.url", "imaps://imap.mojafirma.pl"),
        ("sent_cleanup.enabled", "true"),
        ("app.autostart", "true"),
    ):
        settings.set(key, value)
    return settings


@contextmanager
def sample(root: Path) -> Iterator[Sample]:
    """The sample profile, its store closed afterwards."""
    filled = fill_sample(root)
    try:
        yield filled
    finally:
        filled.store.close()


# --------------------------------------------------------------------- windows


def _relay_status() -> AgentStatus:
    return AgentStatus(
        ConnectionState.CONNECTED,
        server_url="https://track.mojafirma.pl",
        relay_host="127.0.0.1",
        relay_port=2525,
        relay_user="anna",
    )


def first_run(out: Path, tr: Language) -> None:
    """The mail-client settings dialog."""
    settings = MailClientSettings.from_status(_relay_status(), "k3V9-relay-Pw2x")
    dialog = FirstRunDialog(settings, tr=tr)
    _save(dialog, out / "first_run.png", fit=True)
    _dispose(dialog)


def toast(out: Path, icons: IconSet, data: Sample, tr: Language) -> None:
    """The in-app toast, worded as the agent words an open of the logged offer."""
    email = data.store.email(data.offer_id)
    assert email is not None
    opened = email.sent_at.replace("Z", "+00:00")
    at = _at(datetime.fromisoformat(opened) + timedelta(minutes=38))
    widget = Toast(icons.app())
    widget.title_label.setText(wording.title_for("open", ALICJA.name, email, None, False, tr))
    widget.body_label.setText(wording.body_for([
        wording.since_sending(email, at, tr), "Outlook on Windows", "PL",
    ]))
    _save(widget, out / "toast.png", fit=True)
    _dispose(widget)


def tray_menus(out: Path, icons: IconSet, tr: Language) -> None:
    """The tray menu with every window wired, running and paused."""
    def nothing() -> None:
        return None

    windows = Windows(compose=nothing, activity=nothing, contacts=nothing, reports=nothing,
                      settings=nothing)
    app = TrayApp(icons, windows=windows, pause=PauseState(clock=NOW.timestamp), language=tr)
    app.on_status(_relay_status())
    _save(app.menu, out / "tray_menu.png", fit=True)
    app.pause_for_hour()
    _save(app.menu, out / "tray_menu_paused.png", fit=True)
    app.close()


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.replace("&", "").lower()).strip("_")


def settings_tabs(out: Path, data: Sample, tr: Language) -> None:
    """The settings dialog, one picture per tab, with the secrets stored."""
    keyring = MemoryKeyring()
    secrets = SecretStore(data.profile.keyring_service, {}, backend=keyring)
    for secret, value in ((Secret.RELAY_PASSWORD, "k3V9-relay-Pw2x"),
                          (Secret.UPSTREAM_PASSWORD, "upstream"),
                          (Secret.IMAP_PASSWORD, "imap")):
        secrets.set(secret, value)
    secrets.set_enrollment(Enrollment("https://track.mojafirma.pl", 7, "token", bytes(32)))
    dialog = SettingsDialog(sample_settings(), secrets, lambda _settings: None,
                            open_account=lambda: None, tr=tr)
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        # Named by the English tab in every language: the sets line up file by file.
        name = TABS[index][0] if index < len(TABS) else dialog.tabs.tabText(index)
        _save(dialog, out / f"settings_{_slug(name)}.png")
    _dispose(dialog)
    settings_test_tracking(out, secrets, tr)


def settings_test_tracking(out: Path, secrets: SecretStore, tr: Language) -> None:
    """"Test tracking" for a public address: what each step found (the check's words)."""
    # The check's own words (agent/tracking/reach.py), in the language shown.
    steps = (
        CheckStep(NAME_STEP, Outcome.YES, tr.t("yes ({addresses})", addresses="203.0.113.5")),
        CheckStep(TLS_STEP, Outcome.YES,
                  tr.t("yes, the certificate for {host} is valid until {until}",
                       host="track.mojafirma.pl", until="2025-08-30 11:02 UTC")),
        CheckStep(ANSWER_STEP, Outcome.YES,
                  tr.t("the pixel came back in {ms} ms", ms=tr.number(42))),
    )
    answer = public_result("https://track.mojafirma.pl", steps, [], tr)

    async def canned(_enrollment: Enrollment) -> TrackingCheck:
        return answer

    dialog = SettingsDialog(sample_settings(), secrets, lambda _settings: None,
                            open_account=lambda: None, test_tracking=canned, tr=tr)
    dialog.show_field("server.mode")
    dialog.resize(dialog.sizeHint().width(), dialog.sizeHint().height() + 120)
    dialog.show()
    dialog.run_tracking_test()
    wait_until(lambda: dialog.tracking_result.text() == answer.message,
               (dialog.trackingTested,), "Test tracking")
    area = dialog.tabs.currentWidget()
    if isinstance(area, QScrollArea):
        QApplication.processEvents()
        area.ensureWidgetVisible(dialog.tracking_result)
    _save(dialog, out / "settings_test_tracking.png")
    _dispose(dialog)
    # Out of the box (this computer, 127.0.0.1): said before any test.
    local = SettingsDialog(Settings(), secrets, lambda _settings: None,
                           open_account=lambda: None, tr=tr)
    local.show_field("server.mode")
    _save(local, out / "settings_tracking_this_computer.png")
    _dispose(local)


class _NoSteps:
    """The account flow's steps for pictures: each page is shown directly, nothing runs."""

    async def servers(self, request: AccountRequest) -> Discovered:
        raise AssertionError("the screenshots run no step")

    async def run(self, request: AccountRequest) -> AccountResult:
        raise AssertionError("the screenshots run no step")


def _preset_found(email: str, preset: presets.Preset, source: Source) -> Discovered:
    return Discovered(email, preset.id, source, preset.smtp, preset.imap, preset.auth,
                      preset.issuer, preset.scopes)


def account_flow(out: Path, tr: Language) -> None:
    """The account flow, one picture per step (``account-<n>-<step>.png``)."""
    mail_client = MailClientSettings.from_status(_relay_status(), "k3V9-relay-Pw2x")
    own = Discovered(
        REP, None, Source.SRV, ServerSetting("smtp.mojafirma.pl", 465, Security.TLS),
        ServerSetting("imap.mojafirma.pl", 993, Security.TLS), (AuthMethod.PASSWORD,),
    )

    def wrong_password(dialog: AccountDialog) -> None:
        dialog.flow.show_found(own)
        # What the outgoing server's refusal reads as (agent/sending/upstream.py).
        dialog.flow.show_failure(tr.t(
            "{where} refused the user name or password ({code} {reply}). Check the "
            "upstream user and password in the settings.",
            where="smtp.mojafirma.pl:465", code=535, reply="5.7.8 Authentication failed",
        ))

    steps: list[tuple[str, Callable[[AccountDialog], None]]] = [
        ("email", lambda _dialog: None),
        ("looking-up", lambda dialog: dialog.flow.show_busy(tr.t(LOOKING_UP))),
        ("google", lambda dialog: dialog.flow.show_found(
            _preset_found("anna.kowalska@gmail.com", presets.GOOGLE, Source.PRESET))),
        ("microsoft", lambda dialog: dialog.flow.show_found(
            _preset_found(REP, presets.MICROSOFT, Source.MX))),
        ("password", lambda dialog: dialog.flow.show_found(own)),
        ("signing-in", lambda dialog: dialog.flow.show_busy(tr.t(SIGNING_IN), tr.t(IN_BROWSER))),
        ("checking", lambda dialog: dialog.flow.show_busy(tr.t(CHECKING))),
        ("wrong-password", wrong_password),
        ("manual", lambda dialog: dialog.flow.show_not_found(  # as discovery says it
            tr.t("No mail servers were found for {domain}.", domain="mojafirma.pl")
            + " " + tr.t(ENTER_MANUALLY))),
        ("done", lambda dialog: dialog.flow.show_done(AccountResult(
            own, AuthMethod.PASSWORD, "Connected to smtps://smtp.mojafirma.pl:465 and logged in.",
            "Connected to imap.mojafirma.pl:993 as anna.kowalska@mojafirma.pl."))),
    ]
    for number, (name, step) in enumerate(steps, 1):
        dialog = AccountDialog(AccountRunner(_NoSteps()), mail_client=mail_client,
                               name="Anna Kowalska", email=REP, tr=tr)
        step(dialog)
        _save(dialog, out / f"account-{number:02d}-{name}.png", fit=True)
        _dispose(dialog)


def activity(out: Path, data: Sample, tr: Language) -> None:
    """The feed as it opens (people only), then with the filtered events and the details
    (verdict, reason, address, browser) shown."""
    window = ActivityWindow(data.store, now=lambda: NOW, tr=tr)
    model = window.model
    signals = (model.pageLoaded, model.totalChanged, model.loadingChanged)

    def loaded() -> bool:
        return not model.loading and model.total >= 0 and not model.worker.busy

    window.show()
    wait_until(loaded, signals, "the activity feed")
    window.table.selectRow(1)
    _save(window, out / "activity.png")
    window.show_filtered.setChecked(True)
    window.show_details.setChecked(True)
    wait_until(loaded, signals, "the filtered activity feed")
    for row in range(model.rowCount()):
        found = model.row_at(model.index(row, 0))
        if found is not None and found.event.verdict == "bot":
            window.table.selectRow(row)  # its reason shows in full below the table
            window.table.scrollTo(model.index(row, 0),
                                  QAbstractItemView.ScrollHint.PositionAtCenter)
            break
    _save(window, out / "activity_filtered.png")
    _dispose(window)


def compose(out: Path, data: Sample, tr: Language) -> None:
    """A new email with a template list, a drafted body with a link, and an attachment."""
    templates = TemplateStore.for_profile(data.profile)
    templates.save(Template("Follow-up po spotkaniu", "Dziękuję za spotkanie, {first_name}",
                            "<p>Dzień dobry {first_name},</p><p>dziękuję za rozmowę.</p>"))
    templates.save(Template("Oferta – pierwszy kontakt", "Oferta dla {company}", "<p>…</p>"))
    worker = Worker(1)
    known = ContactsModel(data.store)  # the To/Cc/Bcc completions
    window = ComposeWindow(
        lambda _message: "queued", tr=tr,
        defaults=ComposeDefaults(f"Anna Kowalska <{REP}>", track=True, log=True, clicks=True),
        contacts=known,
        lookup_contact=data.store.contact,
        templates=templates,
        worker=worker,
    )
    worker.setParent(window)
    known.setParent(window)
    window.to_edit.setText(f"{ZBIGNIEW.name} <{ZBIGNIEW.email}>")
    window.cc_edit.setText(MALGORZATA.email)
    window.subject_edit.setText("Oferta na II kwartał – podsumowanie i następne kroki")
    editor = window.editor
    editor.setHtml(
        "<p>Dzień dobry Panie Zbigniewie,</p>"
        "<p>dziękuję za wczorajsze spotkanie. Zgodnie z ustaleniami w załączniku przesyłam "
        "<b>ofertę na II kwartał</b>. Najważniejsze terminy:</p>"
        "<ul><li>start wdrożenia: 1 lipca,</li><li>warsztaty dla zespołu: 8 i 15 lipca,</li>"
        "<li>odbiór: koniec sierpnia.</li></ul>"
        "<p>Szczegóły są też na naszej stronie: </p>"
        "<p>Pozdrawiam serdecznie,<br>Anna Kowalska</p>"
    )
    link_paragraph = editor.document().find("Szczegóły")
    cursor = editor.textCursor()
    cursor.setPosition(link_paragraph.position())
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock)
    editor.setTextCursor(cursor)
    window.insert_link("https://mojafirma.pl/oferta/q2", "oferta i harmonogram online")
    window.add_attachments([data.offer_pdf])
    window.update_click_note()
    wait_until(idle(worker, known.worker), (worker.busyChanged, known.worker.busyChanged),
               "the compose window's templates and contacts")
    _save(window, out / "compose.png")
    _dispose(window)


def _news(data: Sample, type: str, ago: timedelta, server_id: int, **extra: Any) -> None:
    """Alicja acts on the offer ``ago`` before now, after a window was first read: it
    shows there as new (bold, counted) until the rep has seen it."""
    mail = _Mail(data.store)
    mail.server_id = server_id
    mail.sent_at[data.offer_id] = NOW - ago
    mail.event(type, data.offer_id, timedelta(0), ALICJA, user_agent=CHROME, **extra)


def contacts(out: Path, data: Sample, tr: Language) -> None:
    """The contacts table, with one contact's new activity not yet seen."""
    window = ContactsWindow(data.store, now=lambda: NOW, tr=tr)
    model = window.model
    window.show()
    wait_until(lambda: not model.loading and model.rowCount() > 0 and not model.worker.busy,
               (model.loaded, model.loadingChanged, model.loadFailed), "the contacts")
    _news(data, "open", 3 * MINUTE, 9001)
    window.event_added()
    wait_until(lambda: model.new_count > 0 and not model.worker.busy,
               (model.newCountChanged, model.loaded), "the contacts' news")
    _save(window, out / "contacts.png")
    _dispose(window)


def record_and_viewer(out: Path, data: Sample, tr: Language) -> None:
    """Alicja's record page (filtered events shown), then her logged offer in the viewer."""
    view = RecordView(data.store, ALICJA.email, now=lambda: NOW, tr=tr)
    view.show()
    wait_until(lambda: view.contact is not None and not view.worker.busy,
               (view.loaded, view.loadFailed, view.worker.busyChanged), "the record")
    view.show_filtered.setChecked(True)
    wait_until(idle(view.worker), (view.loaded, view.worker.busyChanged), "the filtered record")
    _news(data, "click", MINUTE, 9002, url="https://mojafirma.pl/oferta/cennik")
    view.reload()
    wait_until(lambda: view.timeline_model.new_count > 0 and not view.worker.busy,
               (view.loaded, view.worker.busyChanged), "the record's news")
    _save(view, out / "record.png")
    _dispose(view)

    viewer = EmailViewer(load_viewer_data(data.store, data.offer_id), data.store.attachment_content,
                         tr=tr)
    viewer.show()
    _save(viewer, out / "email_viewer.png")
    _dispose(viewer)


def reports(out: Path, data: Sample, tr: Language) -> None:
    """The reports for the last 30 days: per email, and per day with the chart."""
    window = ReportsWindow(data.store, now=lambda: NOW, tr=tr)
    window.show()
    wait_until(lambda: window.report is not None and not window.worker.busy,
               (window.loaded, window.loadFailed, window.worker.busyChanged), "the reports")
    _save(window, out / "reports.png")
    window.tabs.setCurrentIndex(2)
    _save(window, out / "reports_chart.png")
    _dispose(window)


def icon_sheet(out: Path) -> None:
    """Every icon at tray sizes, on a light and a dark panel."""
    states = list(ConnectionState)
    cell = max(ICON_SIZES) + 12
    width = len(ICON_SIZES) * cell + 12
    image = QImage(width * 2, (len(states) + 1) * cell + 12, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    for column, (theme, colour) in enumerate(PANELS.items()):
        painter.fillRect(column * width, 0, width, image.height(), QColor(colour))
        icons = IconSet(theme)
        rows = [icons.tray(state) for state in states] + [icons.app()]
        for row, icon in enumerate(rows):
            for index, size in enumerate(ICON_SIZES):
                x = column * width + 12 + index * cell
                y = 12 + row * cell + (cell - 12 - size) // 2
                painter.drawPixmap(x, y, icon.pixmap(size, size))
    painter.end()
    _write_png(image, out / "icons.png")


def main(argv: list[str]) -> int:
    """Render everything into the folder given (``--lang pl``: in Polish)."""
    code = "en"
    if len(argv) == 3 and argv[0] == "--lang" and argv[1] in LANGUAGES:
        code, argv = argv[1], argv[2:]
    if len(argv) != 1:
        print("usage: screenshots.py [--lang en|pl] OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tr = Language.load(code)  # times in TZ (UTC unless it says otherwise)
    qt_language = QtLanguage(app, tr)  # Qt's own buttons in the same language
    icons = IconSet(PanelTheme.LIGHT)
    with tempfile.TemporaryDirectory(prefix="mailbeacon-screenshots-") as root, \
            sample(Path(root)) as data:
        first_run(out, tr)
        toast(out, icons, data, tr)
        tray_menus(out, icons, tr)
        settings_tabs(out, data, tr)
        account_flow(out, tr)
        activity(out, data, tr)
        compose(out, data, tr)
        contacts(out, data, tr)
        record_and_viewer(out, data, tr)
        reports(out, data, tr)
        icon_sheet(out)
    del qt_language, app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
