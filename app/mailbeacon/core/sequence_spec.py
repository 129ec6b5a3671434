"""What a sequence is: its TOML file, its steps and the contacts' fields (pure).

The file (docs/interfaces.md#sequences)::

    name = "q2-follow-up"
    from = "Anna Kowalska <anna@example.com>"   # optional
    [window]                                    # optional: any time
    days = ["mon", "tue", "wed", "thu", "fri"]
    hours = "08:00-18:00"
    timezone = "Europe/Warsaw"
    daily_cap = 50
    [[step]]
    delay = "0s"
    subject = "Oferta dla {company}"
    html = "<p>Dzień dobry {first_name}, …</p>"  # or text = "…", or template = "name"
    [[step]]
    delay = "2d"
    html = "<p>…</p>"                            # "Re: <first subject>", threaded

Decisions:

* Everything wrong with a file is reported at once (``SequenceError.problems``),
  each problem naming the step, so the rep fixes it in one go. Unknown keys are
  errors: a misspelt ``thread`` or ``dealy`` would otherwise change nothing silently.
* Placeholders are ``{name}`` with a lower-case identifier inside; anything else in
  braces (CSS, a literal ``{``) is left alone. ``first_name``, ``last_name``,
  ``name``, ``company`` and ``email`` come from the contact; any other name from a
  CSV column. Values are HTML-escaped in HTML bodies.
* A contact missing a value any step needs is caught before anything is sent:
  ``missing_fields`` names every such row (CSV line numbers as a spreadsheet shows
  them).
"""

from __future__ import annotations

import csv
import html
import io
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailbeacon.core.followup_time import Delay, TimeRuleError, Window, parse_delay, parse_window
from mailbeacon.core.html_text import visible_text
from mailbeacon.core.language import PHRASES, said

MIN_STEPS, MAX_STEPS = 2, 5
MAX_NAME = 120
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
CONTACT_FIELDS = ("first_name", "last_name", "name", "company", "email")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")
_TOP_KEYS = frozenset({"name", "from", "window", "step"})
_WINDOW_KEYS = frozenset({"days", "hours", "timezone", "daily_cap"})
_STEP_KEYS = frozenset({"delay", "subject", "html", "text", "template", "thread"})
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+$")


class SequenceError(ValueError):
    """A sequence file or contact list that cannot be used; ``problems`` lists each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a delay, and a body (HTML, text, or a saved template)."""

    delay: Delay
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    template: str | None = None
    thread: bool = True


@dataclass(frozen=True, slots=True)
class Sequence:
    """A parsed sequence file."""

    name: str
    sender: str | None
    window: Window
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact to enrol: the address, the fields placeholders read, where it came from."""

    email: str
    fields: dict[str, str] = field(default_factory=dict)
    line: int | None = None  # the CSV line (1 is the header)


def parse_sequence(source: str) -> Sequence:
    """The sequence in ``source`` (TOML); raises SequenceError listing every problem."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        problem = PHRASES.t("the file is not valid TOML: {error}", error=str(exc))
        raise SequenceError([problem]) from None
    problems: list[str] = []
    problems += [PHRASES.t("unknown key {key}", key=repr(k)) for k in sorted(set(data) - _TOP_KEYS)]
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME:
        problems.append(
            PHRASES.t(
                "name must be letters, digits, spaces, '.', '_' or '-' (at most 120), e.g. "
                'name = "q2-follow-up"'
            )
        )
    sender = data.get("from")
    if sender is not None and (not isinstance(sender, str) or "@" not in sender):
        problems.append(PHRASES.t('from must be an address, e.g. from = "Anna <anna@example.com>"'))
    window = _window(data.get("window"), problems)
    raw_steps = data.get("step")
    steps: list[Step] = []
    if not isinstance(raw_steps, list) or not MIN_STEPS <= len(raw_steps) <= MAX_STEPS:
        problems.append(
            PHRASES.t(
                "a sequence has {low} to {high} [[step]] tables", low=MIN_STEPS, high=MAX_STEPS
            )
        )
    else:
        for number, raw in enumerate(raw_steps, 1):
            step = _step(number, raw, problems)
            if step is not None:
                steps.append(step)
    if problems:
        raise SequenceError(problems)
    assert isinstance(name, str)
    return Sequence(name, sender, window, tuple(steps))


