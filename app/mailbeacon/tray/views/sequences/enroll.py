"""Contacts → "Add to sequence…": enrol the chosen contacts in a sequence the rep picks.

The same all-or-nothing enrolment as ``mailbeacon sequence enroll`` and the Sequences
window's CSV (``agent.followup.enrolment``): a contact lacking a field a step needs
is named and nobody is enrolled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtWidgets import QInputDialog, QWidget

from mailbeacon.agent.followup.enrolment import contact_row, enroll_rows
from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.records.model import Contact
from mailbeacon.core.language import ENGLISH, Language, in_language, mark
from mailbeacon.core.sequence_spec import SequenceError, TemplateLookup

# Asks which sequence (None: the rep cancelled).
ChooseSequence = Callable[[QWidget, list[str]], str | None]

NO_SEQUENCE = mark(
    "There is no sequence yet: open Sequences from the tray menu and create one "
    "(New from file…), then add contacts to it here."
)


@dataclass(frozen=True, slots=True)
class Enrolled:
    """What happened, in a sentence for the rep; ok False when nobody was enrolled."""

    ok: bool
    message: str


def choose_sequence_dialog(
    parent: QWidget, names: list[str], tr: Language = ENGLISH
) -> str | None:
    """A list of the sequences to choose from."""
    name, ok = QInputDialog.getItem(
        parent, tr.t("Add to sequence"), tr.t("Add the selected contacts to:"), names, 0, False
    )
    return name if ok and name else None


class SequenceEnroller:
    """Enrols contacts in a sequence; what the contacts window calls."""

    def __init__(
        self,
        store: Callable[[], FollowupStore],
        templates: TemplateLookup,
        *,
        choose: ChooseSequence | None = None,
        clock: Callable[[], float] = time.time,
        tr: Language = ENGLISH,
    ) -> None:
        self._tr = tr
        self._store = store
        self._templates = templates
        self._choose: ChooseSequence = choose or (
            lambda parent, names: choose_sequence_dialog(parent, names, tr)
        )
        self._clock = clock

    def __call__(self, parent: QWidget, contacts: Sequence[Contact]) -> Enrolled | None:
        """Ask which sequence, enrol them all or none; None when the rep cancelled."""
        store = self._store()
        names = [row.name for row in store.sequences()]
        tr = self._tr
        if not names:
            return Enrolled(False, tr.t(NO_SEQUENCE))
        name = self._choose(parent, names)
        if name is None:
            return None
        rows = [contact_row(c.email, c) for c in contacts]
        try:
            already = enroll_rows(store, name, rows, self._templates, self._clock())
        except SequenceError as exc:
            return Enrolled(False, tr.t("Nobody was enrolled: {problems}",
                                        problems="; ".join(in_language(p, tr)
                                                           for p in exc.problems[:5])))
        added = len(rows) - len(already)
        if already:
            return Enrolled(True, tr.n(
                "Added {count} contact to “{name}” ({already} already in it).",
                "Added {count} contacts to “{name}” ({already} already in it).",
                added, name=name, already=", ".join(already),
            ))
        return Enrolled(True, tr.n("Added {count} contact to “{name}”.",
                                   "Added {count} contacts to “{name}”.", added, name=name))
