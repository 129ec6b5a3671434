"""Labels for text from outside, the one-line status and result texts of the windows,
and the message a list window shows in place of an empty list.

Subjects, names, addresses and servers' answers are shown as plain text, never
as rich text (CONTRIBUTING.md, "Code style"): ``<b>x</b>`` shows those
characters. A status line is red when it reports a failure; a test result is
green or red once the test answered.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"


def plain_label(text: str = "", *, wrap: bool = False) -> QLabel:
    """A label that shows ``text`` as typed and lets the rep select and copy it."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def show_status(label: QLabel, text: str, error: bool = False) -> None:
    """Put ``text`` in a status line, red when it reports a failure."""
    label.setStyleSheet(ERROR_STYLE if error else "")
    label.setText(text)


def show_result(label: QLabel, ok: bool | None, text: str) -> None:
    """Put a test's answer in ``label``: green if it passed, red if not, plain while running."""
    label.setText(text)
    label.setStyleSheet("" if ok is None else OK_STYLE if ok else ERROR_STYLE)


def empty_state(content: QWidget) -> tuple[QStackedWidget, QLabel]:
    """A stack showing ``content``, and the centred label to show in its place when
    there is nothing to list (``stack.setCurrentWidget`` switches between them)."""
    empty = plain_label(wrap=True)
    empty.setObjectName("empty")
    empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
    stack = QStackedWidget()
    stack.addWidget(content)
    stack.addWidget(empty)
    return stack, empty
