"""A contact's lawful basis in the rep's language (issue 19): stored as its code (the
command line and exports read it), shown and chosen in Polish; a basis typed that is
none of the known ones is stored and shown as typed."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.language import Language
from mailbeacon.tray.views.contacts.model import Column, ContactsModel
from mailbeacon.tray.views.contacts.record import RecordView
from tests.helpers.contacts import fill_records

WAIT_MS = 10_000


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


def open_view(qtbot: QtBot, store: RecordsStore, pl: Language) -> RecordView:
    fill_records(store)
    view = RecordView(store, "alice@example.com", tr=pl)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.show()
    return view


def save(qtbot: QtBot, view: RecordView) -> None:
    with qtbot.waitSignal(view.saved, timeout=WAIT_MS):
        view.save_button.click()


def test_the_record_shows_and_stores_the_basis_by_its_code(
    qtbot: QtBot, store: RecordsStore, pl: Language
) -> None:
    view = open_view(qtbot, store, pl)
    assert view.basis_box.currentText() == "zgoda"
    assert not view.is_dirty()  # the Polish label is the stored code
    choices = [view.basis_box.itemText(i) for i in range(view.basis_box.count())]
    assert "uzasadniony interes" in choices and "legitimate-interest" not in choices
    view.basis_box.setCurrentText("uzasadniony interes")
    save(qtbot, view)
    contact = store.contact("alice@example.com")
    assert contact is not None and contact.lawful_basis == "legitimate-interest"
    view.basis_box.setCurrentText("umowa ramowa 2025")  # free text stays as typed
    save(qtbot, view)
    contact = store.contact("alice@example.com")
    assert contact is not None and contact.lawful_basis == "umowa ramowa 2025"


def test_the_contacts_list_shows_the_basis_in_polish(
    qtbot: QtBot, store: RecordsStore, pl: Language
) -> None:
    fill_records(store)
    model = ContactsModel(store, tr=pl)
    with qtbot.waitSignal(model.loaded, timeout=WAIT_MS):
        model.refresh()
    shown = {
        model.index(r, Column.EMAIL).data(): model.index(r, Column.LAWFUL_BASIS).data()
        for r in range(model.rowCount())
    }
    assert shown["alice@example.com"] == "zgoda"
    model.close()
