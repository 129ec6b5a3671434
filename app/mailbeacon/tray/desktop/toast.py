"""The in-app toast: a small always-on-top box in the screen corner, for desktops
with neither a notification service nor a system tray."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, Qt, QTimer
from PySide6.QtGui import QEnterEvent, QFont, QIcon, QMouseEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

_MARGIN = 16
_WIDTH = 340


class Toast(QFrame):
    """Shows one title and body as plain text; a click runs ``on_click`` and closes it."""

    def __init__(
        self, icon: QIcon | None = None, duration_ms: int = 6000, parent: QWidget | None = None
    ) -> None:
        super().__init__(
            parent,
            Qt.WindowType.Tool
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.WindowDoesNotAcceptFocus,
        )
        self.setObjectName("mailbeaconToast")
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFixedWidth(_WIDTH)
        self.duration_ms = duration_ms
        self._on_click: Callable[[], None] | None = None

        self.title_label = _plain_label(bold=True)
        self.body_label = _plain_label(bold=False)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title_label)
        text.addWidget(self.body_label)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 10, 12, 10)
        row.setSpacing(10)
        if icon is not None and not icon.isNull():
            icon_label = QLabel()
            icon_label.setPixmap(icon.pixmap(32, 32))
            icon_label.setAlignment(Qt.AlignmentFlag.AlignTop)
            row.addWidget(icon_label)
        row.addLayout(text, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)

    def show_message(
        self, title: str, body: str, on_click: Callable[[], None] | None = None
    ) -> None:
        """Show (or replace) the message in the screen corner for ``duration_ms``."""
        self.title_label.setText(title)
        self.body_label.setText(body)
        self.body_label.setVisible(bool(body))
        self._on_click = on_click
        self.adjustSize()
        self.move(self._corner())
        self.show()
        self.raise_()
        self._timer.start(self.duration_ms)

    def _corner(self) -> QPoint:
        area = self.screen().availableGeometry()
        return QPoint(
            area.right() - self.width() - _MARGIN, area.bottom() - self.height() - _MARGIN
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A click opens what the message is about, then the toast goes."""
        callback, self._on_click = self._on_click, None
        self._timer.stop()
        self.hide()
        event.accept()
        if callback is not None:
            callback()

    def enterEvent(self, event: QEnterEvent) -> None:
        """Stay while the pointer is over it, so it can be read and clicked."""
        self._timer.stop()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        """Go a little after the pointer leaves."""
        self._timer.start(min(self.duration_ms, 2500))
        super().leaveEvent(event)


def _plain_label(*, bold: bool) -> QLabel:
    label = QLabel()
    # Subjects come from outside: never interpret them as markup
    # (docs/promises.md#bad-input-gets-a-clear-answer-and-changes-nothing).
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
    if bold:
        font = QFont(label.font())
        font.setBold(True)
        label.setFont(font)
    return label


class ToastNotifier:
    """DesktopNotifier drawing its own toast; one at a time, the newest replaces the last."""

    kind = "toast"

    def __init__(self, icon: QIcon | None = None, duration_ms: int = 6000) -> None:
        self.toast = Toast(icon, duration_ms)

    def show(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        """Show the toast."""
        self.toast.show_message(title, body, on_click)

    def close(self) -> None:
        """Remove the toast."""
        self.toast.hide()
        self.toast.deleteLater()
