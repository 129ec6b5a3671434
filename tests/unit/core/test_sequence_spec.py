"""The sequence file, placeholders and contact lists (pure rules of issue 17, part 3)."""

from __future__ import annotations

from datetime import time

import pytest

from mailbeacon.core.followup_time import Delay
from mailbeacon.core.sequence_spec import (
    ContactRow,
    SequenceError,
    bodies,
    contact_values,
    fill,
    missing_fields,
    missing_templates,
    parse_contacts_csv,
    parse_sequence,
)

ISSUE_FILE = """
name = "q2-follow-up"
from = "Anna Kowalska <anna@example.com>"   # optional: the account's address by default
[window]                                    # optional: absent means any time
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "08:00-18:00"
timezone = "Europe/Warsaw"
daily_cap = 50
[[step]]
delay = "0s"                                 # after enrolment, then after the previous step
subject = "Oferta dla {company}"
html = "<p>Dzień dobry {first_name}, …</p>"  # or text = "…", or template = "saved template name"
[[step]]
delay = "2d"                                 # s, m, h, d; d counts business days
html = "<p>…</p>"                            # later steps: "Re: <first subject>", threaded
"""


def no_templates(_name: str) -> tuple[str, str] | None:
    return None


def test_the_issues_example_file_parses() -> None:
    sequence = parse_sequence(ISSUE_FILE)
    assert sequence.name == "q2-follow-up"
    assert sequence.sender == "Anna Kowalska <anna@example.com>"
    assert sequence.window.days == frozenset(range(5))
    assert (sequence.window.start, sequence.window.end) == (time(8), time(18))
    assert sequence.window.zone == "Europe/Warsaw" and sequence.window.daily_cap == 50
    first, second = sequence.steps
    assert first.delay == Delay(0, "s") and first.subject == "Oferta dla {company}"
    assert second.delay == Delay(2, "d") and second.thread and second.subject is None


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ('name = "x"\n[[step]]\ntext = "a"\nsubject = "s"', "2 to 5"),
        ('name = "x"\n' + '[[step]]\ntext = "a"\nsubject = "s"\n' * 6, "2 to 5"),
        ('name = "x"\n[[step]]\ntext = "a"\n[[step]]\ntext = "b"', "step 1: needs a subject"),
        ('name = "x"\n[[step]]\nsubject = "s"\n[[step]]\ntext = "b"', "exactly one of"),
        ('name = "x"\n[[step]]\nsubject = "s"\ntext = "a"\n[[step]]\ntext = "b"\ndelay = "2w"',
         "step 2: delay"),
        ('name = "x"\n[[step]]\nsubject = "s"\ntext = "a"\n[[step]]\ntext = "b"\nthread = false',
         "step 2: needs a subject"),
        ('name = "x"\n[[step]]\nsubject = "s"\ntext = "a"\n[[step]]\ntext = "b"\ndealy = "1d"',
         "unknown key 'dealy'"),
        ('name = "x"\n[window]\nhours = "18:00-08:00"\n[[step]]\nsubject = "s"\ntext = "a"\n'
         '[[step]]\ntext = "b"', "[window]"),
        ('name = ""\n[[step]]\nsubject = "s"\ntext = "a"\n[[step]]\ntext = "b"', "name must"),
        ("name = ", "not valid TOML"),
    ],
)  # fmt: skip
def test_every_problem_is_named(source: str, problem: str) -> None:
    with pytest.raises(SequenceError) as refused:
        parse_sequence(source)
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_placeholders_come_from_the_contact_and_are_escaped_in_html() -> None:
    values = contact_values("jan@x.example", {"name": "Jan Kowal", "company": "A&B", "city": ""})
    assert values["first_name"] == "Jan" and values["last_name"] == "Kowal"
    assert "city" not in values  # empty is missing
    assert fill("<p>{first_name} z {company} {unknown} {color: red}</p>", values, as_html=True) == (
        "<p>Jan z A&amp;B {unknown} {color: red}</p>"
    )
    assert fill("Oferta dla {company}", values) == "Oferta dla A&B"


def test_a_missing_field_names_the_rows_before_anything_is_sent() -> None:
    sequence = parse_sequence(
        'name = "x"\n[[step]]\nsubject = "Oferta dla {company}"\ntext = "Hi {first_name}"\n'
        '[[step]]\ntext = "About {product}"'
    )
    rows = parse_contacts_csv(
        "email,name,company,product\n"
        "jan@x.example,Jan Kowal,Kowal SA,cranes\n"
        "ewa@y.example,Ewa Lis,,cranes\n"
        "olga@z.example,,Z sp. z o.o.,\n"
    )
    assert [r.line for r in rows] == [2, 3, 4]
    assert missing_fields(sequence, rows, no_templates) == [
        "line 3 (ewa@y.example): no value for {company}",
        "line 4 (olga@z.example): no value for {first_name}, {product}",
    ]
    assert missing_fields(sequence, [ContactRow("a@b.example", {"name": "A", "company": "C",
                                                                "product": "p"})],
                          no_templates) == []  # fmt: skip


def test_templates_count_for_placeholders_and_must_exist() -> None:
    sequence = parse_sequence(
        'name = "x"\n[[step]]\ntemplate = "Offer"\n[[step]]\ntemplate = "Gone"'
    )

    def lookup(name: str) -> tuple[str, str] | None:
        return ("Offer for {company}", "<p>Hi</p>") if name == "Offer" else None

    assert missing_templates(sequence, lookup) == ["step 2: there is no saved template 'Gone'"]
    assert missing_fields(sequence, [ContactRow("a@b.example")], lookup) == [
        "a@b.example: no value for {company}"
    ]


def test_bad_csv_lines_are_named() -> None:
    with pytest.raises(SequenceError) as refused:
        parse_contacts_csv("email,name\nnot-an-address,X\na@b.example,A\nA@B.example,A again\n")
    assert refused.value.problems == (
        "line 2: 'not-an-address' is not an email address",
        "line 4: a@b.example is listed twice",
    )
    with pytest.raises(SequenceError, match="'email' column"):
        parse_contacts_csv("mail,name\na@b.example,A\n")


def test_one_body_gives_both_alternatives() -> None:
    assert bodies("<p>Dzień dobry,</p><p>oferta &amp; cennik</p>", None)[1] == (
        "Dzień dobry,\n\noferta & cennik"
    )
    assert bodies(None, "Hi <you>\n\nBye") == ("<p>Hi &lt;you&gt;</p><p>Bye</p>", "Hi <you>\n\nBye")
