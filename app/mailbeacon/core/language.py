"""The rep's language: translated words and dates, times and numbers as the rep reads them.

One mechanism for the whole desktop side (docs/architecture.md, "Languages"): GNU
gettext catalogs, one ``.po`` file per language in ``mailbeacon/data/locale``, with
English as the source language, and Babel for plural rules, locale date and number
formats. The agent (no Qt) and the tray use the same :class:`Language` object, handed
to each part that words something for the rep through its constructor; the command
line and the logs never go through it (scripts and operators read them).

A catalog is compiled to ``.mo`` by the build (``packaging/catalogs.py compile``);
where the compiled file is missing or older than its ``.po`` (a fresh clone), the
``.po`` is compiled in memory when the language is loaded.

Messages use ``str.format`` fields (``"{name} opened {subject}"``): a translation may
reorder them. :meth:`Language.t` marks and translates a message, :meth:`Language.n`
one with plural forms (Polish has three: 1 otwarcie, 2 otwarcia, 5 otwarć).
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

DOMAIN = "mailbeacon"
CATALOGS = Path(__file__).resolve().parent.parent / "data" / "locale"
SOURCE = "en"
LANGUAGES = ("en", "pl")
"""The languages with a complete catalog (English is the source)."""
SETTING_CHOICES = ("system", *LANGUAGES)
"""The values of the ``app.language`` setting."""
# Which country's formats a language uses when the system names none of its own.
_DEFAULT_FORMATS = {"en": "en_GB", "pl": "pl_PL"}
# The variables gettext reads, in its order: the first that names a language decides.
_LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
JUST_NOW_SECONDS = 60
WEEK_DAYS = 7


def system_locale(environ: Mapping[str, str]) -> str:
    """The locale the system names (``pl_PL``), or ``""`` (``C``/``POSIX`` or unset)."""
    for name in _LOCALE_VARIABLES:
        for value in environ.get(name, "").split(":"):
            tag = value.split(".")[0].split("@")[0]
            if tag and tag not in ("C", "POSIX"):
                return tag
    return ""


def chosen_code(setting: str, environ: Mapping[str, str]) -> str:
    """The language to speak: the setting, else the system's when it is one we speak."""
    if setting in LANGUAGES:
        return setting
    code = system_locale(environ).split("_")[0].lower()
    return code if code in LANGUAGES else SOURCE


def _formats(code: str, environ: Mapping[str, str]) -> Locale:
    """The locale for formats: the system's own country when its language is ``code``
    (en_US gets US dates), else the language's usual one."""
    tag = system_locale(environ)
    if tag.split("_")[0].lower() == code:
        try:
            return Locale.parse(tag)
        except (ValueError, UnknownLocaleError):
            pass
    return Locale.parse(_DEFAULT_FORMATS[code])


def load_catalog(
    code: str, folder: Path = CATALOGS, domain: str = DOMAIN
) -> gettext.NullTranslations:
    """The compiled catalog of ``code`` in ``domain`` (the admin console has its own);
    the ``.po`` compiled in memory when no up-to-date ``.mo`` is there; no translation
    for the source language."""
    if code == SOURCE:
        return gettext.NullTranslations()
    po = folder / code / "LC_MESSAGES" / f"{domain}.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    return gettext.GNUTranslations(io.BytesIO(compile_po(po)))


def compile_po(po: Path) -> bytes:
    """A ``.po`` file compiled to ``.mo`` bytes (fuzzy entries are left out)."""
    with po.open("rb") as handle:
        catalog = read_po(handle)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def mark(message: str) -> str:
    """Mark a message kept in a constant for the catalog; :meth:`Language.t` translates
    it where it is shown."""
    return message


class Phrase(str):
    """A sentence that reads as English wherever a ``str`` goes (the status file, the
    log, the command line) and keeps its message and fields, so the tray can say it
    in the rep's language (:func:`in_language`). ``message`` is marked where it is
    defined."""

    message: str
    values: Mapping[str, object]
    plural: tuple[str, int] | None  # (the plural message, the count) for ``n``

    def __new__(cls, message: str, /, **values: object) -> Phrase:
        """The English text of ``message`` with its ``{fields}`` filled."""
        return _phrase(message, None, values)

    def __reduce__(self) -> tuple[object, ...]:
        # Copied (dataclasses.asdict) or pickled, it stays a phrase.
        return (_phrase, (self.message, self.plural, dict(self.values)))


