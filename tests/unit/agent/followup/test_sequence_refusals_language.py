"""Why a sequence cannot be created or joined, in the rep's language (issue 19): the
agent's own refusals are phrases (English for `mailbeacon sequence`), said in Polish by
the sequences window."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon.agent.followup.enrolment import enroll_rows
from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.core.language import Language, in_language
from mailbeacon.core.sequence_spec import SequenceError


def test_an_unknown_sequence_is_refused_in_polish(tmp_path: Path) -> None:
    store = FollowupStore(tmp_path / "followup.db")
    with pytest.raises(SequenceError) as refused:
        enroll_rows(store, "q1-oferta", [], lambda _name: None, 0.0)
    [problem] = refused.value.problems
    assert problem == "there is no sequence 'q1-oferta'"
    assert in_language(problem, Language.load("pl")) == "nie ma sekwencji 'q1-oferta'"
