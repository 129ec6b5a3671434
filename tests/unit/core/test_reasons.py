"""The classifier's reasons (issue 19): worded once in core/reasons.py, stored in English,
read back into their template and values and said in the rep's language.

* Every template reads back from its own English text (with sample values), nested
  reasons, notes and plural counts included, and says the same English again.
* What the classifier and the curated agent lists actually produce reads back.
* Text that fits no template (an older event, a server's own words) is shown as stored.
* A language with translations says each part in its words (the catalog's own Polish is
  checked where the tray shows it: tests/ui/views/test_reasons_polish.py).
"""

from __future__ import annotations

import gettext
from datetime import datetime

import pytest
from babel import Locale

from mailbeacon.core import reasons
from mailbeacon.core.botlists import AGENT_RULES, AgentKind
from mailbeacon.core.classify import Context, Hit, PriorHit, classify
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.core.reasons import Reading, Template, read, say

SAMPLES: dict[str, str] = {
    "gap": "2.5 s",
    "until": "14:05",
    "length": "12,345",
    "family": "Gmail image proxy",
    "name": "'Googlebot'",
    "seconds": "0.4 s",
    "via": "Gmail",
    "count": "4",
    "phrase": "'out of office'",
    "type": "disposition-notification",
    "header": "x-autoreply",
    "product": "Mimecast URL Protect",
    "program": "curl",
    "language": "Python",
    "owner": "Google",
    "note": "no usable time: timing not judged",
    "notes": "via iCloud Private Relay; no usable time: timing not judged",
    "reason": "followed the hidden honeypot link",
    "why": "subject says 'out of office'",
}


def _english(template: Template) -> str:
    fields = reasons._parts(template.message)[1::2]
    return template.text(**{name: SAMPLES[name] for name in fields})


ALL = (*reasons.REASONS, *reasons.NOTES, *reasons.WHYS)


@pytest.mark.parametrize("template", reasons.REASONS, ids=lambda t: t.message[:40])
def test_every_reason_reads_back_into_its_own_template(template: Template) -> None:
    text = _english(template)
    reading = read(text)
    assert reading is not None, text
    assert reading.template == template
    assert say(text, ENGLISH) == text


@pytest.mark.parametrize("template", (*reasons.NOTES, *reasons.WHYS), ids=lambda t: t.message)
def test_every_note_reads_back_inside_a_reason(template: Template) -> None:
    part = _english(template)
    outer = reasons.AUTO_REPLY if template in reasons.WHYS else reasons.WITH_NOTE
    text = (
        outer.text(why=part)
        if outer is reasons.AUTO_REPLY
        else outer.text(reason=reasons.HEAD.text(), note=part)
    )
    reading = read(text)
    assert reading is not None and reading.template == outer
    inner = reading.value("why" if outer is reasons.AUTO_REPLY else "note")
    assert isinstance(inner, Reading) and inner.template == template
    assert say(text, ENGLISH) == text


def test_a_composite_reason_is_read_part_by_part() -> None:
    text = (
        "opened in Gmail (fetched through Google's image proxy) (from Google's network) "
        "(clock skew: the hit came 12 s before the send time, timing not judged)"
    )
    reading = read(text)
    assert reading is not None and reading.template == reasons.WITH_NOTE
    note = reading.value("note")
    assert isinstance(note, Reading) and note.template == reasons.NOTE_CLOCK_SKEW
    inner = reading.value("reason")
    assert isinstance(inner, Reading) and inner.template == reasons.WITH_NOTE
    assert say(text, ENGLISH) == text
    human = read(
        "no sign of automation (via iCloud Private Relay; no usable time: timing not judged)"
    )
    assert human is not None and human.template == reasons.HUMAN_NOTES
    notes = human.value("notes")
    assert isinstance(notes, tuple)
    assert [n.template for n in notes] == [reasons.NOTE_VIA, reasons.NOTE_NO_TIME]


def test_a_count_reads_back_with_its_plural_form() -> None:
    assert reasons.BURST.text(count=3, seconds="2.1 s") == (
        "3 links clicked within 2.1 s from one address"
    )
    reading = read("3 links clicked within 2.1 s from one address")
    assert reading is not None and reading.template == reasons.BURST
    assert reading.value("count") == "3"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "classified by an older version",
        "access revoked by the operator",
        "no sign of automation (a note nobody wrote)",
        "followed the hidden honeypot link and more",
    ],
)
def test_text_that_fits_no_template_is_shown_as_stored(text: str) -> None:
    assert read(text) is None
    assert say(text, _ShoutingLanguage()) == text


