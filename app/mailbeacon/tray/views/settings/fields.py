"""The settings dialog's fields: one input widget per key, chosen by the key's value kind.

True/false: a check box; whole numbers: a spin box over the key's range;
decimals: a spin box that keeps an untouched value exactly as loaded; a choice:
a combo box; a moment (the pause): a check box and a local date-time picker; a
size in bytes (``MB_KEYS``): a spin box in MB, as mail providers state their
limits; anything else: a line edit; secrets: a masked line edit where empty keeps
the stored secret. Each field has an error line under its input, and ``text()``
gives the value as ``Settings.set`` takes it (bytes, UTC), whatever the rep sees.
The words shown for each key are in ``settings.wording``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.settings.kinds import (
    BoolKind,
    ChoiceKind,
    FloatKind,
    IntKind,
    TimestampKind,
)
from mailbeacon.agent.settings.store import SettingSpec
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.tray.views.labels import ERROR_STYLE, plain_label
from mailbeacon.tray.views.settings.wording import (
    CHOICE_LABELS,
    LABELS,
    PLACEHOLDERS,
    SUFFIXES,
    label_for,
)

__all__ = [
    "LABELS",
    "BoolField",
    "ChoiceField",
    "Field",
    "FloatField",
    "IntField",
    "MegabytesField",
    "PauseField",
    "SecretField",
    "TextField",
    "label_for",
    "make_field",
]

MB = 1024 * 1024  # what mail clients and providers call a megabyte
MB_KEYS = frozenset({"relay.max_message_bytes"})  # stored in bytes, shown in MB
PAUSE_FORMAT = "ddd d MMM yyyy, HH:mm"  # local time, the way the tray menu says it


class Field(ABC):
    """One key's input widget, its error line and the row that holds both.

    ``full_row``: the row carries its own words (a check box) and spans the form.
    """

    full_row = False

    def __init__(self, key: str, widget: QWidget, doc: str, tr: Language = ENGLISH) -> None:
        self.key = key
        self.widget = widget
        self.widget.setObjectName(key)
        self.widget.setToolTip(f"{tr.t(doc)} ({key})" if doc else key)
        self.error = QLabel()
        self.error.setObjectName(f"{key}.error")
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.hide()
        self.row = QWidget()
        layout = QVBoxLayout(self.row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.line = QHBoxLayout()
        self.line.setContentsMargins(0, 0, 0, 0)
        self.line.addWidget(widget, 1)
        layout.addLayout(self.line)
        layout.addWidget(self.error)

    @abstractmethod
    def text(self) -> str:
        """The value as ``Settings.set`` takes it."""

    def add_note(self, text: str) -> QLabel:
        """A line of explanation under the input."""
        note = plain_label(text, wrap=True)
        layout = self.row.layout()
        if isinstance(layout, QVBoxLayout):
            layout.insertWidget(1, note)
        return note

    def show_error(self, message: str) -> None:
        """Show why the value was refused (empty: clear)."""
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def set_enabled(self, enabled: bool) -> None:
        """Grey the field out (its value is still saved)."""
        self.widget.setEnabled(enabled)


class BoolField(Field):
    """A check box."""

    full_row = True

    def __init__(self, key: str, value: bool, doc: str, tr: Language = ENGLISH) -> None:
        self.box = QCheckBox(label_for(key, tr))
        self.box.setChecked(value)
        super().__init__(key, self.box, doc, tr)

    def text(self) -> str:
        return "true" if self.box.isChecked() else "false"


class IntField(Field):
    """A spin box over the key's range."""

    def __init__(
        self, key: str, value: int, kind: IntKind, doc: str, tr: Language = ENGLISH
    ) -> None:
        self.spin = QSpinBox()
        self.spin.setRange(kind.low, kind.high)
        self.spin.setGroupSeparatorShown(kind.high >= 100_000)
        self.spin.setSuffix(_suffix(key, tr))
        self.spin.setValue(value)
        super().__init__(key, self.spin, doc, tr)

    def text(self) -> str:
        return str(self.spin.value())


class MegabytesField(Field):
    """A size stored in bytes, shown and edited in MB; an untouched value is kept exactly."""

    def __init__(
        self, key: str, value: int, kind: IntKind, doc: str, tr: Language = ENGLISH
    ) -> None:
        self.spin = QDoubleSpinBox()
        # One decimal: the smallest allowed size (64 KB) still shows as 0.1 MB, not 0.
        self.spin.setDecimals(1)
        self.spin.setRange(kind.low / MB, kind.high / MB)
        self.spin.setSingleStep(1)
        self.spin.setGroupSeparatorShown(True)
        self.spin.setSuffix(_suffix(key, tr, " MB"))
        self.spin.setValue(value / MB)
        self._kind = kind
        self._loaded = (self.spin.value(), value)
        super().__init__(key, self.spin, doc, tr)

    def text(self) -> str:
        shown, original = self._loaded
        if self.spin.value() == shown:
            return str(original)
        return str(min(max(round(self.spin.value() * MB), self._kind.low), self._kind.high))


