"""What is wrong with a sequence file or a contact list, in the rep's language (issue
19): the problems are phrases, English where they are printed (`mailbeacon sequence`),
Polish in the sequences window (`in_language`)."""

from __future__ import annotations

import pytest

from mailbeacon.core.language import Language, in_language
from mailbeacon.core.sequence_spec import SequenceError, parse_contacts_csv, parse_sequence

BAD_SEQUENCE = """
name = "q2-follow-up"
colour = "blue"

[window]
daily_cap = "many"

[[step]]
delay = "0d"
text = "Hello"

[[step]]
delay = "3d"
thread = false
text = "Again"
html = "<p>Again</p>"
"""


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


def test_a_sequence_files_problems_read_english_and_say_polish(pl: Language) -> None:
    with pytest.raises(SequenceError) as refused:
        parse_sequence(BAD_SEQUENCE)
    problems = refused.value.problems
    assert list(problems) == [
        "unknown key 'colour'",
        "[window]: daily_cap is a whole number",
        "step 1: needs a subject",
        "step 2: give exactly one of html, text or template",
        "step 2: needs a subject (it is not threaded)",
    ]
    assert [in_language(p, pl) for p in problems] == [
        "nieznany klucz 'colour'",
        "[window]: daily_cap to liczba całkowita",
        "krok 1: potrzebny jest temat",
        "krok 2: podaj dokładnie jedno z: html, text lub template",
        "krok 2: potrzebny jest temat (krok nie jest w wątku)",
    ]


def test_a_contact_lists_problems_say_polish(pl: Language) -> None:
    with pytest.raises(SequenceError) as refused:
        parse_contacts_csv("email,name\nnot-an-address,Ala\nola@example.com,Ola\n"
                           "ola@example.com,Ola\n")
    assert [in_language(p, pl) for p in refused.value.problems] == [
        "wiersz 2: 'not-an-address' nie jest adresem e-mail",
        "wiersz 4: ola@example.com występuje dwa razy",
    ]
    with pytest.raises(SequenceError) as no_header:
        parse_contacts_csv("name\nAla\n")
    assert [in_language(p, pl) for p in no_header.value.problems] == [
        "plik CSV potrzebuje wiersza nagłówka z kolumną 'email'"
    ]


BAD_TIMES = """
name = "q3"

[window]
days = ["mon", "someday"]
timezone = "Mars/Olympus"

[[step]]
delay = "soon"
subject = "Hi"
text = "Hello"

[[step]]
delay = "3d"
text = "Again"
"""


def test_a_sequence_files_time_problems_say_polish(pl: Language) -> None:
    # The window's and the delay's problems come from followup_time.py's rules.
    with pytest.raises(SequenceError) as refused:
        parse_sequence(BAD_TIMES)
    problems = refused.value.problems
    assert list(problems) == [
        "[window]: window days must be among mon, tue, wed, thu, fri, sat, sun: ['someday']",
        "step 1: delay 'soon' is not a number followed by s, m, h or d (e.g. '3d', '4h', '30s')",
    ]
    assert [in_language(p, pl) for p in problems] == [
        "[window]: dni okna muszą należeć do mon, tue, wed, thu, fri, sat, sun: ['someday']",
        "krok 1: opóźnienie 'soon' nie jest liczbą, po której stoi s, m, h albo d "
        "(np. '3d', '4h', '30s')",
    ]