@pytest.mark.parametrize(
    "rule", [r for r in AGENT_RULES if r.kind is not AgentKind.CLIENT], ids=lambda r: r.family
)
def test_every_listed_agent_reason_reads_back(rule: object) -> None:
    reason = rule.reason  # type: ignore[attr-defined]
    assert read(reason) is not None, f"add a template for {reason!r} to core/reasons.py"


def _hit(**changes: object) -> Hit:
    values: dict[str, object] = {
        "type": EventType.OPEN,
        "method": "GET",
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/115.0",
        "at": 1_000_100.0,
        "minted_at": 1_000_000,
        "message": "m1",
        "recipient": "r1",
    }
    values.update(changes)
    return Hit(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hit",
    [
        _hit(),
        _hit(honeypot=True, type=EventType.CLICK, link=0),
        _hit(method="HEAD"),
        _hit(claimed_browser=True),
        _hit(user_agent=""),
        _hit(user_agent="x" * 5000),
        _hit(user_agent="Mozilla\x00bin"),
        _hit(user_agent="curl/8.1"),
        _hit(user_agent="Mozilla/5.0 (via ggpht.com GoogleImageProxy)", at=1_000_000.5),
        _hit(user_agent="Mozilla/5.0 (via ggpht.com GoogleImageProxy)", at=999_000.0),
        _hit(user_agent="Mozilla/5.0 (via ggpht.com GoogleImageProxy)", type=EventType.CLICK),
        _hit(at=1_000_000.2),
        _hit(at=float("nan")),
        _hit(at=999_000.0),
    ],
)
def test_what_the_classifier_says_reads_back(hit: Hit) -> None:
    decision = classify(hit, Context())
    assert read(decision.reason) is not None, decision.reason
    assert say(decision.reason, ENGLISH) == decision.reason


def test_a_burst_and_the_agents_address_read_back() -> None:
    now = 1_000_100.0
    prior = tuple(
        PriorHit(i, _hit(type=EventType.CLICK, link=i, at=now - 1), Verdict.HUMAN)
        for i in range(1, 4)
    )
    burst = classify(_hit(type=EventType.CLICK, link=9, at=now), Context(recent=prior))
    assert burst.rule == "burst"
    said = read(burst.reason)
    assert said is not None and said.template == reasons.BURST
    left = datetime(2026, 1, 2, 14, 5).timestamp()
    address = "203.0.113.9"
    mine = classify(
        _hit(), Context(agent_addresses=frozenset({address}), agent_left={address: left})
    )
    until = read(mine.reason)
    assert until is not None and until.template == reasons.SELF_AGENT_UNTIL
    for revision in burst.revisions:
        assert read(revision.reason) is not None


class _Catalog(gettext.NullTranslations):
    """Translations from a dictionary (a plural by its singular)."""

    def __init__(self, words: dict[str, str]) -> None:
        super().__init__()
        self._words = words

    def gettext(self, message: str) -> str:
        return self._words.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._words.get(singular, singular if n == 1 else plural)


class _ShoutingLanguage(Language):
    def __init__(self) -> None:
        super().__init__("xx", gettext.NullTranslations(), Locale.parse("pl_PL"))

    def t(self, message: str, /, **values: object) -> str:
        return message.upper().format(**values)


def test_each_part_is_said_in_the_language_with_its_numbers() -> None:
    tr = Language(
        "pl",
        _Catalog(
            {
                "{reason} ({note})": "{reason} ({note})",
                "opened in Gmail (fetched through Google's image proxy)": "otwarte w Gmailu",
                "clock skew: the hit came {seconds} before the send time, timing not judged": (
                    "przesunięcie zegara o {seconds}"
                ),
                "{count} link clicked within {seconds} from one address": (
                    "kliknięte linki: {count} w {seconds}"
                ),
            }
        ),
        Locale.parse("pl_PL"),
    )
    text = (
        "opened in Gmail (fetched through Google's image proxy) "
        "(clock skew: the hit came 2.5 s before the send time, timing not judged)"
    )
    assert say(text, tr) == "otwarte w Gmailu (przesunięcie zegara o 2,5 s)"
    assert say("12 links clicked within 0.4 s from one address", tr) == (
        "kliknięte linki: 12 w 0,4 s"
    )
