"""The compose window under a team policy with tracking off for the account: Track is
unticked and locked, and the email that goes is untracked even if the box were ticked
(the sender, the agent's, decides)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Sender
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.core.urls import TrackingUrls
from mailbeacon.tray.views.compose.window import ComposeDefaults
from tests.helpers.smtp import SmtpSink
from tests.ui.views.test_compose import (
    DEFAULTS,
    ENROLLMENT,
    WAIT_MS,
    Agent,
    LoopThread,
    make_window,
    write,
)

OFF = TeamPolicy().with_item("tracking.enabled", "false", enforce=True)


@pytest.fixture
def team_agent(tmp_path: Path) -> Iterator[Agent]:
    loop = LoopThread()
    with SmtpSink() as sink, RecordsStore(tmp_path / "records.db") as store:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
        outbox = Outbox(tmp_path / "outbox", upstream)
        loop.run(outbox.start())
        settings = Settings()
        sender = Sender(
            store, outbox, TrackingUrls(ENROLLMENT), lambda: settings, policy=lambda: OFF
        )
        try:
            yield Agent(sink, store, loop, sender, [])
        finally:
            loop.run(outbox.stop())
            loop.close()


def test_with_tracking_off_for_the_account_track_is_locked_and_nothing_is_tracked(
    qtbot: QtBot, team_agent: Agent
) -> None:
    settings = Settings()
    defaults = ComposeDefaults.from_settings(settings, DEFAULTS.sender, OFF.tracking_allowed)
    assert not defaults.track and not defaults.tracking_allowed
    window = make_window(qtbot, team_agent.send, defaults=defaults)
    assert not window.track_box.isChecked() and not window.track_box.isEnabled()
    assert "Set by your team" in window.track_box.toolTip()
    write(window)
    window.track_box.setChecked(True)  # however it got ticked, the agent decides
    with qtbot.waitSignal(window.sent, timeout=WAIT_MS):
        window.send_button.click()
    assert not window.track_box.isEnabled()  # still locked after sending
    (got,) = team_agent.sink.wait_for(1, timeout=WAIT_MS / 1000)
    assert b"/o/" not in got.data and b"/c/" not in got.data
    allowed = replace(defaults, tracking_allowed=True, track=True)
    assert make_window(qtbot, team_agent.send, defaults=allowed).track_box.isEnabled()
