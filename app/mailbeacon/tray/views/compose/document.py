"""The compose window's body as a Qt text document: what is sent, and list editing.

No widgets here. The HTML sent is Qt's own without its editor marker and font
(``email_html``); the plain-text alternative marks list items and puts a link's
address after its text (``document_text``). Which links can be click-tracked
follows rule 2 (``core.html_links``), and ``click_note`` says it in words.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QTextBlock, QTextCursor, QTextDocument, QTextListFormat

from mailbeacon.core.html_links import plan_html
from mailbeacon.core.language import ENGLISH, Language


def local_files(mime: QMimeData) -> list[str]:
    """The local file paths a drop or paste carries."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def document_text(document: QTextDocument) -> str:
    """The plain-text alternative: list items marked, a link's address after its text."""
    lines: list[str] = []
    block = document.begin()
    while block.isValid():
        prefix = ""
        text_list = block.textList()
        if text_list is not None:
            style = text_list.format().style()
            numbered = style in (
                QTextListFormat.Style.ListDecimal,
                QTextListFormat.Style.ListLowerAlpha,
                QTextListFormat.Style.ListUpperAlpha,
                QTextListFormat.Style.ListLowerRoman,
                QTextListFormat.Style.ListUpperRoman,
            )
            marker = f"{text_list.itemNumber(block) + 1}. " if numbered else "- "
            prefix = "  " * max(0, text_list.format().indent() - 1) + marker
        lines.append(prefix + _block_text(block))
        block = block.next()
    text = "\n".join(lines).replace("\u2028", "\n").replace("\ufffc", "")
    return text.strip("\n") + "\n"


def selected_blocks(cursor: QTextCursor) -> list[QTextBlock]:
    """The blocks the cursor's selection touches (the cursor's block without one)."""
    document = cursor.document()
    block = document.findBlock(cursor.selectionStart())
    last = document.findBlock(cursor.selectionEnd())
    blocks = [block]
    while block.isValid() and block != last:  # bounded by the document's blocks
        block = block.next()
        if block.isValid():
            blocks.append(block)
    return blocks


def _block_text(block: QTextBlock) -> str:
    parts: list[str] = []
    href, anchor_text = "", ""

    def flush() -> None:
        if href and href.removeprefix("mailto:") not in anchor_text:
            parts.append(f" ({href})")

    it = block.begin()
    while not it.atEnd():
        fragment = it.fragment()
        if fragment.isValid():
            fmt = fragment.charFormat()
            this_href = fmt.anchorHref() if fmt.isAnchor() else ""
            if this_href != href:
                flush()
                href, anchor_text = this_href, ""
            parts.append(fragment.text())
            anchor_text += fragment.text()
        it += 1
    flush()
    return "".join(parts)


_QT_META = re.compile(r'<meta name="qrichtext" content="1" ?/?>')
_BODY_STYLE = re.compile(r'<body style="[^"]*">')


def email_html(document: QTextDocument) -> str:
    """The HTML to send: Qt's, without its editor marker and the editor's own font,
    so the recipient's mail client shows its usual font."""
    html = _QT_META.sub("", document.toHtml(), count=1)
    return _BODY_STYLE.sub("<body>", html, count=1)


def trackable_links(html: str) -> tuple[int, int]:
    """(links whose clicks can be tracked, web links in all) per rule 2."""
    plan = plan_html(html, track=True, clicks=True)
    total = len(re.findall(r"<a\s[^>]*href=\"https?://", html, flags=re.IGNORECASE))
    return len(plan.links), max(total, len(plan.links))


def click_note(
    track: bool, clicks_enabled: bool, trackable: int, total: int, *, clicks_only: bool = False,
    tr: Language = ENGLISH,
) -> str:
    """What will be tracked, in words."""
    if not track:
        return tr.t("Track is off: neither opens nor clicks of this email are tracked.")
    if clicks_only:
        return _clicks_only_note(trackable, tr)
    if not clicks_enabled:
        return tr.t("Opens are tracked. Clicks are not: click tracking is off in Settings.")
    if trackable == 0:
        return _no_link_note(total, tr)
    if total > trackable:
        return tr.n(
            "Opens and clicks on {count} link are tracked. Links that show their own web "
            "address are left as they are.",
            "Opens and clicks on {count} links are tracked. Links that show their own web "
            "address are left as they are.", trackable,
        )
    return tr.n("Opens and clicks on {count} link are tracked.",
                "Opens and clicks on {count} links are tracked.", trackable)


def _no_link_note(total: int, tr: Language) -> str:
    if total:
        return tr.t("Opens are tracked. Clicks are not: links that show their own web "
                    "address are left as they are.")
    return tr.t("Opens are tracked. There is no link whose clicks could be tracked.")


def _clicks_only_note(trackable: int, tr: Language) -> str:
    if trackable == 0:
        return tr.t("Clicks only, but there is no link whose clicks could be tracked: this "
                    "email goes out untracked.")
    return tr.n(
        "Clicks on {count} link are tracked; no open-tracking image goes in (the first "
        "click tells you it was opened).",
        "Clicks on {count} links are tracked; no open-tracking image goes in (the first "
        "click tells you it was opened).", trackable,
    )


def size_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def toggle_list(cursor: QTextCursor, style: QTextListFormat.Style) -> None:
    """Make the paragraphs ``cursor`` selects a list of ``style`` (joining a list of that
    style just above), or plain paragraphs again when they already are one."""
    current = cursor.currentList()
    cursor.beginEditBlock()
    if current is not None and current.format().style() == style:
        for block in selected_blocks(cursor):
            text_list = block.textList()
            if text_list is not None:
                text_list.remove(block)
            block_cursor = QTextCursor(block)
            block_format = block_cursor.blockFormat()
            block_format.setIndent(0)
            block_cursor.setBlockFormat(block_format)
    else:
        above = QTextCursor(cursor.document())
        above.setPosition(cursor.selectionStart())
        previous = above.block().previous()
        joined = previous.textList() if previous.isValid() else None
        if joined is not None and joined.format().style() == style:
            for block in selected_blocks(cursor):
                if block.textList() is not None:
                    block.textList().remove(block)
                joined.add(block)
        else:
            list_format = QTextListFormat()
            list_format.setStyle(style)
            cursor.createList(list_format)
    cursor.endEditBlock()
