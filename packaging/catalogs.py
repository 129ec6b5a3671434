"""The translation catalogs: extract the source strings, update, compile and check them.

Usage: ``.venv/bin/python packaging/catalogs.py update|compile|check [mailbeacon|console]``
(both domains unless one is named)

Two gettext domains, each with its own template and one ``.po`` per language:
``mailbeacon`` (the agent and the tray: what a rep reads) and ``console`` (the tracking
server's admin console: its Python pages and its Jinja2 templates, and the policy
items' descriptions it shows), so a server shipped alone carries only its own words.

* ``update`` extracts every message marked in a domain's sources (``tr.t("…")``,
  ``tr.n("…", "…", n)``, ``mark("…")``, see ``mailbeacon.core.language``; in the
  console's templates ``{% trans %}`` and ``_("…")``), writes the domain's template
  (``mailbeacon.pot``, ``console.pot``) and merges it into each language's ``.po``
  (created when a language has none yet): new messages come in untranslated, messages
  no longer in the source are dropped.
* ``compile`` writes each ``.po`` as ``.mo`` beside it (the build and the bundle run it;
  without it the app compiles the ``.po`` in memory when it loads a language).
* ``check`` fails (exit 1) when a marked message is missing from a catalog, a catalog
  holds a message the source no longer has, an entry is untranslated or fuzzy, or a
  console template shows words outside ``{% trans %}`` / ``_()``;
  ``tests/unit/core/test_catalogs.py`` and ``tests/unit/core/test_console_catalog.py``
  run the same check in CI.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from jinja2 import Environment

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "app" / "mailbeacon"
LOCALE = PACKAGE / "data" / "locale"
# The packages that word things for the rep (the command line and logs stay English).
SOURCES = (
    "agent",
    "tray",
    "core/language.py",
    "core/uainfo.py",
    "core/tracking_domain.py",
    "core/rewrite.py",
    "core/reasons.py",
    "core/sequence_spec.py",
    "core/followup_time.py",
)
KEYWORDS: dict[str, tuple[int, ...] | None] = {"t": None, "n": (1, 2), "mark": None}
_GETTEXT: dict[str, tuple[int, ...] | None] = {"_": None, "gettext": None, "ngettext": (1, 2)}
JINJA = "jinja2.ext:babel_extract"
_JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}


@dataclass(frozen=True)
class Domain:
    """One gettext domain: its name and the sources its messages are extracted from."""

    name: str
    sources: tuple[str, ...]  # Python files and packages under app/mailbeacon
    templates: tuple[str, ...] = ()  # folders of Jinja2 templates (*.html)
    # Python files read with their own keywords (the policy's descriptions).
    described: tuple[tuple[str, dict[str, tuple[int, ...] | None]], ...] = ()

    @property
    def template(self) -> Path:
        """The domain's ``.pot``."""
        return LOCALE / f"{self.name}.pot"


MAILBEACON = Domain("mailbeacon", SOURCES)
CONSOLE = Domain(
    "console",
    ("server/admin",),
    templates=("server/admin/templates",),
    described=(("core/policy.py", {"PolicyKey": (4,)}),),
)
DOMAINS = (MAILBEACON, CONSOLE)


def domain_of(po: Path) -> Domain:
    """The domain a ``.po`` file belongs to (by its name)."""
    return next(d for d in DOMAINS if d.name == po.stem)


def _files(domain: Domain = MAILBEACON) -> Iterator[Path]:
    for source in domain.sources:
        path = PACKAGE / source
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _templates(domain: Domain) -> Iterator[Path]:
    for folder in domain.templates:
        yield from sorted((PACKAGE / folder).glob("*.html"))


def extract(domain: Domain = MAILBEACON) -> Catalog:
    """Every marked message of the domain's sources, as a template catalog."""
    catalog = Catalog(project="MailBeacon", domain=domain.name, fuzzy=False)
    keywords = KEYWORDS if domain is MAILBEACON else {**KEYWORDS, **_GETTEXT}
    runs: list[tuple[str, Path, dict[str, tuple[int, ...] | None], tuple[str, ...]]] = [
        ("python", path, keywords, ("python-brace-format",)) for path in _files(domain)
    ]
    runs += [("python", PACKAGE / p, k, ()) for p, k in domain.described]
    runs += [(JINJA, path, _GETTEXT, ()) for path in _templates(domain)]
    for method, path, words, flags in runs:
        where = path.relative_to(ROOT).as_posix()
        for lineno, message, comments, context in extract_from_file(
            method,
            str(path),
            keywords=words,
            comment_tags=("TRANSLATORS:",),
            options={"encoding": "utf-8", **(_JINJA_OPTIONS if method == JINJA else {})},
        ):
            catalog.add(
                message,
                None,
                [(where, lineno)],
                auto_comments=comments,
                context=context,
                flags=flags,
            )
    return catalog


