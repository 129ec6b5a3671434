"""The Sequences window over a real follow-up store and real records: steps with their
opens, clicks and replies, who is at which step and when the next goes, pause and resume,
removing a contact (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pytestqt.qtbot import QtBot

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.events import EventType
from mailbeacon.tray.views.sequences.window import SequencesWindow
from tests.helpers.records import event, sent_email

WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp()
SOURCE = """
name = "q2"
from = "anna@rep.example"
[[step]]
subject = "Oferta dla {company}"
text = "a"
[[step]]
delay = "2d"
text = "b"
[[step]]
delay = "3d"
text = "c"
"""


def _fill(store: FollowupStore, records: RecordsStore) -> None:
    assert store.add_sequence("q2", SOURCE, NOW)
    store.enroll("q2", [("alicja@client.example", {}), ("ewa@client.example", {})], NOW)
    alicja, ewa = store.enrollments("q2")
    for enrollment, steps in ((alicja, 1), (ewa, 2)):
        for step in range(steps):
            email_id = records.record_sent(sent_email(enrollment.email))
            assert store.claim_step(enrollment.id, step, f"<{enrollment.id}.{step}@x>", "s", NOW)
            store.step_sent(enrollment.id, step, email_id, NOW + 2 * 86400, False)
            records.add_event(event(EventType.OPEN, email_id=email_id, contact=enrollment.email))
    records.add_event(
        event(EventType.REPLY, email_id=store.steps(alicja.id)[0].email_id,
              contact="alicja@client.example", server_id=None, local_key="reply:1")
    )  # fmt: skip
    store.leave(alicja.id, "replied", "replied")


def test_the_window_shows_steps_contacts_and_pauses(
    qtbot: QtBot, qtmodeltester: Any, tmp_path: Path
) -> None:
    store = FollowupStore(tmp_path / "followup.db")
    records = RecordsStore(tmp_path / "records.db")
    _fill(store, records)
    window = SequencesWindow(store, records, zone=lambda: WARSAW, confirm=lambda _p, _q: True)
    qtbot.addWidget(window)
    window.show()
    qtmodeltester.check(window.steps_model)
    qtmodeltester.check(window.contacts_model)
    assert window.chooser.currentText() == "q2" and not window.empty_label.isVisible()
    rows = [
        [window.steps_model.index(r, c).data() for c in range(7)]
        for r in range(window.steps_model.rowCount())
    ]
    assert rows == [
        ["1", "at once", "Oferta dla {company}", "2", "2", "0", "1"],
        ["2", "2 days", "Re: Oferta dla {company}", "1", "1", "0", "0"],
        ["3", "3 days", "Re: Oferta dla {company}", "0", "0", "0", "0"],
    ]
    contacts = [
        [window.contacts_model.index(r, c).data() for c in range(4)]
        for r in range(window.contacts_model.rowCount())
    ]
    assert contacts == [
        ["alicja@client.example", "1 of 3", "replied: left", "—"],
        ["ewa@client.example", "2 of 3", "in the sequence", "Wed 9 Dec 10:00"],
    ]
    assert window.state_label.text() == "Running"
    window.toggle_pause()
    assert store.sequence("q2").state == "paused"  # type: ignore[union-attr]
    assert window.pause_button.text() == "&Resume"
    window.toggle_pause()
    assert store.sequence("q2").state == "active"  # type: ignore[union-attr]
    window.contacts_table.selectRow(1)
    window.remove_selected()
    assert store.enrollments("q2")[1].state == "removed"
    qtmodeltester.check(window.contacts_model)
    store.close()
    records.close()


def test_without_sequences_the_window_says_how_to_make_one(qtbot: QtBot, tmp_path: Path) -> None:
    store = FollowupStore(tmp_path / "followup.db")
    window = SequencesWindow(store, None)
    qtbot.addWidget(window)
    window.show()
    assert window.empty_label.isVisible()
    assert "mailbeacon sequence create" in window.empty_label.text()
    assert not window.pause_button.isEnabled()
    store.close()


def test_a_sequence_made_and_filled_from_the_tray_is_checked_whole(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = FollowupStore(tmp_path / "followup.db")
    (tmp_path / "q2.toml").write_text(SOURCE.replace('text = "b"', 'text = "{product}"'))
    (tmp_path / "bad.csv").write_text(
        "email,name,company,product\na@x.example,Ala,A SA,\nb@x.example,Bo,,cranes\n"
    )
    (tmp_path / "good.csv").write_text(
        "email,name,company,product\na@x.example,Ala,A SA,cranes\nb@x.example,Bo,B SA,cranes\n"
    )
    chosen: list[str] = []
    window = SequencesWindow(
        store, None, zone=lambda: WARSAW, clock=lambda: NOW,
        choose_file=lambda _parent, _title, _filters: chosen.pop(0),
    )  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    chosen.append(str(tmp_path / "q2.toml"))
    window.new_from_file()
    assert window.chooser.currentText() == "q2" and "3 steps" in window.status.text()
    chosen.append(str(tmp_path / "q2.toml"))
    window.new_from_file()
    assert "exists already" in window.status.text()
    chosen.append(str(tmp_path / "bad.csv"))
    window.enroll_from_csv()
    assert window.status.text() == (
        "Nobody was enrolled:\n• line 2 (a@x.example): no value for {product}\n"
        "• line 3 (b@x.example): no value for {company}"
    )
    assert store.enrollments("q2") == []
    chosen.append(str(tmp_path / "good.csv"))
    window.enroll_from_csv()
    assert window.status.text() == "Enrolled 2 contacts."
    assert window.contacts_model.rowCount() == 2
    assert window.contacts_model.index(0, 3).data() == "Mon 7 Dec 10:00"
    store.close()
