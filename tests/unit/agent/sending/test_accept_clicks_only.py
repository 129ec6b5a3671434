"""Clicks only at accept: the setting tracking.opens and the message's own say (rule 1)."""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.agent.sending.accept import Decision, decide
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings


@dataclass(frozen=True, slots=True)
class ClicksOnlyMessage(IncomingMessage):
    """What the relay hands over once it passes the control channel's ``opens``."""

    opens_override: bool | None = None


def incoming(track: bool | None = None, opens: bool | None = None) -> IncomingMessage:
    return ClicksOnlyMessage("rep@x.example", ("a@y.example",), b"Subject: s\r\n\r\nbody",
                             track, None, opens)


def test_opens_follow_the_setting_unless_the_message_says_clicks_only() -> None:
    settings = Settings()
    assert decide(incoming(), settings) == Decision(True, False, opens=True, clicks=True)
    settings.set("tracking.opens", "false")
    assert decide(incoming(), settings) == Decision(True, False, opens=False, clicks=True)
    settings.set("tracking.opens", "true")
    assert decide(incoming(opens=False), settings).opens is False


def test_clicks_only_tracks_clicks_even_with_click_tracking_off() -> None:
    settings = Settings()
    settings.set("tracking.clicks", "false")
    assert decide(incoming(), settings).clicks is False
    assert decide(incoming(opens=False), settings) == Decision(True, False, False, True)


def test_a_message_without_the_field_uses_the_setting() -> None:
    plain = IncomingMessage("rep@x.example", ("a@y.example",), b"Subject: s\r\n\r\nb", None, None)
    assert decide(plain, Settings()).opens is True
