"""Why a hit got its verdict, worded once: English where it is stored, the rep's language
where it is shown.

The classifier (:mod:`mailbeacon.core.classify`) words its reasons with the templates
here, in English; the server stores and streams that English text (the event's
``reason``, read by operators and scripts too). The tray reads a stored reason back
into its template and values (:func:`read`) and says it in the rep's language
(:func:`say`). A composite reason (``"… (note; note)"``, a proxy's reason with a timing
note) is read part by part. Text that fits no template (an older event, a reason worded
elsewhere) is shown as stored.

The curated user-agent lists (:mod:`mailbeacon.core.botlists`) keep their reasons as
data; the templates below cover their shapes ("{product} email security scanner"),
and a test reads every listed reason back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from babel.numbers import format_decimal

from mailbeacon.core.language import Language, mark

_FIELD = re.compile(r"\{(\w+)\}")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?) s$")
_NUMBER = re.compile(r"^\d{1,3}(?:,\d{3})*$")
_TIMES = frozenset({"seconds", "gap"})
_NUMBERS = frozenset({"count", "length"})
NOTE_SEPARATOR = "; "


@dataclass(frozen=True, slots=True)
class Template:
    """A reason's wording: an English message with ``{fields}``, marked for the catalog;
    ``plural`` its plural message when it counts something (``{count}``)."""

    message: str
    plural: str | None = None

    def text(self, **values: object) -> str:
        """The English reason (what the server stores)."""
        if self.plural is None:
            return self.message.format(**values)
        count = int(str(values["count"]).replace(",", ""))
        chosen = self.message if count == 1 else self.plural
        return chosen.format(**{**values, "count": f"{count:,}"})

    def forms(self) -> tuple[str, ...]:
        """The English messages a stored text may have been worded from."""
        return (self.message,) if self.plural is None else (self.message, self.plural)


def n(singular: str, plural: str) -> Template:
    """A template with plural forms (marked for the catalog like ``Language.n``)."""
    return Template(singular, plural)


def _t(message: str) -> Template:
    return Template(message)


# ------------------------------------------------------------------ the classifier's reasons

HONEYPOT = _t(mark("followed the hidden honeypot link"))
HONEYPOT_REVISED = _t(mark("the same address followed the hidden honeypot link"))
HONEYPOT_ADDRESS = _t(mark("the same address followed the hidden honeypot link ({gap} apart)"))
HEAD = _t(mark("HEAD request (link checkers, never a person)"))
SELF_CLAIMED = _t(mark("the rep's browser (claimed)"))
SELF_AGENT = _t(mark("the rep's address (agent connected)"))
SELF_AGENT_UNTIL = _t(mark("the rep's address (agent connected until {until} UTC)"))
UA_LENGTH = _t(mark("user agent of {length} characters: no mail client sends one that long"))
UA_EMPTY = _t(mark("no user agent: mail clients and browsers always send one"))
UA_BINARY = _t(mark("unreadable user agent (binary data): not a mail client"))
UA_PROXY_CLICK = _t(
    mark("{family} agent on a link: proxies fetch images, people click in a browser")
)
UA_CRAWLER = _t(mark("automated agent (CrawlerDetect list: {name})"))
NET_MICROSOFT_CLICK = _t(
    mark("Microsoft Defender Safe Links scanner (link fetched from Microsoft's mail servers)")
)
NET_MICROSOFT_OPEN = _t(
    mark("fetched by Microsoft's mail servers (Exchange Online scanning): may not be a real open")
)
NET_GOOGLE_CLICK = _t(mark("Google link scan (link fetched from Google's mail servers)"))
NET_GOOGLE_OPEN = _t(
    mark("Gmail prefetch (fetched from Google's servers without Gmail's image proxy): not an open")
)
OPENED_TOO_FAST = _t(mark("opened {seconds} after sending: faster than a person"))
CLICKED_TOO_FAST = _t(mark("clicked {seconds} after sending: faster than a person"))
PROXY_TOO_FAST = _t(mark("{reason} (through {via}'s proxy): not a real open"))
BURST = n(
    "{count} link clicked within {seconds} from one address",
    "{count} links clicked within {seconds} from one address",
)
HUMAN = _t(mark("no sign of automation"))
HUMAN_NOTES = _t(mark("no sign of automation ({notes})"))
WITH_NOTE = _t(mark("{reason} ({note})"))

# Notes: said in parentheses after a reason.
NOTE_VIA = _t(mark("via {via}"))
NOTE_NO_TIME = _t(mark("no usable time: timing not judged"))
NOTE_CLOCK_SKEW = _t(
    mark("clock skew: the hit came {seconds} before the send time, timing not judged")
)
NOTE_APPLE_RELAY = _t(mark("from Apple's relay network"))
NOTE_GOOGLE_NETWORK = _t(mark("from Google's network"))

# ------------------------------------------------------------------ the server's and the agent's

UNCLASSIFIED = _t(mark("unclassified (classifier error)"))
HEAD_NEVER = _t(mark("HEAD request (never a person)"))
INFERRED_FROM_CLICK = _t(mark("inferred from a click"))
INFERRED_FROM_REPLY = _t(mark("inferred from a reply"))
AUTO_REPLY = _t(mark("automatic reply ({why})"))
# Why a reply was automatic (mailbeacon.core.inbound); a header's own text stays as sent.
WHY_SUBJECT = _t(mark("subject says {phrase}"))
WHY_REPORT = _t(mark("automatic report ({type})"))
WHY_HEADER = _t(mark("{header} header"))
WHY_NULL_RETURN_PATH = _t(mark("null Return-Path"))

# ------------------------------------------------------------------ the agent lists' shapes

LISTED = (
    _t(mark("opened in Gmail (fetched through Google's image proxy)")),
    _t(mark("opened in Yahoo Mail (fetched through Yahoo's image proxy)")),
    _t(mark("Apple Mail Privacy Protection prefetch: may not be a real open")),
    _t(mark("Gmail prefetch on delivery (outdated Edge 12 agent): not an open")),
    _t(
        mark(
            "Microsoft Office checking a link before opening it (the browser makes the real click)"
        )
    ),
    _t(mark("URL scanning service")),
    _t(mark("link preview")),
    _t(mark("headless browser (automated Chrome)")),
    _t(mark("headless browser (automation toolkit)")),
    _t(mark("HTTP library: a program, not a mail client")),
    _t(mark("AI or search crawler")),
    _t(mark("search or SEO crawler")),
    _t(mark("{product} email security scanner")),
    _t(mark("{product} email scanner")),
    _t(mark("{product} security scanner")),
    _t(mark("{product} link scanner")),
    _t(mark("{product} scanner")),
    _t(mark("{product} link preview ({name})")),
    _t(mark("{product} link preview")),
    _t(mark("command-line HTTP client ({program})")),
    _t(mark("{language} HTTP library: a script, not a mail client")),
    _t(mark("{language} HTTP library: a program, not a mail client")),
    _t(mark("{owner} crawler")),
)

NOTES = (NOTE_VIA, NOTE_NO_TIME, NOTE_CLOCK_SKEW, NOTE_APPLE_RELAY, NOTE_GOOGLE_NETWORK)
WHYS = (WHY_SUBJECT, WHY_REPORT, WHY_HEADER, WHY_NULL_RETURN_PATH)
# First fit wins: whole wordings, then the lists' shapes, then the composites.
REASONS = (
    HONEYPOT,
    HONEYPOT_REVISED,
    HONEYPOT_ADDRESS,
    HEAD,
    SELF_CLAIMED,
    SELF_AGENT,
    SELF_AGENT_UNTIL,
    UA_LENGTH,
    UA_EMPTY,
    UA_BINARY,
    UA_PROXY_CLICK,
    UA_CRAWLER,
    NET_MICROSOFT_CLICK,
    NET_MICROSOFT_OPEN,
    NET_GOOGLE_CLICK,
    NET_GOOGLE_OPEN,
    OPENED_TOO_FAST,
    CLICKED_TOO_FAST,
    BURST,
    HUMAN,
    HUMAN_NOTES,
    UNCLASSIFIED,
    HEAD_NEVER,
    INFERRED_FROM_CLICK,
    INFERRED_FROM_REPLY,
    AUTO_REPLY,
    *LISTED,
    PROXY_TOO_FAST,
    WITH_NOTE,
)


@dataclass(frozen=True, slots=True)
class Reading:
    """A stored reason read back: its template and its values (another :class:`Reading`
    for a nested reason or note, a tuple of them for notes, else the text as stored)."""

    template: Template
    values: tuple[tuple[str, str | Reading | tuple[Reading, ...]], ...] = ()

    def value(self, name: str) -> str | Reading | tuple[Reading, ...]:
        """The value of field ``name``."""
        return dict(self.values)[name]


def read(text: str) -> Reading | None:
    """The template and values a stored English reason was worded from, or None when it
    fits none (an older or foreign wording)."""
    return _read(text, REASONS) if text else None


@lru_cache(maxsize=2048)
def _read(text: str, templates: tuple[Template, ...]) -> Reading | None:
    for template in templates:
        for form in template.forms():
            values = _match(_parts(form), text, 0)
            if values is not None:
                return Reading(template, tuple(values.items()))
    return None


@cache
def _parts(message: str) -> tuple[str, ...]:
    """Literal text and field names, alternating (the first and last are literal)."""
    return tuple(_FIELD.split(message))


def _match(
    parts: tuple[str, ...], text: str, start: int
) -> dict[str, str | Reading | tuple[Reading, ...]] | None:
    """The field values with which ``parts`` (literal, field, literal, …) word
    ``text[start:]``, or None."""
    literal = parts[0]
    if not text.startswith(literal, start):
        return None
    start += len(literal)
    if len(parts) == 1:
        return {} if start == len(text) else None
    name, rest = parts[1], parts[2:]
    for end in _ends(text, rest, start):
        value = _field(name, text[start:end])
        if value is None:
            continue
        found = _match(rest, text, end)
        if found is not None:
            return {name: value, **found}
    return None


def _ends(text: str, rest: tuple[str, ...], start: int) -> list[int]:
    """Where a field starting at ``start`` may end: before each place the literal after
    it occurs (the last literal only at the very end)."""
    literal = rest[0]
    if len(rest) == 1:
        end = len(text) - len(literal)
        return [end] if end > start and text.endswith(literal) else []
    found = []
    at = text.find(literal, start + 1)
    while at != -1:
        found.append(at)
        at = text.find(literal, at + 1)
    return found


def _field(name: str, value: str) -> str | Reading | tuple[Reading, ...] | None:
    """``value`` as field ``name`` holds it, or None when it cannot be that field."""
    if name == "reason":
        return _read(value, REASONS)
    if name == "note":
        return _read(value, NOTES)
    if name == "notes":
        notes = tuple(_read(part, NOTES) for part in value.split(NOTE_SEPARATOR))
        return None if any(note is None for note in notes) else notes  # type: ignore[return-value]
    if name == "why":
        return _read(value, WHYS) or value
    if name in _NUMBERS and not _NUMBER.match(value):
        return None
    return value


@lru_cache(maxsize=4096)
def say(text: str, tr: Language) -> str:
    """A stored reason in ``tr``'s language; as stored when it fits no template.

    Remembered: the activity window asks again at every repaint of the column."""
    reading = read(text)
    return text if reading is None else _said(reading, tr)


def _said(reading: Reading, tr: Language) -> str:
    values = {name: _value(name, value, tr) for name, value in reading.values}
    template = reading.template
    if template.plural is not None:
        count = int(str(values.pop("count")).replace(",", ""))  # stored as written
        return tr.n(template.message, template.plural, count, **values)
    return tr.t(template.message, **values)


def _value(name: str, value: str | Reading | tuple[Reading, ...], tr: Language) -> object:
    if isinstance(value, Reading):
        return _said(value, tr)
    if isinstance(value, tuple):
        return NOTE_SEPARATOR.join(_said(note, tr) for note in value)
    if name == "count":
        return value
    if name in _NUMBERS:
        return tr.number(int(value.replace(",", "")))
    seconds = _SECONDS.match(value) if name in _TIMES else None
    if seconds is not None:
        # As written (no thousands separator), with the locale's decimal sign.
        return f"{format_decimal(float(seconds.group(1)), '0.#', locale=tr.locale)} s"
    return value
