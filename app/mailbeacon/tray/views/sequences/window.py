"""The Sequences window: pick a sequence; see its steps with opens, clicks and replies,
and each contact's step, state and next send; pause or resume it, remove a contact.

It reads and changes the follow-up store (agent/followup/store.py) like ``mailbeacon
sequence``; the running agent acts on the change at its next pass. *New from file…*
and *Enroll from CSV…* check exactly as ``sequence create`` and ``sequence enroll``
do (agent/followup/enrolment.py): a refusal lists every problem, rows by line, and
stores nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.followup.enrolment import create_sequence, enroll_rows
from mailbeacon.agent.followup.status import SequenceStatus, sequence_status
from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import ENGLISH, Language, in_language, mark
from mailbeacon.core.sequence_spec import SequenceError, TemplateLookup, parse_contacts_csv
from mailbeacon.tray.views.compose.later import local_zone
from mailbeacon.tray.views.compose.widgets import Confirm, confirm_dialog
from mailbeacon.tray.views.labels import plain_label, show_status
from mailbeacon.tray.views.sequences.model import EnrolledModel, StepsModel
from mailbeacon.tray.views.tables import setup_read_only_table

REFRESH_MS = 2000
EMPTY = mark(
    "No sequences yet. Write one as a TOML file (see the guide) and choose "
    "“New from file…”, then “Enroll from CSV…” — or `mailbeacon sequence create FILE`."
)

# parent, title, file filter: the chosen path, or None when cancelled
ChooseFile = Callable[[QWidget, str, str], str | None]


def choose_file_dialog(parent: QWidget, title: str, filters: str) -> str | None:
    """Ask for one file to open."""
    path, _filter = QFileDialog.getOpenFileName(parent, title, "", filters)
    return path or None


def _no_templates(_name: str) -> tuple[str, str] | None:
    return None


class SequencesWindow(QWidget):
    """Every sequence, one at a time."""

    def __init__(
        self,
        store: FollowupStore,
        records: RecordsStore | None,
        *,
        zone: Callable[[], tzinfo] = local_zone,
        confirm: Confirm = confirm_dialog,
        settings: Callable[[], Settings] = Settings,
        templates: TemplateLookup = _no_templates,
        choose_file: ChooseFile = choose_file_dialog,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self._store = store
        self._records = records
        self._confirm = confirm
        self._settings = settings
        self._templates = templates
        self._choose_file = choose_file
        self._clock = clock
        self.status_now: SequenceStatus | None = None
        self.setWindowTitle(tr.t("Sequences — MailBeacon"))
        self.resize(900, 560)
        self.chooser = QComboBox()
        self.state_label = QLabel()
        self.pause_button = QPushButton(tr.t("&Pause"))
        self.empty_label = plain_label(tr.t(EMPTY), wrap=True)
        self.steps_model = StepsModel(self, tr)
        self.steps_table = QTableView()
        self.steps_table.setModel(self.steps_model)
        setup_read_only_table(self.steps_table, ((0, 50), (1, 100), (2, 340), (3, 60),
                                                 (4, 60), (5, 60)))  # fmt: skip
        self.contacts_model = EnrolledModel(self._step_count, zone, self, tr)
        self.contacts_table = QTableView()
        self.contacts_table.setModel(self.contacts_model)
        setup_read_only_table(self.contacts_table, ((0, 280), (1, 100), (2, 180)))
        self.remove_button = QPushButton(tr.t("&Remove from sequence"))
        self.new_button = QPushButton(tr.t("&New from file…"))
        self.enroll_button = QPushButton(tr.t("&Enroll from CSV…"))
        self.status = plain_label(wrap=True)
        self._lay_out()
        self.chooser.currentTextChanged.connect(lambda _t: self.reload())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.remove_button.clicked.connect(self.remove_selected)
        self.new_button.clicked.connect(self.new_from_file)
        self.enroll_button.clicked.connect(self.enroll_from_csv)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.reload)
        self._timer.start()
        self.reload_names()

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        tr = self._tr
        top.addWidget(QLabel(tr.t("Sequence:")))
        top.addWidget(self.chooser, 1)
        top.addWidget(self.state_label)
        top.addWidget(self.pause_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.new_button)
        bottom.addWidget(self.enroll_button)
        bottom.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.empty_label)
        layout.addWidget(QLabel(tr.t("Steps")))
        layout.addWidget(self.steps_table, 2)
        layout.addWidget(QLabel(tr.t("Contacts")))
        layout.addWidget(self.contacts_table, 3)
        layout.addLayout(bottom)

    def _step_count(self) -> int:
        return len(self.status_now.steps) if self.status_now else 0

    def reload_names(self) -> None:
        """The list of sequences (keeping the one chosen)."""
        chosen = self.chooser.currentText()
        names = [row.name for row in self._store.sequences()]
        self.chooser.blockSignals(True)
        self.chooser.clear()
        self.chooser.addItems(names)
        if chosen in names:
            self.chooser.setCurrentText(chosen)
        self.chooser.blockSignals(False)
        self.empty_label.setVisible(not names)
        self.reload()

    def reload(self) -> None:
        """Read the chosen sequence again."""
        name = self.chooser.currentText()
        if self.chooser.count() != len(self._store.sequences()):
            self.reload_names()
            return
        self.status_now = sequence_status(self._store, self._records, name) if name else None
        status = self.status_now
        self.steps_model.set_rows(status.steps if status else ())
        self.contacts_model.set_rows(status.contacts if status else ())
        paused = status is not None and status.row.state == "paused"
        tr = self._tr
        self.state_label.setText(
            "" if status is None else (tr.t("Paused") if paused else tr.t("Running"))
        )
        self.pause_button.setText(tr.t("&Resume") if paused else tr.t("&Pause"))
        self.pause_button.setEnabled(status is not None)
        self.remove_button.setEnabled(status is not None)
        self.enroll_button.setEnabled(status is not None)

    def choose(self, name: str) -> None:
        """Show sequence ``name``."""
        self.chooser.setCurrentText(name)
        self.reload()

    def toggle_pause(self) -> None:
        """Pause a running sequence, resume a paused one (nothing is lost while paused)."""
        status = self.status_now
        if status is None:
            return
        paused = status.row.state == "paused"
        self._store.set_sequence_state(status.row.name, "active" if paused else "paused")
        show_status(self.status, self._tr.t("Running again.") if paused
                    else self._tr.t("Paused: nothing is sent."))
        self.reload()

    def remove_selected(self) -> None:
        """Take the selected contact out: nothing more is sent to them."""
        rows = self.contacts_table.selectionModel().selectedRows()
        chosen = self.contacts_model.row_at(rows[0]) if rows else None
        tr = self._tr
        if chosen is None:
            show_status(self.status, tr.t("Select a contact first."), error=True)
            return
        if not self._confirm(self, tr.t("Send nothing more to {email}?", email=chosen.email)):
            return
        done = self._store.leave(chosen.id, "removed", "removed by the rep")
        show_status(
            self.status,
            tr.t("Removed {email}.", email=chosen.email) if done
            else tr.t("{email} had left already.", email=chosen.email),
            error=not done,
        )
        self.reload()

    def new_from_file(self) -> None:
        """Store a sequence from its TOML file, checked whole first."""
        tr = self._tr
        path = self._choose_file(
            self, tr.t("New sequence"), tr.t("Sequences (*.toml);;All files (*)")
        )
        if path is None:
            return
        try:
            source = Path(path).read_text(encoding="utf-8")
            sequence = create_sequence(
                self._store, source, self._settings(), self._templates, self._clock()
            )
        except (OSError, UnicodeDecodeError) as exc:
            show_status(self.status, tr.t("Cannot read {path}: {error}", path=path, error=exc),
                        error=True)
            return
        except SequenceError as exc:
            self._refused(tr.t("{name} was not stored", name=Path(path).name), exc)
            return
        self.reload_names()
        self.choose(sequence.name)
        show_status(self.status, tr.n("Created “{name}” with {count} step.",
                                      "Created “{name}” with {count} steps.",
                                      len(sequence.steps), name=sequence.name))

    def enroll_from_csv(self) -> None:
        """Enrol the contacts of a CSV in the shown sequence: all of them, or none."""
        status = self.status_now
        if status is None:
            return
        tr = self._tr
        path = self._choose_file(
            self, tr.t("Enroll contacts"), tr.t("CSV files (*.csv);;All files (*)")
        )
        if path is None:
            return
        try:
            rows = parse_contacts_csv(Path(path).read_text(encoding="utf-8"))
            already = enroll_rows(
                self._store, status.row.name, rows, self._templates, self._clock()
            )
        except (OSError, UnicodeDecodeError) as exc:
            show_status(self.status, tr.t("Cannot read {path}: {error}", path=path, error=exc),
                        error=True)
            return
        except SequenceError as exc:
            self._refused(tr.t("Nobody was enrolled"), exc)
            return
        added = len(rows) - len(already)
        text = tr.n("Enrolled {count} contact.", "Enrolled {count} contacts.", added)
        if already:
            text = tr.n("{enrolled} ({count} was in it already)",
                        "{enrolled} ({count} were in it already)", len(already), enrolled=text)
        show_status(self.status, text)
        self.reload()

    def _refused(self, headline: str, error: SequenceError) -> None:
        lines = "\n".join(f"• {in_language(p, self._tr)}" for p in error.problems[:8])
        more = len(error.problems) - 8
        tail = ""
        if more > 0:
            tail = "\n" + self._tr.n("… and {count} more", "… and {count} more", more)
        show_status(self.status, f"{headline}:\n{lines}{tail}", error=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._timer.stop()
        super().closeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        self._timer.start()
        self.reload_names()
        super().showEvent(event)