def _window(raw: Any, problems: list[str]) -> Window:
    if raw is None:
        return Window()
    if not isinstance(raw, dict):
        problems.append(PHRASES.t("[window] must be a table"))
        return Window()
    problems += [
        PHRASES.t("[window]: unknown key {key}", key=repr(k))
        for k in sorted(set(raw) - _WINDOW_KEYS)
    ]
    days, hours, zone, cap = (raw.get(k) for k in ("days", "hours", "timezone", "daily_cap"))
    if days is not None and not (isinstance(days, list) and all(isinstance(d, str) for d in days)):
        problems.append(PHRASES.t('[window]: days is a list such as ["mon", "tue"]'))
        days = None
    if hours is not None and not isinstance(hours, str):
        problems.append(PHRASES.t('[window]: hours is text such as "08:00-18:00"'))
        hours = None
    if zone is not None and not isinstance(zone, str):
        problems.append(PHRASES.t('[window]: timezone is text such as "Europe/Warsaw"'))
        zone = None
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool)):
        problems.append(PHRASES.t("[window]: daily_cap is a whole number"))
        cap = None
    try:
        return parse_window(days, hours, zone, cap)
    except TimeRuleError as exc:
        problems.append(PHRASES.t("[window]: {problem}", problem=said(exc)))
        return Window()


