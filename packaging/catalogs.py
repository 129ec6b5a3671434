"""The translation catalogs: extract the source strings, update, compile and check them.

Usage: ``.venv/bin/python packaging/catalogs.py update|compile|check``

* ``update`` extracts every message marked in the agent and the tray (``tr.t("…")``,
  ``tr.n("…", "…", n)``, ``mark("…")``, see ``mailbeacon.core.language``), writes the
  template ``mailbeacon.pot`` and merges it into each language's ``.po``: new messages
  come in untranslated, messages no longer in the source are dropped.
* ``compile`` writes each ``.po`` as ``.mo`` beside it (the build and the bundle run it;
  without it the app compiles the ``.po`` in memory when it loads a language).
* ``check`` fails (exit 1) when a marked message is missing from a catalog, a catalog
  holds a message the source no longer has, or an entry is untranslated or fuzzy;
  ``tests/unit/core/test_catalogs.py`` runs the same check in CI.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "app" / "mailbeacon"
LOCALE = PACKAGE / "data" / "locale"
TEMPLATE = LOCALE / "mailbeacon.pot"
# The packages that word things for the rep (the command line and logs stay English).
SOURCES = (
    "agent",
    "tray",
    "core/language.py",
    "core/uainfo.py",
    "core/tracking_domain.py",
    "core/rewrite.py",
)
KEYWORDS: dict[str, tuple[int, ...] | None] = {"t": None, "n": (1, 2), "mark": None}


def _files() -> Iterator[Path]:
    for source in SOURCES:
        path = PACKAGE / source
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def extract() -> Catalog:
    """Every marked message of the sources, as a template catalog."""
    catalog = Catalog(project="MailBeacon", domain="mailbeacon", fuzzy=False)
    for path in _files():
        where = path.relative_to(ROOT).as_posix()
        for lineno, message, comments, context in extract_from_file(
            "python",
            str(path),
            keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",),
            options={"encoding": "utf-8"},
        ):
            catalog.add(
                message,
                None,
                [(where, lineno)],
                auto_comments=comments,
                context=context,
                flags=("python-brace-format",),
            )
    return catalog


def catalogs() -> list[Path]:
    """Each language's ``.po`` file."""
    return sorted(LOCALE.glob("*/LC_MESSAGES/mailbeacon.po"))


def _read(po: Path) -> Catalog:
    with po.open("rb") as handle:
        return read_po(handle)


def _write(po: Path, catalog: Catalog) -> None:
    out = io.BytesIO()
    write_po(
        out,
        catalog,
        width=100,
        omit_header=False,
        ignore_obsolete=True,
        include_lineno=False,
        sort_by_file=False,
    )
    po.write_bytes(out.getvalue())


def update() -> None:
    """Write the template and merge it into every catalog."""
    template = extract()
    _write(TEMPLATE, template)
    for po in catalogs():
        catalog = _read(po)
        catalog.update(template, no_fuzzy_matching=True)
        _write(po, catalog)
        print(f"updated {po.relative_to(ROOT)}")


def compile_all() -> None:
    """Each ``.po`` compiled to ``.mo`` beside it."""
    for po in catalogs():
        out = io.BytesIO()
        write_mo(out, _read(po))
        po.with_suffix(".mo").write_bytes(out.getvalue())


@dataclass
class Problems:
    """What is wrong with one catalog, by message id."""

    missing: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.obsolete or self.untranslated)


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def check(po: Path, template: Catalog | None = None) -> Problems:
    """The catalog ``po`` against an extraction run of the sources."""
    source = template or extract()
    catalog = _read(po)
    wanted = {_key(m.id) for m in source if m.id}
    held = {_key(m.id) for m in catalog if m.id}
    problems = Problems(
        missing=sorted(wanted - held),
        obsolete=sorted((held - wanted) | {_key(m.id) for m in catalog.obsolete.values()}),
    )
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            problems.untranslated.append(_key(message.id))
    return problems


def main(argv: list[str]) -> int:
    """``update``, ``compile`` or ``check``."""
    command = argv[0] if argv else ""
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        template = extract()
        failed = False
        for po in catalogs():
            problems = check(po, template)
            for kind in ("missing", "obsolete", "untranslated"):
                for message in getattr(problems, kind):
                    print(f"{po.relative_to(ROOT)}: {kind}: {message!r}")
            failed = failed or bool(problems)
        return 1 if failed else 0
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
