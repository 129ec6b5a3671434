"""A logged email, shown with every piece of remote content blocked.

Viewing a logged email must never load anything from the network: a pixel in it
(ours, quoted from an earlier email, or another sender's) would count as an
open, and any remote image tells a server that the rep is reading. The body is
shown by ``SafeBrowser``, a ``QTextBrowser`` whose ``loadResource`` gives an
*empty* resource (``empty_resource``) for every URL except ``cid:`` (an image
attached to the email itself, given from memory); links are never followed (a
click is reported through ``linkClicked``). The header lines and the title are
plain text.

Empty, not ``None``: when ``loadResource`` returns nothing, ``QTextDocument``
falls back to loading the URL itself — a ``file:`` or relative URL reads a local
file, and on Windows ``file://host/share`` or ``//host/share`` opens an SMB
connection that hands the rep's NTLM hash to that host. ``data:`` is refused too
(the document would decode it itself; a body has no need of it, and it keeps the
rule one line long). See docs/promises.md#isolation.

Attachments: Open writes the file to a private temporary folder and hands it to
the desktop (``open_url``, injectable); Save asks for a path (``choose_save_path``,
injectable) and writes it there. Reading and writing run on a ``Worker``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QByteArray, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QImage, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.model import AttachmentRef, EmailRecord, StoredCopy
from mailbeacon.agent.records.reports import format_when
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.tray.threads.workers import Worker

log = logging.getLogger(__name__)

MAX_INLINE_IMAGE = 5 * 1024 * 1024  # larger images are not shown in the body
ALLOWED_SCHEMES = ("cid", "data")
ERROR_STYLE = "color: #b00020;"

OpenUrl = Callable[[QUrl], object]
ChooseSavePath = Callable[[QWidget, str], str | None]


class LoggedEmailSource(Protocol):
    """What the viewer reads; ``RecordsStore`` is one."""

    def email(self, email_id: int) -> EmailRecord | None:
        """A sent email."""
        ...

    def logged_copy(self, email_id: int) -> StoredCopy | None:
        """Its logged copy."""
        ...

    def attachment_content(self, sha256: str) -> bytes:
        """An attachment's bytes."""
        ...


@dataclass(frozen=True, slots=True)
class ViewerData:
    """A logged email and the bytes of its images small enough to show inline."""

    email: EmailRecord
    copy: StoredCopy
    images: Mapping[str, bytes] = field(default_factory=dict)  # by sha256


class NotLogged(LookupError):
    """The email has no logged copy (it was sent with Log off)."""


def load_viewer_data(source: LoggedEmailSource, email_id: int) -> ViewerData:
    """Read a logged email for the viewer (blocking: run it on a worker).

    Raises NotLogged (with a message for the rep) when there is nothing to show.
    """
    email = source.email(email_id)
    if email is None:
        raise NotLogged("This email is not in the records.")
    copy = source.logged_copy(email_id)
    if copy is None:
        raise NotLogged("This email was sent without Log: no copy of it was kept.")
    images: dict[str, bytes] = {}
    for ref in copy.attachments:
        if ref.content_type.startswith("image/") and ref.size <= MAX_INLINE_IMAGE:
            try:
                images[ref.sha256] = source.attachment_content(ref.sha256)
            except OSError as exc:
                log.warning("inline image %s of email %s unreadable: %s", ref.sha256, email_id, exc)
    return ViewerData(email, copy, images)


def empty_resource(type: int) -> QImage | QByteArray:
    """What a refused resource resolves to: an empty image or empty bytes.

    An empty value, unlike ``None``, is a loaded resource: Qt shows nothing and does
    not try the URL itself (a local file, or an SMB share on Windows).
    """
    if type == QTextDocument.ResourceType.ImageResource.value:
        return QImage()
    return QByteArray()


def cid_key(url: QUrl | str) -> str:
    """The name a ``cid:`` URL refers to, lower-cased (``cid:logo.png@x`` -> ``logo.png``)."""
    text = url.toString() if isinstance(url, QUrl) else url
    reference = text.split(":", 1)[1] if ":" in text else text
    return reference.strip("<>").split("@", 1)[0].casefold()


def inline_images(copy: StoredCopy, images: Mapping[str, bytes]) -> dict[str, bytes]:
    """Images by the names a ``cid:`` URL may use: the file name and its stem.

    The logged copy keeps no Content-ID; a sender's cid is usually the file name
    (or starts with it), so matching on it shows most inline images.
    """
    found: dict[str, bytes] = {}
    for ref in copy.attachments:
        data = images.get(ref.sha256)
        if data is None:
            continue
        name = ref.filename.casefold()
        found.setdefault(name, data)
        found.setdefault(name.rsplit(".", 1)[0], data)
    return found


