"""Contacts → "Add to sequence…": the selected contacts go into the sequence the rep
picks, with their name and company for its placeholders; a contact lacking a field a
step needs is named and nobody is enrolled (issue 17)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.contacts.window import ContactsWindow
from mailbeacon.tray.views.sequences.enroll import NO_SEQUENCE, SequenceEnroller
from tests.helpers.contacts import fill_records

WAIT_MS = 10_000
NOW = 1_800_000_000.0
NEEDS_COMPANY = """
name = "q2"
from = "anna@rep.example"
[[step]]
subject = "Oferta dla {company}"
text = "Dzień dobry"
[[step]]
delay = "2d"
text = "Przypomnienie"
"""


@pytest.fixture
def records(tmp_path: Path) -> Iterator[RecordsStore]:
    with RecordsStore(tmp_path / "records.db") as store:
        fill_records(store)  # Alicja Nowak (with a company) and bob@ (address only)
        yield store


@pytest.fixture
def followup(tmp_path: Path) -> Iterator[FollowupStore]:
    store = FollowupStore(tmp_path / "followup.db")
    yield store
    store.close()


class Chooser:
    """Stands for the rep's pick in the list of sequences."""

    def __init__(self, pick: str | None) -> None:
        self.pick = pick
        self.offered: list[str] = []

    def __call__(self, _parent: QWidget, names: list[str]) -> str | None:
        self.offered = names
        return self.pick


def window_with(
    qtbot: QtBot, records: RecordsStore, followup: FollowupStore, chooser: Chooser
) -> ContactsWindow:
    enroller = SequenceEnroller(lambda: followup, lambda _name: None, choose=chooser,
                                clock=lambda: NOW)  # fmt: skip
    window = ContactsWindow(records, add_to_sequence=enroller)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=WAIT_MS)
    return window


def select(window: ContactsWindow, *emails: str) -> None:
    selection = window.table.selectionModel()
    selection.clearSelection()
    for row in range(window.proxy.rowCount()):
        index = window.proxy.index(row, 0)
        if any(email in str(window.proxy.index(row, c).data())
               for c in range(window.proxy.columnCount()) for email in emails):  # fmt: skip
            selection.select(
                index,
                QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
            )


def test_selected_contacts_join_the_picked_sequence_with_their_fields(
    qtbot: QtBot, records: RecordsStore, followup: FollowupStore
) -> None:
    assert followup.add_sequence("q2", NEEDS_COMPANY, NOW)
    chooser = Chooser("q2")
    window = window_with(qtbot, records, followup, chooser)
    assert window.sequence_button.isVisible()
    assert not window.sequence_button.isEnabled()  # nothing selected yet

    select(window, "alice@example.com")
    assert window.sequence_button.isEnabled()
    window.sequence_button.click()

    assert chooser.offered == ["q2"]
    [enrolled] = followup.enrollments("q2")
    assert enrolled.email == "alice@example.com"
    assert enrolled.fields["name"] == "Alicja Nowak"
    assert enrolled.fields["company"] == "Client <i>Ltd</i>"
    assert enrolled.state == "active"
    assert window.note.isVisible()
    assert window.note.text() == "Added 1 contact to “q2”."


def test_a_contact_lacking_a_field_is_named_and_nobody_is_enrolled(
    qtbot: QtBot, records: RecordsStore, followup: FollowupStore
) -> None:
    assert followup.add_sequence("q2", NEEDS_COMPANY, NOW)
    window = window_with(qtbot, records, followup, Chooser("q2"))

    select(window, "alice@example.com", "bob@")
    assert len(window.selected_contacts()) == 2
    window.add_selected_to_sequence()

    assert followup.enrollments("q2") == []
    assert window.note.text().startswith("Nobody was enrolled:")
    assert "bob@" in window.note.text()
    assert "company" in window.note.text()


def test_with_no_sequence_yet_the_window_says_how_to_make_one(
    qtbot: QtBot, records: RecordsStore, followup: FollowupStore
) -> None:
    chooser = Chooser("never asked")
    window = window_with(qtbot, records, followup, chooser)
    select(window, "alice@example.com")

    window.add_selected_to_sequence()

    assert chooser.offered == []
    assert window.note.text() == NO_SEQUENCE


def test_a_cancelled_pick_enrols_nobody_and_says_nothing(
    qtbot: QtBot, records: RecordsStore, followup: FollowupStore
) -> None:
    assert followup.add_sequence("q2", NEEDS_COMPANY, NOW)
    window = window_with(qtbot, records, followup, Chooser(None))
    select(window, "alice@example.com")

    window.add_selected_to_sequence()

    assert followup.enrollments("q2") == []
    assert not window.note.isVisible()


def test_without_sequences_wired_there_is_no_button(
    qtbot: QtBot, records: RecordsStore
) -> None:
    window = ContactsWindow(records)
    qtbot.addWidget(window)
    window.show()
    assert not window.sequence_button.isVisible()
