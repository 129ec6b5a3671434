"""Renders the follow-up windows (issue 17) offscreen to PNG.

Usage: ``.venv/bin/python packaging/screenshot_followup.py OUTDIR`` (the committed
pictures live in ``packaging/screenshots/``). Writes ``scheduled.png`` (the
Scheduled window with three waiting emails), ``compose_send_later.png`` (compose
with the "Send later…" menu open and the reminder box), ``reminder_notification.png``
(the notification as the in-app toast shows it), ``reminder.png`` (what a "No
reply from …" notification opens when clicked) and ``sequences.png`` (a three-step
sequence six contacts into it). Kept apart from ``screenshots.py``; it
reuses that module's offscreen set-up and saving. Sample data lives in a
temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

# Importing the module first sets the offscreen platform and TZ, before Qt loads.
import screenshots
from PySide6.QtCore import QPoint
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import QApplication

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.notifications import wording
from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.records.model import EventRecord, Recipient, SentEmail
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.language import LANGUAGES, Language
from mailbeacon.tray.assets import IconSet, PanelTheme
from mailbeacon.tray.desktop.toast import Toast
from mailbeacon.tray.language import QtLanguage
from mailbeacon.tray.views.compose.window import ComposeDefaults, ComposeWindow
from mailbeacon.tray.views.reminder import ReminderWindow
from mailbeacon.tray.views.scheduled.window import ScheduledWindow
from mailbeacon.tray.views.sequences.window import SequencesWindow

WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 12, 7, 16, 5, tzinfo=UTC)  # Monday, 17:05 in Warsaw
DAY = 86400.0


def _later(store: FollowupStore, to: str, subject: str, hours: float, remind: str | None) -> None:
    store.schedule(
        mail_from="anna.kowalska@mojafirma.pl", recipients=(to.rpartition("<")[2].strip(">"),),
        data=f"Subject: {subject}\r\n\r\n".encode(), track=None, log=None, opens=None,
        remind=remind, subject=subject, to_text=to, message_id=f"<{hours}@mojafirma.pl>",
        created_at=NOW.timestamp(), send_at=NOW.timestamp() + hours * 3600,
    )  # fmt: skip


def scheduled(out: Path, root: Path, tr: Language) -> None:
    """Three emails waiting, the second selected."""
    store = FollowupStore(root / "followup.db")
    tomorrow_eight = 15 - 5 / 60  # Tue 08:00 in Warsaw
    _later(store, "Alicja Nowak <alicja.nowak@klient.pl>", "Oferta Q1 2027 — warunki",
           tomorrow_eight, "3d")  # fmt: skip
    _later(store, "Piotr Lis <piotr.lis@hurt-lis.pl>", "Umowa ramowa do podpisu",
           tomorrow_eight + 1.5, None)  # fmt: skip
    _later(store, "Ewa Zielińska <ewa@zielinska.eu>", "Zaproszenie na targi",
           tomorrow_eight + 49, "0d")  # fmt: skip
    window = ScheduledWindow(
        store, clock=NOW.timestamp, zone=lambda: WARSAW, edit=lambda _item, _data: None, tr=tr
    )
    window.select_row(1)
    screenshots._save(window, out / "scheduled.png")
    screenshots._dispose(window)
    store.close()


def compose_send_later(out: Path, tr: Language) -> None:
    """Compose with the reminder ticked and the Send later menu open beside it."""
    window = ComposeWindow(
        lambda _m: "", defaults=ComposeDefaults("Anna Kowalska <anna.kowalska@mojafirma.pl>",
                                                remind_days=3),
        clock=lambda: NOW, zone=lambda: WARSAW, tr=tr,
    )  # fmt: skip
    window.resize(820, 560)
    window.to_edit.setText("Alicja Nowak <alicja.nowak@klient.pl>")
    window.subject_edit.setText("Oferta Q1 2027 — warunki")
    window.editor.setHtml("<p>Dzień dobry Pani Alicjo,</p><p>w załączeniu nasza oferta.</p>")
    window.show()
    QApplication.processEvents()
    base = window.grab()
    menu = window.later_button.later_menu
    menu.ensurePolished()
    window.later_button.refresh_labels()
    menu.adjustSize()
    picture = menu.grab()
    corner = window.later_button.mapTo(window, QPoint(0, 0))
    at = QPoint(
        min(corner.x(), base.width() - picture.width() - 8), corner.y() - picture.height() - 4
    )
    canvas = QPixmap(base)
    painter = QPainter(canvas)
    painter.drawPixmap(at, picture)
    painter.end()
    screenshots._write_png(canvas.toImage(), out / "compose_send_later.png")
    screenshots._dispose(window)


def reminder(out: Path, root: Path, tr: Language) -> None:
    """What a reminder notification opens."""
    records = RecordsStore(root / "records.db")
    followup = FollowupStore(root / "followup.db")
    email_id = records.record_sent(
        SentEmail(
            message_id="<q1@mojafirma.pl>", message_key="k", subject="Oferta Q1 2027 — warunki",
            sender="anna.kowalska@mojafirma.pl", sent_at="2026-12-02T09:00:00Z",
            recipients=(Recipient("alicja.nowak@klient.pl", "to", "Alicja Nowak", None),),
            track=True, log=True, tracked=True,
        )
    )  # fmt: skip
    note = Notification(
        event=None, type="reminder", message_id="<q1@mojafirma.pl>",
        subject="Oferta Q1 2027 — warunki", recipient="alicja.nowak@klient.pl",
        anonymous=False, title=_reminder_title(tr), body=_reminder_body(tr),
        at="2026-12-07T16:05:00.000Z", email_id=email_id,
    )  # fmt: skip
    toast = Toast(IconSet(PanelTheme.LIGHT).app())
    toast.title_label.setText(note.title)
    toast.body_label.setText(note.body)
    screenshots._save(toast, out / "reminder_notification.png", fit=True)
    screenshots._dispose(toast)
    window = ReminderWindow(
        note, followup, records, clock=NOW.timestamp, open_email=lambda _i: None,
        write=lambda _f: None, tr=tr,
    )  # fmt: skip
    screenshots._save(window, out / "reminder.png", fit=True)
    screenshots._dispose(window)
    followup.close()
    records.close()


SEQUENCE = """
name = "q1-2027-oferta"
from = "Anna Kowalska <anna.kowalska@mojafirma.pl>"
[window]
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "08:00-18:00"
timezone = "Europe/Warsaw"
daily_cap = 50
[[step]]
subject = "Oferta Q1 2027 dla {company}"
html = "<p>Dzień dobry {first_name}</p>"
[[step]]
delay = "2d"
html = "<p>Czy oferta dotarła?</p>"
[[step]]
delay = "4d"
text = "Ostatnia wiadomość w tej sprawie."
"""
PEOPLE = (
    ("alicja.nowak@klient.pl", 1, "replied"),
    ("piotr.lis@hurt-lis.pl", 1, "bounced"),
    ("ewa@zielinska.eu", 3, "finished"),
    ("marek.wrona@wrona-transport.pl", 2, "active"),
    ("jan.kowal@kowal-sa.pl", 1, "active"),
    ("olga.bak@bak-bud.pl", 2, "active"),
)


def _reminder_title(tr: Language) -> str:
    """The reminder's title as the agent words it ("No reply from … in 3 days")."""
    return tr.t("No reply from {name} to {subject} in {delay}", name="Alicja Nowak",
                subject=wording.quoted("Oferta Q1 2027 — warunki", tr),
                delay=tr.n("{count} day", "{count} days", 3))