class PauseField(Field):
    """ "Paused until" a local date and time; unticked: not paused. Stored as UTC ISO 8601.

    A pause already over shows unticked (nothing is paused), but an untouched
    field keeps the stored text exactly, so OK changes nothing by itself.
    """

    full_row = True

    def __init__(
        self,
        key: str,
        value: str,
        doc: str,
        now: datetime | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        moment = _parse_utc(value)
        current = now or datetime.now(UTC)
        self.box = QCheckBox(tr.t("{label}:", label=label_for(key, tr)))
        self.box.setChecked(moment is not None and moment > current)
        self.picker = QDateTimeEdit()
        self.picker.setCalendarPopup(True)
        self.picker.setDisplayFormat(PAUSE_FORMAT)
        shown = moment if moment is not None and moment > current else _next_hour(current)
        self.picker.setDateTime(QDateTime.fromSecsSinceEpoch(int(shown.timestamp())))
        self.picker.setEnabled(self.box.isChecked())
        self.box.toggled.connect(self.picker.setEnabled)
        self._loaded = (self.box.isChecked(), self.picker.dateTime(), value)
        super().__init__(key, self.picker, doc, tr)
        self.line.insertWidget(0, self.box)
        self.line.setStretch(1, 1)

    def text(self) -> str:
        checked, shown, original = self._loaded
        if (self.box.isChecked(), self.picker.dateTime()) == (checked, shown):
            return original
        if not self.box.isChecked():
            return ""
        moment = datetime.fromtimestamp(self.picker.dateTime().toSecsSinceEpoch(), UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def set_enabled(self, enabled: bool) -> None:
        self.box.setEnabled(enabled)
        self.picker.setEnabled(enabled and self.box.isChecked())


class FloatField(Field):
    """A spin box with decimals; an untouched value is kept exactly as it was."""

    def __init__(
        self, key: str, value: float, kind: FloatKind, doc: str, tr: Language = ENGLISH
    ) -> None:
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(2)
        self.spin.setRange(kind.low, kind.high)
        self.spin.setSingleStep(0.5)
        self.spin.setSuffix(_suffix(key, tr))
        self.spin.setValue(value)
        self._loaded = (self.spin.value(), kind.render(value))
        super().__init__(key, self.spin, doc, tr)

    def text(self) -> str:
        shown, original = self._loaded
        return original if self.spin.value() == shown else f"{self.spin.value():g}"


class ChoiceField(Field):
    """A combo box of the key's options."""

    def __init__(
        self, key: str, value: str, kind: ChoiceKind, doc: str, tr: Language = ENGLISH
    ) -> None:
        self.combo = QComboBox()
        names = CHOICE_LABELS.get(key, {})
        for option in kind.options:
            self.combo.addItem(tr.t(names[option]) if option in names else option, option)
        self.combo.setCurrentIndex(max(0, kind.options.index(value)))
        super().__init__(key, self.combo, doc, tr)

    def text(self) -> str:
        return str(self.combo.currentData())


class TextField(Field):
    """A line edit."""

    def __init__(self, key: str, value: str, doc: str, tr: Language = ENGLISH) -> None:
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(tr.t(PLACEHOLDERS[key]) if key in PLACEHOLDERS else "")
        super().__init__(key, self.edit, doc, tr)

    def text(self) -> str:
        return self.edit.text()


class SecretField(Field):
    """A masked line edit; empty keeps the stored secret."""

    def __init__(self, key: str, stored: bool | None, tr: Language = ENGLISH) -> None:
        self._tr = tr
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_box = QCheckBox(tr.t("Show"))
        self.show_box.toggled.connect(self._show)
        super().__init__(key, self.edit, tr.t("kept in the OS keyring, never in the settings file"))
        self.line.addWidget(self.show_box)
        self.set_stored(stored)

    def set_stored(self, stored: bool | None) -> None:
        """Say whether the keyring holds this secret (None: it cannot be read)."""
        tr = self._tr
        self.edit.setPlaceholderText(
            tr.t("(keyring unavailable)")
            if stored is None
            else tr.t("stored in the keyring: leave empty to keep it")
            if stored
            else tr.t("not set")
        )

    def text(self) -> str:
        return self.edit.text()

    def reveal(self, text: str) -> None:
        """Put ``text`` in the field, visible (a generated password to copy)."""
        self.edit.setText(text)
        self.show_box.setChecked(True)

    def _show(self, shown: bool) -> None:
        self.edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)


def make_field(spec: SettingSpec, value: Any, tr: Language = ENGLISH) -> Field:
    """The widget for one setting, chosen by its value kind, worded in ``tr``."""
    key, kind, doc = spec.key, spec.kind, spec.doc
    field: Field
    if isinstance(kind, BoolKind):
        field = BoolField(key, bool(value), doc, tr)
    elif isinstance(kind, IntKind):
        maker = MegabytesField if key in MB_KEYS else IntField
        field = maker(key, int(value), kind, doc, tr)
    elif isinstance(kind, FloatKind):
        field = FloatField(key, float(value), kind, doc, tr)
    elif isinstance(kind, ChoiceKind):
        field = ChoiceField(key, str(value), kind, doc, tr)
    elif isinstance(kind, TimestampKind):
        field = PauseField(key, kind.render(value), doc, tr=tr)
    else:
        field = TextField(key, kind.render(value), doc, tr)
    return field


def _suffix(key: str, tr: Language, default: str = "") -> str:
    return tr.t(SUFFIXES[key]) if key in SUFFIXES else default


def _parse_utc(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _next_hour(now: datetime) -> datetime:
    """The top of the hour at least an hour from now: what a rep most often picks."""
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