def _phrase(
    message: str, plural: tuple[str, int] | None, values: Mapping[str, object]
) -> Phrase:
    said = str.__new__(Phrase, _english(message, plural, values))
    said.message = message
    said.values = values
    said.plural = plural
    return said


class Joined(str):
    """Sentences or lines joined, each kept for :func:`in_language`."""

    parts: tuple[str, ...]
    separator: str

    def __new__(cls, separator: str, parts: Iterable[str]) -> Joined:
        """``separator.join(parts)``, remembering the parts."""
        kept = tuple(parts)
        said = super().__new__(cls, separator.join(kept))
        said.parts = kept
        said.separator = separator
        return said

    def __reduce__(self) -> tuple[object, ...]:
        return (Joined, (self.separator, self.parts))


def _english(message: str, plural: tuple[str, int] | None, values: Mapping[str, object]) -> str:
    if plural is None:
        return message.format(**values)
    many, count = plural
    return (message if count == 1 else many).format(count=count, **values)


def said(exc: BaseException) -> str:
    """The message ``exc`` was raised with: still a :class:`Phrase` when it was worded
    with one (``str(exc)`` gives plain English, the phrase lost), else its ``str``."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, str) else str(exc)


def in_language(text: str, tr: Language) -> str:
    """``text`` in ``tr`` when it is a :class:`Phrase` (or :class:`Joined` ones, or has
    them in its fields), else as it came (a server's own words, for example)."""
    if isinstance(text, Joined):
        return text.separator.join(in_language(part, tr) for part in text.parts)
    if not isinstance(text, Phrase):
        return text
    values = {k: in_language(v, tr) if isinstance(v, str) else v for k, v in text.values.items()}
    if text.plural is not None:
        return tr.n(text.message, text.plural[0], text.plural[1], **values)
    return tr.t(text.message, **values)


class Language:
    """Words, plural forms, dates, times and numbers in one language and time zone.

    ``zone`` is the rep's time zone (``None``: the system's local zone)."""

    def __init__(
        self,
        code: str,
        catalog: gettext.NullTranslations,
        formats: Locale,
        zone: tzinfo | None = None,
    ) -> None:
        self.code = code
        self.locale = formats
        self.zone = zone
        self._catalog = catalog

    @classmethod
    def load(
        cls,
        setting: str = "system",
        environ: Mapping[str, str] | None = None,
        zone: tzinfo | None = None,
        folder: Path = CATALOGS,
    ) -> Language:
        """The language the setting chooses (``system``: the environment's locale)."""
        env: Mapping[str, str] = {} if environ is None else environ
        code = chosen_code(setting, env)
        return cls(code, load_catalog(code, folder), _formats(code, env), zone)

    def in_zone(self, zone: tzinfo | None) -> Language:
        """The same language for a rep in ``zone``."""
        return Language(self.code, self._catalog, self.locale, zone)

    # ------------------------------------------------------------------ words

    def t(self, message: str, /, **values: object) -> str:
        """``message`` in this language, its ``{fields}`` filled from ``values``."""
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def n(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """The plural form for ``count``; ``{count}`` is the count in locale digits."""
        text = self._catalog.ngettext(singular, plural, count)
        return text.format(count=self.number(count), **values)

    # ------------------------------------------------------------------ numbers

    def number(self, value: float) -> str:
        """A number with the locale's separators: ``12,345`` / ``12 345``."""
        return format_decimal(value, locale=self.locale)

    def percent(self, value: float) -> str:
        """A share (0..1) as a whole percent: ``42%`` / ``42%``."""
        return format_percent(value, locale=self.locale)

    def size(self, size: int) -> str:
        """A size in bytes as a rep reads it: ``820 B``, ``1.5 MB`` / ``1,5 MB``."""
        amount = float(size)
        for unit in ("B", "KB", "MB"):
            if amount < 1024:
                digits = "#,##0" if unit == "B" else "#,##0.#"
                return f"{format_decimal(amount, digits, locale=self.locale)} {unit}"
            amount /= 1024
        return f"{format_decimal(amount, '#,##0.#', locale=self.locale)} GB"

    def country(self, code: str) -> str:
        """A country's name from its ISO code: ``PL`` → ``Poland`` / ``Polska``."""
        names: Mapping[str, str] = self.locale.territories
        return names.get(code.upper(), code)

    # ------------------------------------------------------------------ time

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the rep's zone (a naive one is taken as UTC)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def clock(self, moment: datetime) -> str:
        """The time of day: ``14:05`` (or ``2:05 PM`` where the locale says so)."""
        return format_time(self.local(moment), "short", locale=self.locale)

    def day(self, moment: date | datetime) -> str:
        """A date, medium length: ``12 Jun 2025`` / ``12 cze 2025``."""
        if isinstance(moment, datetime):
            moment = self.local(moment)
        return format_date(moment, "medium", locale=self.locale)

    def short_day(self, moment: date | datetime) -> str:
        """A date in this year: ``12 Jun`` / ``12 cze``."""
        if isinstance(moment, datetime):
            moment = self.local(moment)
        return format_skeleton("MMMd", moment, locale=self.locale)

    def weekday(self, moment: date | datetime) -> str:
        """A weekday, abbreviated: ``Mon`` / ``pon.``."""
        if isinstance(moment, datetime):
            moment = self.local(moment)
        return format_date(moment, "EEE", locale=self.locale)

    def when(self, moment: datetime) -> str:
        """A date with its time: ``12 Jun 2025, 14:05`` / ``12 cze 2025, 14:05``."""
        return self.t("{date}, {time}", date=self.day(moment), time=self.clock(moment))

    def full(self, moment: datetime) -> str:
        """The full date and time, for a hover: ``Thu 12 Jun 2025, 14:02:07``."""
        here = self.local(moment)
        return self.t(
            "{weekday} {date}, {time}",
            weekday=self.weekday(here),
            date=self.day(here),
            time=format_time(here, "medium", locale=self.locale),
        )

    def relative(self, moment: datetime, now: datetime) -> str:
        """When, the way a rep scans a feed: ``just now``, ``5 min ago``, ``today 09:12``,
        ``yesterday 14:02``, ``Mon 14:02``, ``12 Jun 14:02``, ``12 Jun 2024``."""
        here = self.local(moment)
        today = self.local(now)
        seconds = (today - here).total_seconds()
        days = (today.date() - here.date()).days
        clock = self.clock(here)
        if -JUST_NOW_SECONDS < seconds < JUST_NOW_SECONDS:
            return self.t("just now")  # a few seconds of clock difference read as now too
        if 0 < seconds < 3600:
            return self.t("{minutes} min ago", minutes=self.number(int(seconds // 60)))
        return self._days_ago(here, today, days, clock)

    def _days_ago(self, here: datetime, today: datetime, days: int, clock: str) -> str:
        if days == 0:
            return self.t("today {time}", time=clock)
        if days == 1:
            return self.t("yesterday {time}", time=clock)
        if 1 < days < WEEK_DAYS:
            return self.t("{weekday} {time}", weekday=self.weekday(here), time=clock)
        if here.year == today.year:
            return self.t("{date} {time}", date=self.short_day(here), time=clock)
        return self.day(here)


ENGLISH = Language(SOURCE, gettext.NullTranslations(), Locale.parse(_DEFAULT_FORMATS[SOURCE]))
"""English with British formats: the source language, and the default of every part
that is not handed a language (tests read English)."""


class _Phrases(Language):
    """English that keeps each message: what is said once for the status file (English)
    and again in the tray (the rep's language), through :func:`in_language`."""

    def t(self, message: str, /, **values: object) -> str:
        return Phrase(message, **values)

    def n(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        return _phrase(singular, (plural, count), values)


PHRASES: Language = _Phrases(
    SOURCE, gettext.NullTranslations(), Locale.parse(_DEFAULT_FORMATS[SOURCE])
)
"""English sentences that the tray can still say in the rep's language."""