class SafeBrowser(QTextBrowser):
    """A QTextBrowser that loads nothing from outside (see the module docstring).

    ``blocked`` lists the URLs it refused, for the "remote content blocked" note.
    """

    blockedChanged = Signal(int)

    def __init__(self, images: Mapping[str, bytes] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._images = dict(images or {})
        self.blocked: list[str] = []
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setReadOnly(True)

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        # Never None and never super(): either lets Qt load the URL itself (module
        # docstring).
        if isinstance(name, str):
            name = QUrl(name)
        if name.scheme().lower() == "cid":
            data = self._images.get(cid_key(name))
            if data is not None and type == QTextDocument.ResourceType.ImageResource.value:
                image = QImage.fromData(data)
                if not image.isNull():
                    return image
            return empty_resource(type)
        self._block(name)
        return empty_resource(type)

    def _block(self, name: QUrl) -> None:
        text = name.toString()
        if text not in self.blocked:
            self.blocked.append(text)
            log.debug("blocked remote content in a logged email: %s", text[:200])
            self.blockedChanged.emit(len(self.blocked))


def recipients_text(email: EmailRecord) -> str:
    """``a@x, b@y (Cc), c@z (Bcc)``."""
    return ", ".join(
        r.email + ("" if r.field == "to" else f" ({r.field.capitalize()})")
        for r in email.recipients
    )


def tracking_text(email: EmailRecord, tr: Language = ENGLISH) -> str:
    """Whether the email was tracked, and why not."""
    if email.tracked:
        return tr.t("tracked")
    if not email.track:
        return tr.t("not tracked (Track was off)")
    if email.untracked_reason:
        return tr.t("not tracked ({reason})", reason=tr.t(email.untracked_reason))
    return tr.t("not tracked")


def _when(at: str, tr: Language) -> str:
    """The local date and time sent, in the rep's formats (as stored if unreadable)."""
    try:
        return tr.when(datetime.fromisoformat(at))
    except ValueError:
        return format_when(at)


def _plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def _size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _default_choose_save_path(
    parent: QWidget, suggested: str, tr: Language = ENGLISH
) -> str | None:
    path, _filter = QFileDialog.getSaveFileName(parent, tr.t("Save attachment"), suggested)
    return path or None


class EmailViewer(QWidget):
    """One logged email: headers, the body with remote content blocked, attachments.

    Signals: ``attachmentOpened(str path)`` once a file was handed to the desktop,
    ``attachmentSaved(str path)``, ``failed(str message)`` (also shown in the
    window), ``linkClicked(str url)`` (links are never followed here).
    """

    attachmentOpened = Signal(str)
    attachmentSaved = Signal(str)
    failed = Signal(str)
    linkClicked = Signal(str)

    def __init__(
        self,
        data: ViewerData,
        content: Callable[[str], bytes],
        *,
        worker: Worker | None = None,
        open_url: OpenUrl = QDesktopServices.openUrl,
        choose_save_path: ChooseSavePath | None = None,
        temp_dir: Path | None = None,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.data = data
        self._content = content
        self._worker = worker or Worker(1, self)
        self._open_url = open_url
        self._choose_save_path: ChooseSavePath = choose_save_path or (
            lambda parent, suggested: _default_choose_save_path(parent, suggested, tr)
        )
        self._temp_dir = temp_dir
        subject = data.email.subject or tr.t("(no subject)")
        self.setWindowTitle(tr.t("{subject} — MailBeacon", subject=subject))
        self.resize(820, 640)

        self.subject = _plain_label(subject)
        font = self.subject.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.subject.setFont(font)
        self.from_label = _plain_label(data.email.sender)
        self.to_label = _plain_label(recipients_text(data.email))
        self.sent_label = _plain_label(_when(data.email.sent_at, tr))
        self.tracking_label = _plain_label(tracking_text(data.email, tr))
        self.blocked_note = _plain_label()
        self.blocked_note.setVisible(False)
        self.browser = SafeBrowser(inline_images(data.copy, data.images))
        self.browser.blockedChanged.connect(self._show_blocked)
        self.browser.anchorClicked.connect(lambda url: self.linkClicked.emit(url.toString()))
        if data.copy.html is not None:
            self.browser.setHtml(data.copy.html)
        else:
            self.browser.setPlainText(data.copy.text or "")
        self.attachments = QListWidget()
        self.open_button = QPushButton(self._tr.t("&Open"))
        self.save_button = QPushButton(self._tr.t("&Save…"))
        self.status = _plain_label()
        self._fill_attachments(data.copy.attachments)
        self._lay_out()
        self.open_button.clicked.connect(self.open_selected)
        self.save_button.clicked.connect(self.save_selected)
        self.attachments.itemActivated.connect(lambda _item: self.open_selected())

    def _fill_attachments(self, refs: tuple[AttachmentRef, ...]) -> None:
        self.attachments.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for ref in refs:
            size = self._tr.size(ref.size)
            item = QListWidgetItem(f"{ref.filename}  ({ref.content_type}, {size})")
            item.setData(Qt.ItemDataRole.UserRole, ref)
            self.attachments.addItem(item)
        if refs:
            self.attachments.setCurrentRow(0)

    def _lay_out(self) -> None:
        form = QFormLayout()
        tr = self._tr
        form.addRow(tr.t("From:"), self.from_label)
        form.addRow(tr.t("To:"), self.to_label)
        form.addRow(tr.t("Sent:"), self.sent_label)
        form.addRow(tr.t("Tracking:"), self.tracking_label)
        buttons = QVBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        attachment_box = QWidget()
        attachment_row = QHBoxLayout(attachment_box)
        attachment_row.setContentsMargins(0, 0, 0, 0)
        attachment_row.addWidget(self.attachments, 1)
        attachment_row.addLayout(buttons)
        attachment_box.setVisible(self.attachments.count() > 0)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.browser)
        splitter.addWidget(attachment_box)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.subject)
        layout.addLayout(form)
        layout.addWidget(self.blocked_note)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

    # ------------------------------------------------------------ attachments

    def selected(self) -> AttachmentRef | None:
        """The attachment selected in the list."""
        row = self.attachments.currentRow()
        if row < 0:
            return None
        ref = self.attachments.item(row).data(Qt.ItemDataRole.UserRole)
        return ref if isinstance(ref, AttachmentRef) else None

    def open_selected(self) -> None:
        """Write the selected attachment to a private temporary file and open it."""
        ref = self.selected()
        if ref is None:
            return
        folder = self._private_temp_dir()
        self._worker.submit(
            lambda: self._write(ref, folder / (Path(ref.filename).name or "attachment")),
            self._opened,
            lambda error: self._failed(self._tr.t("{file} could not be opened: {error}",
                                                  file=ref.filename, error=error)),
        )

    def save_selected(self) -> None:
        """Ask where to save the selected attachment and write it there."""
        ref = self.selected()
        if ref is None:
            return
        chosen = self._choose_save_path(self, ref.filename)
        if not chosen:
            return
        target = Path(chosen)
        self._worker.submit(
            lambda: self._write(ref, target),
            self._saved,
            lambda error: self._failed(self._tr.t("{file} could not be saved: {error}",
                                                  file=ref.filename, error=error)),
        )

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop background work (before the store closes)."""
        self._worker.close(timeout_ms)

    def _write(self, ref: AttachmentRef, target: Path) -> Path:
        data = self._content(ref.sha256)
        target.write_bytes(data)
        return target

    def _private_temp_dir(self) -> Path:
        if self._temp_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="mailbeacon-attachments-"))
            os.chmod(self._temp_dir, 0o700)
        return self._temp_dir

    def _opened(self, path: Path) -> None:
        self._open_url(QUrl.fromLocalFile(str(path)))
        self.status.setStyleSheet("")
        self.status.setText(self._tr.t("Opened {file}", file=path.name))
        self.attachmentOpened.emit(str(path))

    def _saved(self, path: Path) -> None:
        self.status.setStyleSheet("")
        self.status.setText(self._tr.t("Saved to {path}", path=path))
        self.attachmentSaved.emit(str(path))

    def _failed(self, message: str) -> None:
        log.warning("%s", message)
        self.status.setStyleSheet(ERROR_STYLE)
        self.status.setText(message)
        self.failed.emit(message)

    def _show_blocked(self, count: int) -> None:
        self.blocked_note.setText(self._tr.n(
            "Remote content blocked ({count} item): viewing a logged email never loads "
            "images from the internet.",
            "Remote content blocked ({count} items): viewing a logged email never loads "
            "images from the internet.", count,
        ))
        self.blocked_note.setVisible(True)