def _step(number: int, raw: Any, problems: list[str]) -> Step | None:
    where = PHRASES.t("step {number}", number=number)
    if not isinstance(raw, dict):
        problems.append(PHRASES.t("{where} must be a table", where=where))
        return None
    problems += [
        PHRASES.t("{where}: unknown key {key}", where=where, key=repr(k))
        for k in sorted(set(raw) - _STEP_KEYS)
    ]
    try:
        delay = parse_delay(
            str(raw.get("delay", "0s")), what=PHRASES.t("{where}: delay", where=where)
        )
    except TimeRuleError as exc:
        problems.append(said(exc))
        delay = Delay(0, "s")
    bodies = [k for k in ("html", "text", "template") if k in raw]
    if len(bodies) != 1:
        problems.append(
            PHRASES.t("{where}: give exactly one of html, text or template", where=where)
        )
    for key in ("subject", "html", "text", "template"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(PHRASES.t("{where}: {key} must be text", where=where, key=key))
    thread = raw.get("thread", True)
    if not isinstance(thread, bool):
        problems.append(PHRASES.t("{where}: thread is true or false", where=where))
        thread = True
    subject = raw.get("subject")
    needs_subject = number == 1 or not thread
    if needs_subject and not subject and "template" not in raw:
        problems.append(
            PHRASES.t("{where}: needs a subject", where=where)
            if number == 1
            else PHRASES.t("{where}: needs a subject (it is not threaded)", where=where)
        )
    return Step(delay, subject, raw.get("html"), raw.get("text"), raw.get("template"), thread)


# ------------------------------------------------------------------ placeholders


def placeholders(*texts: str | None) -> set[str]:
    """The placeholder names used in ``texts``."""
    return {m.group(1) for text in texts if text for m in PLACEHOLDER.finditer(text)}


def fill(text: str, values: Mapping[str, str], *, as_html: bool = False) -> str:
    """``text`` with each known placeholder replaced (escaped for HTML); unknown ones stay."""

    def one(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        if value is None:
            return m.group(0)
        return html.escape(value) if as_html else value

    return PLACEHOLDER.sub(one, text)


def contact_values(email: str, fields: Mapping[str, str]) -> dict[str, str]:
    """What placeholders read for one contact: its fields, with the name split into first
    and last when those are not given, and ``email``. Empty values are left out."""
    values = {k: v.strip() for k, v in fields.items() if v and v.strip()}
    values["email"] = email
    full = values.get("name", "")
    if full and "first_name" not in values:
        values["first_name"] = full.split()[0]
    if full and "last_name" not in values and len(full.split()) > 1:
        values["last_name"] = full.split()[-1]
    return values


TemplateLookup = Callable[[str], tuple[str, str] | None]
"""A saved template's (subject, html) by name, or None when there is none."""


def step_texts(step: Step, templates: TemplateLookup) -> tuple[str | None, str | None, str | None]:
    """(subject, html, text) of a step, a template's subject and HTML filled in."""
    subject, body_html, body_text = step.subject, step.html, step.text
    if step.template is not None:
        found = templates(step.template)
        if found is not None:
            subject = subject or found[0]
            body_html = found[1]
    return subject, body_html, body_text


def missing_templates(sequence: Sequence, templates: TemplateLookup) -> list[str]:
    """Problems with the saved templates the steps name."""
    return [
        PHRASES.t("step {number}: there is no saved template {name}", number=n,
           name=repr(step.template))
        for n, step in enumerate(sequence.steps, 1)
        if step.template is not None and templates(step.template) is None
    ]


def missing_fields(
    sequence: Sequence, rows: Iterable[ContactRow], templates: TemplateLookup
) -> list[str]:
    """One problem per contact that lacks a value some step needs (nothing sent yet)."""
    needed: set[str] = set()
    for step in sequence.steps:
        needed |= placeholders(*step_texts(step, templates))
    problems = []
    for row in rows:
        values = contact_values(row.email, row.fields)
        lacking = sorted(needed - set(values))
        if lacking:
            where = (
                PHRASES.t("line {line} ({email})", line=row.line, email=row.email)
                if row.line
                else row.email
            )
            names = ", ".join("{" + name + "}" for name in lacking)
            problems.append(PHRASES.t("{where}: no value for {names}", where=where, names=names))
    return problems


def parse_contacts_csv(text: str) -> list[ContactRow]:
    """Contacts from CSV with a header row that has an ``email`` column; the other
    columns are fields (``name``, ``company`` and any custom one). Raises SequenceError
    naming each bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "email" not in columns:
        raise SequenceError([PHRASES.t("the CSV needs a header row with an 'email' column")])
    rows: list[ContactRow] = []
    problems: list[str] = []
    seen: set[str] = set()
    for record in reader:
        line = reader.line_num
        values = {
            (k or "").strip().lower(): (v or "").strip()
            for k, v in record.items()
            if isinstance(v, str)
        }
        email = values.pop("email", "").lower()
        if not _ADDRESS.match(email):
            problems.append(
                PHRASES.t("line {line}: {email} is not an email address", line=line,
                   email=repr(email or "(empty)"))
            )
            continue
        if email in seen:
            problems.append(
                PHRASES.t("line {line}: {email} is listed twice", line=line, email=email)
            )
            continue
        seen.add(email)
        rows.append(ContactRow(email, values, line))
    if problems:
        raise SequenceError(problems)
    if not rows:
        raise SequenceError([PHRASES.t("the CSV lists no contacts")])
    return rows


def is_address(text: str) -> bool:
    """Whether ``text`` is a bare email address."""
    return bool(_ADDRESS.match(text))


def bodies(body_html: str | None, body_text: str | None) -> tuple[str, str]:
    """(html, text) for an email from a step that gave one of them."""
    if body_html is not None:
        paragraphs = re.split(r"(?i)</p\s*>|<br\s*/?>", body_html)
        text = "\n\n".join(t for t in (visible_text(p) for p in paragraphs) if t)
        return body_html, text
    text = body_text or ""
    escaped = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    return escaped.replace("\n", "<br>"), text


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` unless it already is a reply."""
    stripped = subject.strip()
    if stripped.lower().startswith(("re:", "aw:", "odp:", "sv:")):
        return stripped
    return f"Re: {stripped}"