def catalogs(domain: Domain = MAILBEACON) -> list[Path]:
    """Each language's ``.po`` file of ``domain``."""
    return sorted(LOCALE.glob(f"*/LC_MESSAGES/{domain.name}.po"))


def languages() -> list[str]:
    """The languages with a catalog (of any domain)."""
    return sorted({po.parts[-3] for d in DOMAINS for po in catalogs(d)})


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


def _new(code: str, domain: Domain) -> Catalog:
    """An empty catalog of ``domain`` for a language that has none yet."""
    return Catalog(locale=code, domain=domain.name, project="MailBeacon", fuzzy=False)


def update(domains: tuple[Domain, ...] = DOMAINS) -> None:
    """Write each domain's template and merge it into every catalog."""
    codes = languages()
    for domain in domains:
        template = extract(domain)
        _write(domain.template, template)
        for code in codes:
            po = LOCALE / code / "LC_MESSAGES" / f"{domain.name}.po"
            catalog = _read(po) if po.exists() else _new(code, domain)
            catalog.update(template, no_fuzzy_matching=True)
            _write(po, catalog)
            print(f"updated {po.relative_to(ROOT)}")


def compile_all(domains: tuple[Domain, ...] = DOMAINS) -> None:
    """Each ``.po`` compiled to ``.mo`` beside it."""
    for domain in domains:
        for po in catalogs(domain):
            out = io.BytesIO()
            write_mo(out, _read(po))
            po.with_suffix(".mo").write_bytes(out.getvalue())


@dataclass
class Problems:
    """What is wrong with one catalog, by message id."""

    missing: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)  # words a template shows as is

    def __bool__(self) -> bool:
        return bool(self.missing or self.obsolete or self.untranslated or self.unmarked)


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def check(po: Path, template: Catalog | None = None) -> Problems:
    """The catalog ``po`` against an extraction run of its domain's sources."""
    domain = domain_of(po)
    source = template or extract(domain)
    catalog = _read(po)
    wanted = {_key(m.id) for m in source if m.id}
    held = {_key(m.id) for m in catalog if m.id}
    problems = Problems(
        missing=sorted(wanted - held),
        obsolete=sorted((held - wanted) | {_key(m.id) for m in catalog.obsolete.values()}),
        unmarked=[line for path in _templates(domain) for line in unmarked_text(path)],
    )
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            problems.untranslated.append(_key(message.id))
    return problems


# What a page shows as is without being words of a language: the product's name.
_NOT_WORDS = re.compile(r"MailBeacon")
_WORDS = re.compile(r"[^\W\d_]{2}")
_TAG = re.compile(r"<[^>]*>")
_SHOWN_ATTRIBUTE = re.compile(r'\b(?:title|placeholder|aria-label|alt)="([^"]*)"')
_CODE = re.compile(r"<code>.*?</code>", re.S)  # commands and settings keys stay as typed
_MARK = "\x00"


def unmarked_text(path: Path) -> list[str]:
    """Where a Jinja2 template shows words outside ``{% trans %}`` and ``_()``:
    ``file: text`` (text between tags, and shown attributes such as ``title``)."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    pieces = []
    inside = after_block = False
    for _lineno, kind, value in env.lex(path.read_text(encoding="utf-8")):
        if kind == "whitespace":
            continue
        if kind == "name" and after_block:
            inside = value in ("trans", "pluralize") or (inside and value != "endtrans")
        after_block = kind == "block_begin"
        # Whatever Jinja2 writes (a value, a translation) stands as one mark in the text.
        pieces.append(value if kind == "data" and not inside else _MARK)
    text = _CODE.sub(_MARK, "".join(pieces))
    shown = _SHOWN_ATTRIBUTE.findall(text) + _TAG.sub(_MARK, text).split(_MARK)
    where = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return [
        f"{where}: {' '.join(part.replace(_MARK, '…').split())[:60]!r}"
        for part in shown
        if _WORDS.search(_NOT_WORDS.sub("", part))
    ]


def main(argv: list[str]) -> int:
    """``update``, ``compile`` or ``check``, of both domains or the one named."""
    command = argv[0] if argv else ""
    named = [d for d in DOMAINS if d.name in argv[1:]]
    domains = tuple(named) or DOMAINS
    if len(argv) > 1 and len(named) != len(argv) - 1:
        command = ""  # a domain we do not have: show the usage
    if command == "update":
        update(domains)
    elif command == "compile":
        compile_all(domains)
    elif command == "check":
        failed = False
        for domain in domains:
            template = extract(domain)
            for po in catalogs(domain):
                problems = check(po, template)
                for kind in ("missing", "obsolete", "untranslated", "unmarked"):
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
