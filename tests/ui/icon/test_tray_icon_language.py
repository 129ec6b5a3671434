"""The tray's tooltip in the rep's language (issue 19): the agent's problems (the IMAP
watcher, the Sent cleanup, the outgoing server) and its detail line arrive as English
phrases; the tooltip says them in Polish."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from mailbeacon.agent.mailbox.watch import ImapState, ImapStatus
from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState
from mailbeacon.agent.runtime import NO_UPSTREAM
from mailbeacon.agent.sending.relay import RelayStartError
from mailbeacon.core.language import Language, Phrase, mark
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.icon.tray_icon import TrayIcon
from tests.helpers.tray import RecordingNotifier


def test_the_agents_problems_are_in_polish_in_the_tooltip(qtbot: QtBot, icons: IconSet) -> None:
    imap = ImapStatus(ImapState.UNREACHABLE, "the mail server said: NO [UNAVAILABLE] later")
    icon = TrayIcon(icons, tr=Language.load("pl"))
    problems = (NO_UPSTREAM, imap.problem or "", "a server's own words")
    icon.show_status(AgentStatus(ConnectionState.CONNECTED, problems=problems))
    lines = icon.tooltip_text().splitlines()
    assert "Odpowiedzi nie są obserwowane: the mail server said: NO [UNAVAILABLE] later" in lines
    assert any(line.startswith("Nie ustawiono serwera poczty wychodzącej") for line in lines)
    assert "a server's own words" in lines  # as it came
    icon.set_language(Language.load("en"))
    assert NO_UPSTREAM in icon.tooltip_text().splitlines()


def test_why_the_agent_stopped_is_told_in_polish(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons)
    app.set_language(Language.load("pl"))
    notifier = RecordingNotifier()
    app.set_notifier(notifier)
    busy = Phrase(
        mark(
            "The relay cannot listen on {where}: port {port} is already in use. Choose "
            "another port with `mailbeacon config set relay.port PORT` (or "
            "--smtp-listen HOST:PORT) and point the mail client at it."
        ),
        where="127.0.0.1:2525",
        port=2525,
    )
    app.on_agent_exited(RelayStartError(busy))
    [told] = notifier.shown
    assert told.body.startswith(
        "MailBeacon nie śledzi wiadomości: Przekaźnik nie może nasłuchiwać na 127.0.0.1:2525: "
        "port 2525 jest już zajęty."
    )
    app.on_agent_exited(RuntimeError("records store is locked"))  # not ours: as it came
    assert notifier.shown[-1].body.endswith("records store is locked")
