"""The logged-email viewer never loads remote content, shows its own inline images,
names the email in plain text, and opens or saves attachments byte-identical."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QByteArray, QUrl
from PySide6.QtGui import QColor, QImage, QTextDocument
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.compose.widgets import RichEditor
from mailbeacon.tray.views.email_viewer import (
    EmailViewer,
    NotLogged,
    SafeBrowser,
    ViewerData,
    load_viewer_data,
)
from tests.helpers.activity import HTML_SUBJECT
from tests.helpers.contacts import PDF, PNG, counting_http_server, fill_records

WAIT_MS = 10_000
IMAGE = QTextDocument.ResourceType.ImageResource.value
STYLESHEET = QTextDocument.ResourceType.StyleSheetResource.value


def viewer_for(
    qtbot: QtBot, store: RecordsStore, email_id: int, **kwargs: object
) -> EmailViewer:
    viewer = EmailViewer(load_viewer_data(store, email_id), store.attachment_content, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(viewer)
    return viewer


def test_rendering_a_logged_email_makes_no_network_request(
    qtbot: QtBot, store: RecordsStore, tmp_path: Path
) -> None:
    with counting_http_server() as (base, hits):
        ids = fill_records(store, remote_base=base)
        viewer = viewer_for(qtbot, store, ids["logged"])
        viewer.show()
        qtbot.waitExposed(viewer)
        viewer.browser.grab()  # lays out and paints the whole body: every resource asked for
        viewer.grab().save(str(tmp_path / "email_viewer.png"))

        # The server works: a request made now arrives, and it is the only one it saw.
        assert httpx.get(f"{base}/sentinel", timeout=10).status_code == 200
        assert hits.wait_for("/sentinel") == ["/sentinel"]

    blocked = viewer.browser.blocked
    assert f"{base}/o/x.gif" in blocked
    assert f"{base}/bg.png" in blocked and f"{base}/table.png" in blocked
    assert viewer.blocked_note.isVisible()
    assert "Remote content blocked" in viewer.blocked_note.text()


def test_load_resource_returns_nothing_for_remote_urls(qtbot: QtBot) -> None:
    browser = SafeBrowser({"logo.png": PNG})
    qtbot.addWidget(browser)
    for url in (
        "http://127.0.0.1:9/o/x.gif",
        "https://tracker.example/p.png",
        "HTTP://EXAMPLE.COM/a.css",
        "file:///etc/passwd",
        "//tracker.example/p.gif",
        "ftp://example.com/x.png",
    ):
        assert _is_empty(browser.loadResource(IMAGE, QUrl(url)), IMAGE), url
    assert len(browser.blocked) == 6


def test_inline_images_come_from_the_emails_own_attachments(qtbot: QtBot) -> None:
    browser = SafeBrowser({"logo.png": PNG, "logo": PNG})
    qtbot.addWidget(browser)
    image = browser.loadResource(IMAGE, QUrl("cid:logo.png@mail.example"))
    assert isinstance(image, QImage) and image.width() == 40
    assert _is_empty(browser.loadResource(IMAGE, QUrl("cid:missing@mail.example")), IMAGE)
    assert browser.blocked == []


# Local files, Windows shares (file://host/share and //host/share: an SMB connection
# that hands over the rep's NTLM hash), Qt resources, data: and remote URLs: every one
# must resolve to an EMPTY value, never None, or Qt loads the URL itself
# (docs/promises.md#isolation).
def _hostile_urls(folder: Path, base: str) -> list[str]:
    red = folder / "red.png"
    return [
        red.as_uri(),
        "red.png",  # relative: Qt would look in the document's search paths
        "//host/share/red.png",
        "file://host/share/red.png",
        "\\\\host\\share\\red.png",
        ":/qt-project.org/styles/commonstyle/images/up-16.png",
        "qrc:/qt-project.org/styles/commonstyle/images/up-16.png",
        "data:image/png;base64," + base64.b64encode(red.read_bytes()).decode("ascii"),
        f"{base}/pixel.png",
        f"{base.replace('http:', 'https:')}/pixel.png",
    ]


def _point_relative_urls_at(widget: SafeBrowser | RichEditor, folder: Path) -> None:
    # A relative src would resolve against the document's URL: make it the folder
    # holding the red file, so a fallback load would find it.
    widget.document().setMetaInformation(
        QTextDocument.MetaInformation.DocumentUrl, QUrl.fromLocalFile(f"{folder}/").toString()
    )


def _red_file(folder: Path) -> Path:
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    path = folder / "red.png"
    assert image.save(str(path))
    return path


def _is_empty(value: object, kind: int) -> bool:
    if kind == IMAGE:
        return isinstance(value, QImage) and value.isNull()
    return isinstance(value, QByteArray) and value.isEmpty()


def _hostile_html(urls: list[str]) -> str:
    images = "".join(f'<img src="{html.escape(u)}" width="64" height="64">' for u in urls)
    sheets = "".join(f'<link rel="stylesheet" href="{html.escape(u)}">' for u in urls)
    return f"<html><head>{sheets}</head><body><p>Hi</p>{images}</body></html>"


def _red_pixels(widget: QWidget) -> int:
    image = widget.grab().toImage()
    red = QColor("red").rgb()
    return sum(
        1
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 2)
        if image.pixel(x, y) == red
    )


@pytest.mark.parametrize("kind", [IMAGE, STYLESHEET], ids=["image", "stylesheet"])
def test_every_non_inline_resource_resolves_empty_never_to_a_fallback(
    qtbot: QtBot, tmp_path: Path, kind: int
) -> None:
    _red_file(tmp_path)
    browser = SafeBrowser({"logo.png": PNG})
    editor = RichEditor()
    for widget in (browser, editor):
        qtbot.addWidget(widget)
        _point_relative_urls_at(widget, tmp_path)
    browser.setSearchPaths([str(tmp_path)])
    for url in _hostile_urls(tmp_path, "http://127.0.0.1:9"):
        assert _is_empty(browser.loadResource(kind, QUrl(url)), kind), url
        assert _is_empty(editor.loadResource(kind, QUrl(url)), kind), url
        assert _is_empty(browser.loadResource(kind, url), kind), url  # type: ignore[arg-type]


def test_a_hostile_body_shows_no_local_file_and_reaches_no_server(
    qtbot: QtBot, tmp_path: Path
) -> None:
    _red_file(tmp_path)
    with counting_http_server() as (base, hits):
        body = _hostile_html(_hostile_urls(tmp_path, base))
        browser = SafeBrowser({"logo.png": PNG})
        editor = RichEditor()
        for widget in (browser, editor):
            qtbot.addWidget(widget)
            widget.resize(900, 1400)
            _point_relative_urls_at(widget, tmp_path)
        browser.setSearchPaths([str(tmp_path)])
        browser.setHtml(body)
        editor.setHtml(body)
        for widget in (browser, editor):
            widget.show()
            qtbot.waitExposed(widget)
            # Painting asks for every resource; a red pixel is the local file shown.
            assert _red_pixels(widget) == 0

        assert httpx.get(f"{base}/sentinel", timeout=10).status_code == 200
        assert hits.wait_for("/sentinel") == ["/sentinel"]
    # Each was asked for and refused (the rep sees the "remote content blocked" note).
    assert (tmp_path / "red.png").as_uri() in browser.blocked
    assert any(url.startswith("data:") for url in browser.blocked)


def test_links_are_never_followed(qtbot: QtBot, store: RecordsStore) -> None:
    ids = fill_records(store)
    viewer = viewer_for(qtbot, store, ids["logged"])
    assert not viewer.browser.openLinks() and not viewer.browser.openExternalLinks()


def test_subject_and_title_are_plain_text(qtbot: QtBot, store: RecordsStore) -> None:
    ids = fill_records(store)
    viewer = viewer_for(qtbot, store, ids["logged"])
    assert viewer.windowTitle() == f"{HTML_SUBJECT} — MailBeacon"
    assert viewer.subject.text() == HTML_SUBJECT
    assert viewer.subject.textFormat().name == "PlainText"
    assert "Hello" in viewer.browser.toPlainText()


def test_open_writes_a_private_copy_and_hands_it_to_the_desktop(
    qtbot: QtBot, store: RecordsStore, tmp_path: Path
) -> None:
    ids = fill_records(store)
    opened: list[QUrl] = []
    viewer = viewer_for(qtbot, store, ids["logged"], open_url=opened.append,
                        temp_dir=tmp_path / "private")
    (tmp_path / "private").mkdir()
    assert viewer.attachments.count() == 2
    viewer.attachments.setCurrentRow(0)
    with qtbot.waitSignal(viewer.attachmentOpened, timeout=WAIT_MS) as done:
        viewer.open_button.click()
    path = Path(done.args[0])
    assert path.name == "offer.pdf" and path.read_bytes() == PDF
    assert opened == [QUrl.fromLocalFile(str(path))]


def test_save_writes_where_the_rep_chose(
    qtbot: QtBot, store: RecordsStore, tmp_path: Path
) -> None:
    ids = fill_records(store)
    target = tmp_path / "saved offer.pdf"
    asked: list[str] = []

    def choose(_parent: QWidget, suggested: str) -> str:
        asked.append(suggested)
        return str(target)

    viewer = viewer_for(qtbot, store, ids["logged"], choose_save_path=choose)
    viewer.attachments.setCurrentRow(0)
    with qtbot.waitSignal(viewer.attachmentSaved, timeout=WAIT_MS):
        viewer.save_button.click()
    assert asked == ["offer.pdf"]
    assert target.read_bytes() == PDF


@pytest.mark.expect_log("could not be saved")
def test_a_failed_save_is_a_message_not_a_traceback(
    qtbot: QtBot, store: RecordsStore, tmp_path: Path
) -> None:
    ids = fill_records(store)
    viewer = viewer_for(qtbot, store, ids["logged"],
                        choose_save_path=lambda _p, _s: str(tmp_path / "no" / "such" / "dir.pdf"))
    viewer.attachments.setCurrentRow(0)
    with qtbot.waitSignal(viewer.failed, timeout=WAIT_MS) as failed:
        viewer.save_button.click()
    assert failed.args[0].startswith("offer.pdf could not be saved:")
    assert "Traceback" not in viewer.status.text()


def test_an_email_without_a_copy_says_so(store: RecordsStore) -> None:
    ids = fill_records(store)
    with pytest.raises(NotLogged, match="without Log"):
        load_viewer_data(store, ids["unlogged"])


def test_a_text_only_copy_is_shown_as_text(qtbot: QtBot, store: RecordsStore) -> None:
    ids = fill_records(store)
    data = load_viewer_data(store, ids["logged"])
    from dataclasses import replace

    text_only = ViewerData(data.email, replace(data.copy, html=None, text="<b>not bold</b>"))
    viewer = EmailViewer(text_only, store.attachment_content)
    qtbot.addWidget(viewer)
    assert viewer.browser.toPlainText() == "<b>not bold</b>"
