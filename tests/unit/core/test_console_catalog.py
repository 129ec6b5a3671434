"""CI keeps the admin console's catalog (the ``console`` gettext domain) complete.

* ``packaging/catalogs.py check`` covers the console: a message marked in the console's
  Python or templates that its catalog lacks, one it holds that the source no longer
  has, an untranslated or fuzzy entry, and words a template shows outside
  ``{% trans %}`` / ``_()`` each fail (proved here against temporary copies).
* A translation keeps the fields of its source: ``{name}`` in Python messages,
  ``%(name)s`` in the templates'.
* The console's Python hands a page no unmarked literal as its title, text, error or
  notice.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po

from tests.unit.core.test_catalogs import PACKAGE, catalogs

CONSOLE = catalogs.CONSOLE
_BRACES = re.compile(r"\{(\w*)[^{}]*\}")
_PERCENT = re.compile(r"%\((\w+)\)s")
SHOWN_FIELDS = frozenset({"title", "text", "error", "notice"})


def _polish() -> Path:
    found: list[Path] = [p for p in catalogs.catalogs(CONSOLE) if p.parts[-3] == "pl"]
    [po] = found
    return po


def test_the_console_has_its_own_domain_and_polish_catalog() -> None:
    assert _polish().name == "console.po"
    assert catalogs.domain_of(_polish()) is CONSOLE
    # The desktop's catalogs are the same list as before: the console adds none to it.
    assert all(p.name == "mailbeacon.po" for p in catalogs.catalogs())
    extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogs.extract(CONSOLE)}
    assert "Wrong name or password." in extracted  # console.py
    assert "Team report" in extracted  # a template
    assert "click tracking (links rewritten)" in extracted  # a policy item's description
    assert "Wrong name or password." not in {m.id for m in catalogs.extract(catalogs.MAILBEACON)}


def test_the_console_catalog_is_complete_and_current() -> None:
    problems = catalogs.check(_polish())
    assert not problems, problems


def _copy_with(tmp_path: Path, message: str, translation: str) -> Path:
    copy = tmp_path / "pl" / "LC_MESSAGES" / "console.po"
    copy.parent.mkdir(parents=True)
    with _polish().open("rb") as handle:
        catalog = read_po(handle)
    catalog[message].string = translation
    with copy.open("wb") as handle:
        write_po(handle, catalog, width=100)
    return copy


def test_the_check_catches_a_missing_translation(tmp_path: Path) -> None:
    copy = _copy_with(tmp_path, "Wrong name or password.", "")
    problems = catalogs.check(copy)
    assert problems.untranslated == ["Wrong name or password."]
    assert problems  # the command exits 1


def test_the_check_catches_a_message_the_catalog_lacks(tmp_path: Path) -> None:
    copy = tmp_path / "pl" / "LC_MESSAGES" / "console.po"
    copy.parent.mkdir(parents=True)
    with _polish().open("rb") as handle:
        catalog = read_po(handle)
    catalog.delete("Team report")
    with copy.open("wb") as handle:
        write_po(handle, catalog, width=100)
    assert catalogs.check(copy).missing == ["Team report"]


def test_the_check_catches_words_a_template_shows_unmarked(tmp_path: Path) -> None:
    source = PACKAGE / "server" / "admin" / "templates" / "reps.html"
    assert catalogs.unmarked_text(source) == []
    copy = tmp_path / "reps.html"
    shutil.copy(source, copy)
    text = copy.read_text(encoding="utf-8")
    copy.write_text(
        text.replace("{% trans %}Rotate key{% endtrans %}", "Rotate key").replace(
            "{{ _('Full name') }}", "Full name"
        ),
        encoding="utf-8",
    )
    found = catalogs.unmarked_text(copy)
    assert [line.split(": ", 1)[1] for line in found] == ["'Full name'", "'Rotate key'"]


def test_every_console_template_is_marked() -> None:
    problems = [
        line
        for path in sorted((PACKAGE / "server" / "admin" / "templates").glob("*.html"))
        for line in catalogs.unmarked_text(path)
    ]
    assert not problems, "words a page shows, not marked:\n" + "\n".join(problems)


def test_console_translations_keep_their_fields() -> None:
    with _polish().open("rb") as handle:
        catalog = read_po(handle)
    wrong: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        strings = [str(s) for s in (message.string if isinstance(message.string, tuple)
                                    else (message.string,))]  # fmt: skip
        for pattern in (_BRACES, _PERCENT):
            fields = set(pattern.findall(source)) - {"count"}
            wrong.extend(
                f"{source!r} -> {text!r}"
                for text in strings
                if set(pattern.findall(text)) - {"count"} != fields
            )
    assert not wrong, "translations with other fields than their source:\n" + "\n".join(wrong)


def test_the_polish_console_catalog_has_three_plural_forms() -> None:
    with _polish().open("rb") as handle:
        catalog = read_po(handle)
    assert catalog.num_plurals == 3
    plural = [m for m in catalog if isinstance(m.id, tuple)]
    assert len(plural) >= 4 and all(len(tuple(m.string or ())) == 3 for m in plural)


def _words(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(node.value.strip())
    return isinstance(node, ast.JoinedStr)


@pytest.mark.parametrize("module", ["console.py", "web.py", "accounts.py"])
def test_the_console_hands_pages_no_unmarked_literal(module: str) -> None:
    path = PACKAGE / "server" / "admin" / module
    wrong = [
        f"{module}:{node.lineno}: {keyword.arg}={ast.unparse(keyword.value)[:60]}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg in SHOWN_FIELDS and _words(keyword.value)
    ]
    assert not wrong, "words a page shows, not marked:\n" + "\n".join(wrong)


def test_the_command_checks_one_domain_or_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalogs.main(["check", "console"]) == 0
    assert capsys.readouterr().out == ""
    assert catalogs.main(["check", "no-such-domain"]) == 2