def _reminder_body(tr: Language) -> str:
    """When it was sent, in the rep's zone and words ("Wed 2 Dec 10:00")."""
    here = tr.in_zone(WARSAW)
    sent = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    when = here.t("{weekday} {date} {time}", weekday=here.weekday(sent),
                  date=here.short_day(sent), time=here.clock(sent))
    return tr.t("Sent {when}. Click to open the record, write a follow-up or snooze.", when=when)


def sequences(out: Path, root: Path, tr: Language) -> None:
    """A running three-step sequence six contacts into it."""
    records = RecordsStore(root / "seq-records.db")
    store = FollowupStore(root / "seq-followup.db")
    start = NOW.timestamp() - 6 * DAY
    store.add_sequence("q1-2027-oferta", SEQUENCE, start)
    store.enroll("q1-2027-oferta", [(email, {}) for email, _n, _s in PEOPLE], start)
    hits = iter(range(1, 1000))
    for enrollment, (email, sent, state) in zip(
        store.enrollments("q1-2027-oferta"), PEOPLE, strict=True
    ):
        for step in range(sent):
            at = start + step * 2 * DAY
            email_id = records.record_sent(
                SentEmail(
                    message_id=f"<{enrollment.id}.{step}@mojafirma.pl>",
                    message_key=f"k{next(hits)}",
                    subject="Oferta", sender="anna.kowalska@mojafirma.pl",
                    sent_at=datetime.fromtimestamp(at, UTC).isoformat(),
                    recipients=(Recipient(email, "to"),), track=True, log=False, tracked=True,
                )
            )  # fmt: skip
            store.claim_step(enrollment.id, step, f"<{enrollment.id}.{step}@m>", "", at)
            # Tue 09:00, Tue 10:30, Wed 08:00 in Warsaw (inside the window)
            soon = {4: 16 * 3600 - 300, 5: 17.5 * 3600 - 300, 6: 39 * 3600 - 300}
            next_at = NOW.timestamp() + soon.get(enrollment.id, 0)
            store.step_sent(enrollment.id, step, email_id, next_at, step == 2)
            if state != "bounced" and (step == 0 or enrollment.id % 2 == 0):
                records.add_event(EventRecord(
                    type="open", at=datetime.fromtimestamp(at + 3600, UTC).isoformat(),
                    email_id=email_id, contact=email, server_id=next(hits),
                ))  # fmt: skip
            if step == 0 and enrollment.id in (3, 4):
                records.add_event(EventRecord(
                    type="click", at=datetime.fromtimestamp(at + 4000, UTC).isoformat(),
                    email_id=email_id, contact=email, server_id=next(hits),
                ))  # fmt: skip
            if state == "replied":
                records.add_event(EventRecord(
                    type="reply", at=datetime.fromtimestamp(at + 7200, UTC).isoformat(),
                    email_id=email_id, contact=email, local_key=f"reply:{email}",
                ))  # fmt: skip
        if state in ("replied", "bounced"):
            store.leave(enrollment.id, state, state)
    window = SequencesWindow(store, records, zone=lambda: WARSAW, tr=tr)
    screenshots._save(window, out / "sequences.png")
    screenshots._dispose(window)
    store.close()
    records.close()


def main(argv: list[str]) -> int:
    """Render into the folder given (``--lang pl``: in Polish)."""
    code = "en"
    if len(argv) == 3 and argv[0] == "--lang" and argv[1] in LANGUAGES:
        code, argv = argv[1], argv[2:]
    if len(argv) != 1:
        print("usage: screenshot_followup.py [--lang en|pl] OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tr = Language.load(code)
    qt_language = QtLanguage(app, tr)
    with tempfile.TemporaryDirectory() as tmp:
        scheduled(out, Path(tmp), tr)
        compose_send_later(out, tr)
        reminder(out, Path(tmp), tr)
        sequences(out, Path(tmp), tr)
    del qt_language, app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
