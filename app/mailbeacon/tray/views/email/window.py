"""One sent email's own window, where a notification click lands (issue 20).

From the top: the subject, when it was sent and to whom, whether it was tracked
and logged, and one line of what came of it ("2 of 3 opened · 1 replied"). Then
each recipient with their opens, clicks and replies, or "Not opened yet"
(double-click opens the contact's record); the buttons that act on it; and the
email's timeline, the events a person made first-class and the others (scanners,
image proxies, the rep's own) behind "Details", greyed, with the reason.

The window reads through ``agent.records.email_view`` on its own ``Worker`` and
never touches the database itself. The buttons open a compose window pre-filled
by ``actions`` (the caller's ``compose`` callback makes it), or the logged copy
in the existing ``EmailViewer``. ``EmailWindows`` keeps one window per email.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.email_view import EmailView, EmailViewSource, email_view
from mailbeacon.agent.records.model import EmailRecord
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.compose.window import ComposeWindow
from mailbeacon.tray.views.email.actions import (
    ComposeFill,
    follow_up_fill,
    reply_fill,
    resend_fill,
)
from mailbeacon.tray.views.email.model import (
    Clock,
    EmailTimelineModel,
    RecipientColumn,
    RecipientsModel,
    TimelineColumn,
    full_when,
    relative_when,
)
from mailbeacon.tray.views.email_viewer import (
    EmailViewer,
    LoggedEmailSource,
    ViewerData,
    load_viewer_data,
)
from mailbeacon.tray.views.labels import plain_label, show_status
from mailbeacon.tray.views.tables import AnyIndex, setup_read_only_table

log = logging.getLogger(__name__)

Compose = Callable[[ComposeFill], object]
ViewerFactory = Callable[[ViewerData], EmailViewer]


class EmailWindowSource(EmailViewSource, LoggedEmailSource, Protocol):
    """What the email window reads; ``RecordsStore`` is one."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def tracking_state(email: EmailRecord, tr: Language = ENGLISH) -> str:
    """Track and Log in plain words: "Tracked · Logged (a copy is kept)"."""
    if email.tracked:
        track = tr.t("Tracked")
    elif not email.track:
        track = tr.t("Not tracked (Track was off)")
    elif email.untracked_reason:
        track = tr.t("Not tracked: {reason}", reason=tr.t(email.untracked_reason))
    else:
        track = tr.t("Not tracked")
    log_text = (tr.t("Logged (a copy is kept)") if email.logged
                else tr.t("Not logged (no copy kept)"))
    return f"{track} · {log_text}"


def outcome_text(view: EmailView, tr: Language = ENGLISH) -> str:
    """One line of what came of it: "1 of 2 opened · 1 clicked · 1 replied"."""
    people = view.recipients
    total = len(people)
    if not view.email.tracked and not any(p.engaged for p in people):
        parts = [tr.t("Opens and clicks are not known (not tracked)")]
    else:
        opened = sum(1 for p in people if p.engaged)
        parts = [tr.n("{opened} of {count} opened", "{opened} of {count} opened", total,
                      opened=tr.number(opened))]
    clicked = sum(1 for p in people if p.clicks)
    replied = sum(1 for p in people if p.replies)
    if clicked:
        parts.append(tr.n("{count} clicked", "{count} clicked", clicked))
    if replied:
        parts.append(tr.n("{count} replied", "{count} replied", replied))
    if view.someone is not None:
        parts.append(tr.t("also opened by Someone"))
    if view.failed:
        parts.append(tr.n("{count} address could not be delivered",
                          "{count} addresses could not be delivered", len(view.failed)))
    return " · ".join(parts)


def fill_compose(window: ComposeWindow, fill: ComposeFill) -> ComposeWindow:
    """Put ``fill`` into a fresh compose window (and its note in the status line)."""
    window.to_edit.setText(", ".join(fill.to))
    window.cc_edit.setText(", ".join(fill.cc))
    window.bcc_edit.setText(", ".join(fill.bcc))
    window.subject_edit.setText(fill.subject)
    if fill.html:
        window.editor.setHtml(fill.html)
    elif fill.text:
        window.editor.setPlainText(fill.text)
    if fill.note:
        show_status(window.status, fill.note)
    # The rep's first job is the address (a resend) or the text (a reply).
    (window.to_edit if fill.address_first else window.editor).setFocus()
    return window


