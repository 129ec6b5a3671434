"""CI keeps the translations complete (issue 19).

* An extraction run over the agent and the tray (``packaging/catalogs.py``) is compared
  with each catalog: a marked message the catalog lacks, an entry the source no longer
  has, and an untranslated or fuzzy entry each fail.
* Strings a rep reads that are not marked fail too: a literal (or f-string) given to a
  Qt call that shows text, to a ``QMessageBox``, or as a notification's title or body,
  outside ``tr.t`` / ``tr.n``. (A literal kept in a constant or passed through a helper
  of our own is not seen by this check; the catalog comparison sees it once it is
  marked.) Modules whose windows are not translated yet are listed in ``PENDING``; the
  list may only shrink (a listed module that marks its messages and shows no unmarked
  one fails, so it leaves the list).
* Every marked message is a plain literal (an f-string would never match the catalog),
  and a translation keeps the ``{fields}`` of its source.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.pofile import read_po

from tests.helpers.paths import REPO

PACKAGE = REPO / "app" / "mailbeacon"


def _catalogs() -> ModuleType:
    path = REPO / "packaging" / "catalogs.py"
    spec = importlib.util.spec_from_file_location("mailbeacon_catalogs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


catalogs = _catalogs()

# Qt calls whose string argument a rep reads.
TEXT_CALLS = frozenset(
    {
        "setText",
        "setWindowTitle",
        "setToolTip",
        "setPlaceholderText",
        "addAction",
        "addMenu",
        "setTitle",
        "setStatusTip",
        "setHeaderLabels",
        "addTab",
        "setTabText",
        "setLabelText",
        "addRow",
        "setItemText",
        "showMessage",
        "setInformativeText",
        "setWhatsThis",
        "QLabel",
        "QPushButton",
        "QCheckBox",
        "QGroupBox",
        "QRadioButton",
        "QAction",
        "QToolButton",
        "setSpecialValueText",
        "setSuffix",
        "setPrefix",
        "addButton",
    }
)
MESSAGE_BOXES = frozenset({"information", "warning", "critical", "question"})
NOTIFICATION_FIELDS = frozenset({"title", "body"})
# Tray modules not translated yet (the issue 19 follow-up): the list may only shrink.
PENDING: frozenset[str] = frozenset()
_LETTERS = re.compile(r"[A-Za-z]{2}")
_FIELD = re.compile(r"\{(\w*)[^{}]*\}")


# Not words of any language: the product's name, example addresses and the team link's
# prefix in placeholders.
_NOT_WORDS = re.compile(r"^(MailBeacon|mbk1_…|[\w.+-]*@[\w.-]+(, …)?)$")


def _shown_literal(node: ast.expr) -> bool:
    """A literal with words in it, as written in the source (not a translation)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(_LETTERS.search(node.value)) and not _NOT_WORDS.match(node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_shown_literal(v) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _shown_literal(node.left) or _shown_literal(node.right)
    if isinstance(node, ast.IfExp):
        return _shown_literal(node.body) or _shown_literal(node.orelse)
    return False


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _on(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id
    return ""


def _marks(path: Path) -> bool:
    """Whether ``path`` marks any message (``.t(``, ``.n(``, ``mark(``)."""
    return any(
        isinstance(node, ast.Call) and _name(node) in ("t", "n", "mark")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    )


def unmarked(path: Path) -> list[str]:
    """Where ``path`` shows a rep an unmarked literal: ``line: text``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node)
        shown: list[ast.expr] = []
        if name in MESSAGE_BOXES and _on(node) == "QMessageBox":
            shown.extend(node.args[1:3])  # (parent, title, text)
        elif name in TEXT_CALLS:
            shown.extend(node.args[:1])
        if name == "Notification":
            shown.extend(k.value for k in node.keywords if k.arg in NOTIFICATION_FIELDS)
        found.extend(
            f"{path.relative_to(PACKAGE)}:{arg.lineno}: {ast.unparse(arg)[:80]}"
            for arg in shown
            if _shown_literal(arg)
        )
    return found


def _sources() -> list[Path]:
    return [
        p
        for p in sorted((PACKAGE / "tray").rglob("*.py"))
        + sorted((PACKAGE / "agent").rglob("*.py"))
    ]


def test_every_shown_string_outside_pending_modules_is_marked() -> None:
    problems = [
        line
        for path in _sources()
        if path.relative_to(PACKAGE).as_posix() not in PENDING
        for line in unmarked(path)
    ]
    assert not problems, "strings a rep reads, not marked for translation:\n" + "\n".join(problems)


def test_pending_list_only_shrinks() -> None:
    # A pending module that marks its messages and shows no unmarked one is done.
    clean = sorted(p for p in PENDING if _marks(PACKAGE / p) and not unmarked(PACKAGE / p))
    assert not clean, f"translated now: take them out of PENDING: {clean}"


def test_marked_messages_are_plain_literals() -> None:
    wrong = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("t", "n")
                and node.args
                and isinstance(node.args[0], ast.JoinedStr)
            ):
                wrong.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not wrong, f"f-strings never match a catalog entry: {wrong}"


@pytest.mark.parametrize("po", catalogs.catalogs(), ids=lambda p: p.parts[-3])
def test_catalog_is_complete_and_current(po: Path) -> None:
    problems = catalogs.check(po)
    assert not problems.missing, f"not in {po.parts[-3]} (run catalogs.py update): " + repr(
        problems.missing
    )
    assert not problems.obsolete, f"no longer in the source: {problems.obsolete!r}"
    assert not problems.untranslated, f"untranslated or fuzzy: {problems.untranslated!r}"


@pytest.mark.parametrize("po", catalogs.catalogs(), ids=lambda p: p.parts[-3])
def test_translations_keep_their_fields(po: Path) -> None:
    with po.open("rb") as handle:
        catalog = read_po(handle)
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        fields = set(_FIELD.findall(source)) - {"count"}
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wrong.extend(
            f"{source!r} -> {text!r}"
            for text in strings
            if set(_FIELD.findall(text)) - {"count"} != fields
        )
    assert not wrong, "translations with other {fields} than their source:\n" + "\n".join(wrong)


def test_the_polish_catalog_has_three_plural_forms() -> None:
    [po] = [p for p in catalogs.catalogs() if p.parts[-3] == "pl"]
    with po.open("rb") as handle:
        catalog = read_po(handle)
    assert catalog.num_plurals == 3
    plural = [m for m in catalog if isinstance(m.id, tuple)]
    assert plural and all(len(m.string) == 3 for m in plural)
