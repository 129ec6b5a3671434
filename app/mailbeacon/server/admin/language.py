"""The console's language: English or Polish, as the administrator's browser asks.

The console has a gettext domain of its own (``console``: ``data/locale/<lang>/
LC_MESSAGES/console.po``), so a server shipped alone carries only its own words; the
mechanism is the desktop's (:class:`mailbeacon.core.language.Language`, Babel for
plural rules and locale formats). Which language: the request's ``Accept-Language``,
negotiated among the catalogs there are, English when none matches. Each request gets
its own :class:`Language` and its own template callables (:func:`template_words`):
nothing per request is installed in the Jinja2 environment the requests share. The
command line and the logs stay English.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import UTC
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from mailbeacon.core.language import LANGUAGES, SOURCE, Language, load_catalog

DOMAIN = "console"
# Which country's formats a language uses when the browser names none of its own.
_FORMATS = {"en": "en_GB", "pl": "pl_PL"}
_MAX_TAGS = 20  # an Accept-Language header is short; a long one is not read further


def preferred(header: str) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first
    (``pl-PL,pl;q=0.9,en;q=0.5`` → ``["pl-PL", "pl", "en"]``; ``q=0`` left out)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:_MAX_TAGS]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and tag.strip() != "*" and quality > 0:
            ranked.append((-quality, index, tag.strip()))
    return [tag for _q, _i, tag in sorted(ranked)]


def negotiate(header: str, available: tuple[str, ...] = LANGUAGES) -> tuple[str, Locale]:
    """The language to speak and the locale of its formats: the first tag of the
    header whose language has a catalog (``en-US`` → English with US formats), else
    English with British formats."""
    for tag in preferred(header):
        code = tag.split("-")[0].split("_")[0].lower()
        if code in available:
            return code, _locale(tag, code)
    return SOURCE, Locale.parse(_FORMATS[SOURCE])


def _locale(tag: str, code: str) -> Locale:
    if "-" in tag or "_" in tag:
        try:
            return Locale.parse(tag.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            pass
    return Locale.parse(_FORMATS.get(code, code))


class ConsoleLanguages:
    """The console's catalogs, loaded once; a :class:`Language` per request from them.

    ``setting``: ``auto`` (the browser's ``Accept-Language``) or a language code that
    every request gets."""

    def __init__(self, setting: str = "auto") -> None:
        self._setting = setting
        self._catalogs: dict[str, gettext.NullTranslations] = {
            code: load_catalog(code, domain=DOMAIN) for code in LANGUAGES
        }

    def for_header(self, accept_language: str) -> Language:
        """The language for a request that sent ``accept_language``; times in UTC (the
        console's times are the server's, said as UTC)."""
        header = self._setting if self._setting in self._catalogs else accept_language
        code, formats = negotiate(header, tuple(self._catalogs))
        return Language(code, self._catalogs[code], formats, UTC)


def template_words(tr: Language) -> dict[str, Any]:
    """What a template needs to speak ``tr``, passed in its render context: Jinja2's
    new-style ``gettext``/``ngettext`` (``{% trans %}``, ``_()``; a value is escaped,
    ``%(name)s`` filled), the :class:`Language` as ``lang`` (numbers, dates) and the
    page's ``lang_code`` for ``<html lang>``."""
    return {
        "gettext": _newstyle(tr.t),
        "ngettext": _newstyle_plural(tr),
        "lang": tr,
        "lang_code": tr.code,
    }


def _newstyle(words: Callable[[str], str]) -> Callable[..., str]:
    @pass_context
    def gettext(context: Context, message: str, /, **values: Any) -> str:
        text = words(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 - the catalog's text; values are escaped by %
        # As Jinja2's own new-style gettext: a literal % is written %% in the message.
        return text % values

    return gettext


def _newstyle_plural(tr: Language) -> Callable[..., str]:
    @pass_context
    def ngettext(context: Context, singular: str, plural: str, count: int, /,
                 **values: Any) -> str:  # fmt: skip
        text = tr.n(singular, plural, count)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 - the catalog's text; values are escaped by %
        # The count in the locale's digits (1 234 / 1,234), whatever its name.
        fields = {k: _counted(tr, v, count) for k, v in {"num": count, **values}.items()}
        return text % fields

    return ngettext


def _counted(tr: Language, value: object, count: int) -> object:
    return tr.number(count) if isinstance(value, int) and value == count else value
