"""Track and Log for one message under the team's policy: the account switch beats the
message's own control (header or BCC), enforced click tracking off beats the rep's
setting; Log is never the policy's business here."""

from __future__ import annotations

import pytest

from mailbeacon.agent.sending.accept import Decision, decide
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.policy import TeamPolicy

OFF = TeamPolicy().with_item("tracking.enabled", "false", enforce=True)
NO_CLICKS = TeamPolicy().with_item("tracking.clicks", "false", enforce=True)


def message(track: bool | None, opens: bool | None = None) -> IncomingMessage:
    return IncomingMessage("rep@example.net", ("a@client.example",), b"", track, True, opens)


@pytest.mark.parametrize("track", [None, True, False])
@pytest.mark.parametrize("opens", [None, True, False])
def test_tracking_off_for_the_account_wins_over_the_message_and_the_rep(
    track: bool | None, opens: bool | None
) -> None:
    decision = decide(message(track, opens), Settings(), OFF)
    assert not decision.track
    assert decision.log  # the message asked for Log; the policy leaves it be


def test_clicks_enforced_off_leaves_the_pixel_and_rewrites_no_link() -> None:
    assert decide(message(True), Settings(), NO_CLICKS) == Decision(True, True, True, False)
    # Clicks only, with clicks not allowed: nothing is left to track.
    assert not decide(message(True, opens=False), Settings(), NO_CLICKS).track


def test_without_a_policy_the_message_and_the_rep_decide_as_before() -> None:
    assert decide(message(True), Settings(), TeamPolicy()) == decide(message(True), Settings())