class EmailWindow(QWidget):
    """The view of the sent email ``email_id``.

    Signals: ``loaded()`` after each read; ``loadFailed(str)``; ``composeOpened(str)``
    with ``reply``, ``follow_up`` or ``resend``; ``copyOpened(int email_id)`` once
    the logged copy shows; ``closed()``.
    """

    loaded = Signal()
    loadFailed = Signal(str)
    composeOpened = Signal(str)
    copyOpened = Signal(int)
    closed = Signal()

    def __init__(
        self,
        source: EmailWindowSource,
        email_id: int,
        *,
        compose: Compose,
        open_contact: Callable[[str], object] | None = None,
        worker: Worker | None = None,
        viewer_factory: ViewerFactory | None = None,
        clock: Clock = _utc_now,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.email_id = email_id
        self.view: EmailView | None = None
        self.viewers: list[EmailViewer] = []
        self._source = source
        self._compose = compose
        self._open_contact = open_contact
        self._worker = worker or Worker(1, self)
        self._viewer_factory = viewer_factory or (
            lambda data: EmailViewer(data, source.attachment_content, tr=tr)
        )
        self._clock = clock
        self._generation = 0
        self.setWindowTitle(tr.t("Sent email — MailBeacon"))
        self.resize(900, 680)
        self._build()
        self._lay_out()
        self._connect()
        self.reload()

    # ------------------------------------------------------------ public

    @property
    def worker(self) -> Worker:
        """The worker the reads run on."""
        return self._worker

    def reload(self) -> None:
        """Read the email and its events again (off the UI thread)."""
        self._generation += 1
        generation = self._generation
        source, email_id = self._source, self.email_id
        self._worker.submit(
            lambda: email_view(source, email_id),
            lambda view: self._loaded(generation, view),
            lambda error: self._load_failed(generation, error),
        )

    def event_added(self, *_event: object) -> None:
        """Something new was stored: read again if the rep can see this window."""
        if self.isVisible():
            self.reload()

    def reply(self) -> None:
        """A compose window answering everyone the email went to."""
        self._open_compose("reply", reply_fill)

    def follow_up(self) -> None:
        """A compose window to those who have not opened yet."""
        self._open_compose("follow_up", lambda view: follow_up_fill(view, self._tr))

    def resend(self) -> None:
        """A compose window with the undelivered email, the failed address to correct."""
        self._open_compose("resend", lambda view: resend_fill(view, self._tr))

    def open_copy(self) -> None:
        """Show the logged copy in the email viewer (remote content blocked)."""
        source, email_id = self._source, self.email_id
        self._worker.submit(
            lambda: load_viewer_data(source, email_id),
            self._show_viewer,
            lambda error: self._set_status(str(error), error=True),
        )

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop background reads, here and in an open viewer (before the store closes)."""
        self._generation += 1
        for viewer in self.viewers:
            viewer.shutdown(timeout_ms)
        self._worker.close(timeout_ms)

    def closeEvent(self, event: QCloseEvent) -> None:
        event.accept()
        self.closed.emit()

    # ------------------------------------------------------------ building

    def _build(self) -> None:
        tr = self._tr
        self.subject = plain_label(tr.t("Loading…"), wrap=True)
        font = self.subject.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.subject.setFont(font)
        self.sent = plain_label(wrap=True)
        self.tracking = plain_label(wrap=True)
        self.outcome = plain_label(wrap=True)
        bold = self.outcome.font()
        bold.setBold(True)
        self.outcome.setFont(bold)

        self.recipients_model = RecipientsModel(self._clock, self, tr)
        self.recipients = QTableView()
        self.recipients.setModel(self.recipients_model)
        setup_read_only_table(self.recipients, ((RecipientColumn.WHO, 270),
                                                (RecipientColumn.STATUS, 175),
                                                (RecipientColumn.OPENS, 130),
                                                (RecipientColumn.CLICKS, 130)))
        self.recipients.setToolTip(tr.t("Double-click a recipient to open their record"))

        self.copy_button = QPushButton(tr.t("View the &logged copy"))
        self.reply_button = QPushButton(tr.t("&Reply"))
        self.follow_up_button = QPushButton(tr.t("&Follow up with those who have not opened"))
        self.resend_button = QPushButton(tr.t("&Correct the address and resend"))
        self.resend_button.setVisible(False)
        for button in (self.copy_button, self.reply_button, self.follow_up_button):
            button.setEnabled(False)

        self.timeline_model = EmailTimelineModel(self._clock, self, tr)
        self.timeline = QTableView()
        self.timeline.setModel(self.timeline_model)
        setup_read_only_table(self.timeline, ((TimelineColumn.WHEN, 140),
                                              (TimelineColumn.WHAT, 340)))
        self.details_button = QToolButton()
        self.details_button.setCheckable(True)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setAutoRaise(True)
        self.details_button.setText(tr.t("Details"))
        self.details_model = EmailTimelineModel(self._clock, self, tr)
        self.details = QTableView()
        self.details.setModel(self.details_model)
        setup_read_only_table(self.details, ((TimelineColumn.WHEN, 140),
                                             (TimelineColumn.WHAT, 340)))
        self.details.setVisible(False)
        self.status = plain_label(wrap=True)

    def _lay_out(self) -> None:
        people = QGroupBox(self._tr.t("Recipients"))
        people_layout = QVBoxLayout(people)
        people_layout.addWidget(self.recipients)
        # As tall as its rows: the room left goes to the timeline.
        self.recipients.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        people.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        actions = QHBoxLayout()
        actions.addWidget(self.reply_button)
        actions.addWidget(self.follow_up_button)
        actions.addWidget(self.resend_button)
        actions.addStretch(1)
        actions.addWidget(self.copy_button)
        timeline = QGroupBox(self._tr.t("Timeline"))
        timeline.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        timeline_layout = QVBoxLayout(timeline)
        timeline_layout.addWidget(self.timeline, 3)
        timeline_layout.addWidget(self.details_button)
        timeline_layout.addWidget(self.details, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.subject)
        layout.addWidget(self.sent)
        layout.addWidget(self.tracking)
        layout.addWidget(self.outcome)
        layout.addWidget(people)
        layout.addLayout(actions)
        layout.addWidget(timeline, 1)
        layout.addWidget(self.status)

    def _connect(self) -> None:
        self.reply_button.clicked.connect(self.reply)
        self.follow_up_button.clicked.connect(self.follow_up)
        self.resend_button.clicked.connect(self.resend)
        self.copy_button.clicked.connect(self.open_copy)
        self.details_button.toggled.connect(self._show_details)
        self.recipients.doubleClicked.connect(self._recipient_activated)

    # ------------------------------------------------------------ reading

    def _loaded(self, generation: int, view: EmailView | None) -> None:
        if generation != self._generation:
            return
        self.view = view
        tr = self._tr
        if view is None:
            self.subject.setText(tr.t("This email is not in the records"))
            self._set_status(tr.t("It may have been sent from another computer or profile."))
            self.loaded.emit()
            return
        email = view.email
        subject = email.subject or tr.t("(no subject)")
        self.subject.setText(subject)
        self.setWindowTitle(tr.t("{subject} — MailBeacon", subject=subject))
        names = ", ".join(p.display for p in view.recipients) or tr.t("nobody")
        self.sent.setText(tr.t("Sent {when} to {recipients}",
                               when=relative_when(email.sent_at, self._clock(), tr),
                               recipients=names))
        self.sent.setToolTip(tr.t("Sent {when} from {sender}",
                                  when=full_when(email.sent_at, tr), sender=email.sender))
        self.tracking.setText(tracking_state(email, tr))
        self.outcome.setText(outcome_text(view, tr))
        rows = list(view.recipients) + ([view.someone] if view.someone is not None else [])
        self.recipients_model.set_rows(rows)
        self._fit_recipients(len(rows))
        self.timeline_model.set_rows(view.human_events)
        self.details_model.set_rows(view.other_events)
        self._update_details_text()
        self._update_actions(view)
        events = len(view.human_events)
        self._set_status("" if events else tr.t("Nothing has happened with this email yet."))
        self.loaded.emit()

    def _load_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        log.error("reading sent email %s failed: %s", self.email_id, error)
        message = self._tr.t("The email could not be read: {error}", error=error)
        self._set_status(message, error=True)
        self.loadFailed.emit(message)

    def _update_actions(self, view: EmailView) -> None:
        self.reply_button.setEnabled(any(p.field in ("to", "cc") for p in view.recipients))
        tr = self._tr
        waiting = len(view.not_engaged)
        self.follow_up_button.setEnabled(waiting > 0 and view.email.tracked)
        self.follow_up_button.setText(
            tr.t("&Follow up with those who have not opened ({count})",
                 count=tr.number(waiting)) if waiting
            else tr.t("&Follow up with those who have not opened")
        )
        if not view.email.tracked:
            tip = tr.t("This email was not tracked: MailBeacon cannot tell who opened it.")
        elif not waiting:
            tip = tr.t("Everyone it reached has opened it.")
        else:
            tip = tr.t("A new email to: {recipients}", recipients=", ".join(view.not_engaged))
        self.follow_up_button.setToolTip(tip)
        self.copy_button.setEnabled(view.copy is not None)
        self.copy_button.setToolTip(
            tr.t("The email as it was sent, with its attachments") if view.copy is not None
            else tr.t("Sent without Log: no copy was kept")
        )
        self.resend_button.setVisible(bool(view.failed))
        self.resend_button.setToolTip(
            tr.t("Could not be delivered to: {recipients}", recipients=", ".join(view.failed))
        )

    def _fit_recipients(self, rows: int) -> None:
        """As tall as its rows (up to eight, then it scrolls): no empty grey box."""
        table = self.recipients
        height = table.horizontalHeader().height() + 2 * table.frameWidth() + 2
        height += table.verticalHeader().defaultSectionSize() * max(1, min(rows, 8))
        table.setFixedHeight(height)
        # The box's new height must reach the window's layout too (it does not on its own).
        box = table.parentWidget()
        if box is not None:
            box.updateGeometry()
        layout = self.layout()
        if layout is not None:
            layout.invalidate()

    def _update_details_text(self) -> None:
        count = self.details_model.rowCount()
        tr = self._tr
        self.details_button.setText(
            tr.n("Details: {count} event no person made (scanners, image proxies, you)",
                 "Details: {count} events no person made (scanners, image proxies, you)", count)
            if count else tr.t("Details: no events from scanners, image proxies or you")
        )
        self.details_button.setEnabled(bool(count))
        if not count:
            self.details_button.setChecked(False)

    def _show_details(self, shown: bool) -> None:
        self.details_button.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.details.setVisible(shown)

    # ------------------------------------------------------------ acting

    def _open_compose(self, kind: str, make: Callable[[EmailView], ComposeFill]) -> None:
        if self.view is None:
            return
        self._compose(make(self.view))
        self.composeOpened.emit(kind)

    def _recipient_activated(self, index: AnyIndex) -> None:
        person = self.recipients_model.row_at(index)
        if person is not None and person.email and self._open_contact is not None:
            self._open_contact(person.email)

    def _show_viewer(self, data: ViewerData) -> None:
        viewer = next((v for v in self.viewers if v.data.email.id == data.email.id), None)
        if viewer is None:
            viewer = self._viewer_factory(data)
            viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
            self.viewers.append(viewer)
        viewer.show()
        viewer.raise_()
        viewer.activateWindow()
        self.copyOpened.emit(data.email.id)

    def _set_status(self, text: str, error: bool = False) -> None:
        show_status(self.status, text, error)


class EmailWindows:
    """One ``EmailWindow`` per email, kept (hidden when closed) and read afresh on
    each open; all stop their reads when the application quits."""

    def __init__(self, make: Callable[[int], EmailWindow]) -> None:
        self._make = make
        self.windows: dict[int, EmailWindow] = {}
        app = QCoreApplication.instance()
        if app is not None:
            # Before the profile's store closes (that happens after the event loop).
            app.aboutToQuit.connect(self.shutdown)

    def open(self, email_id: int) -> EmailWindow:
        """Show the email's window (reading it again if it was open already)."""
        window = self.windows.get(email_id)
        if window is None:
            window = self.windows[email_id] = self._make(email_id)
        else:
            window.reload()
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def event_added(self, *_event: object) -> None:
        """Something new was stored: the visible windows read it again."""
        for window in self.windows.values():
            window.event_added()

    def shutdown(self, timeout_ms: int = 2000) -> None:
        """Stop every window's background reads and let the windows go."""
        windows, self.windows = list(self.windows.values()), {}
        for window in windows:
            window.shutdown(timeout_ms)
            window.deleteLater()
