"""The first-run step "How will your recipients reach tracking?" (issue 20).

Opens and clicks are only seen when the recipient's mail client can load the
tracking address. The rep says how that will be: a team's tracking server (the
team link, an enrollment key ``mbk1_…``, saved as Settings → Tracking server
saves ``server.enrollment``: the key in the keyring, ``server.url`` from it and
``server.mode = remote``), a server of their own (a short guide, then back with its
team link), or only this computer (the embedded server stays, and the step says
what that means). The rep may skip it; Settings holds the same choice later.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import ENGLISH, Language, in_language, mark
from mailbeacon.core.profile import Profile
from mailbeacon.tray.views.labels import ERROR_STYLE, OK_STYLE, plain_label
from mailbeacon.tray.views.settings.saving import (
    Refused,
    checked_secrets,
    checked_settings,
    write_all,
)
from mailbeacon.tray.views.settings.wording import BAD_TEAM_LINK

TEAM = "team"
OWN = "own"
LOCAL = "local"

QUESTION = mark("How will your recipients reach tracking?")
CHOICES = {
    TEAM: mark("My team has a tracking server"),
    OWN: mark("My own server"),
    LOCAL: mark("Only this computer, to try MailBeacon"),
}
TEAM_HELP = mark("Paste the team link your administrator sent you. It starts with mbk1_.")
OWN_GUIDE = mark(
    "Run the MailBeacon server container (in packaging/server/) on a small always-on "
    "host with a domain of its own, such as track.yourcompany.com, and https. "
    "packaging/OPERATORS.md walks through it. Then come back here with its team link."
)
LOCAL_NOTE = mark(
    "MailBeacon keeps its tracking on this computer. Opens and clicks are then only "
    "seen when your emails are read on this computer: your recipients elsewhere cannot "
    "reach it. Choose a tracking server in Settings whenever you are ready."
)
NO_LINK = mark("Paste the team link first, or choose another answer.")
SAVED = mark("Saved: MailBeacon now counts opens on {url}.")

SaveTeamLink = Callable[[str], None]


def team_link_saver(
    profile: Profile, after: Callable[[], None] = lambda: None, tr: Language = ENGLISH
) -> SaveTeamLink:
    """Saves a team link for ``profile`` as Settings → Tracking server does, then calls
    ``after`` (the agent restarts). Raises ``Refused`` with words for the rep."""

    def save(link: str) -> None:
        values, errors = checked_secrets({"server.enrollment": link})
        if errors or not values:
            raise Refused(tr.t(errors.get("server.enrollment", BAD_TEAM_LINK)))
        enrollment = Enrollment.decode(link.strip())
        settings = Settings.load_or_default(profile.config_file)
        trial, problems = checked_settings(
            settings, {"server.url": enrollment.server_url, "server.mode": "remote"}
        )
        if problems:
            raise Refused(" ".join(in_language(p, tr) for p in problems.values()))
        secrets = SecretStore(profile.keyring_service, dict(os.environ))
        write_all(secrets, lambda new: new.save(profile.config_file), trial, values, tr)
        after()

    return save


class ReachStep(QWidget):
    """The question, its three answers and what each means.

    Signals: ``completed(str choice)`` once the rep is done (``team``, ``own``,
    ``local``; ``""`` when skipped); ``contentChanged()`` when it grew or shrank. A
    team link is saved (through ``save``) before ``completed``; one that is not a
    team link is refused with a sentence, and nothing is saved.
    """

    completed = Signal(str)
    contentChanged = Signal()

    def __init__(
        self, save: SaveTeamLink, parent: QWidget | None = None, tr: Language = ENGLISH
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self._save = save
        self.saved_url: str | None = None

        title = QLabel(f"<b>{tr.t(QUESTION)}</b>")
        intro = plain_label(
            tr.t("Opens and clicks are seen when your recipients' mail can reach "
                 "MailBeacon's tracking server."),
            wrap=True,
        )

        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        for key, text in CHOICES.items():
            button = QRadioButton(tr.t(text))
            button.setObjectName(key)
            self.group.addButton(button)
            self.buttons[key] = button
            button.toggled.connect(self._show_choice)

        self.link_edit = QLineEdit()
        self.link_edit.setPlaceholderText("mbk1_…")
        self.link_edit.setMinimumWidth(360)
        self.link_edit.textChanged.connect(lambda _text: self._say(""))
        self.team_box = QWidget()
        team = QVBoxLayout(self.team_box)
        team.setContentsMargins(24, 0, 0, 0)
        team.addWidget(plain_label(tr.t(TEAM_HELP), wrap=True))
        team.addWidget(self.link_edit)
        self.own_label = plain_label(tr.t(OWN_GUIDE), wrap=True)
        self.own_label.setContentsMargins(24, 0, 0, 0)
        self.local_label = plain_label(tr.t(LOCAL_NOTE), wrap=True)
        self.local_label.setContentsMargins(24, 0, 0, 0)
        self.details = {TEAM: self.team_box, OWN: self.own_label, LOCAL: self.local_label}

        self.message = plain_label(wrap=True)

        self.skip_button = QPushButton(tr.t("&Skip"))
        self.skip_button.setToolTip(tr.t("Decide later, in Settings → Tracking server"))
        self.skip_button.clicked.connect(lambda: self.completed.emit(""))
        self.continue_button = QPushButton(tr.t("&Continue"))
        self.continue_button.setDefault(True)
        self.continue_button.clicked.connect(self.go_on)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(intro)
        for key, button in self.buttons.items():
            layout.addWidget(button)
            layout.addWidget(self.details[key])
        layout.addWidget(self.message)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.skip_button)
        row.addWidget(self.continue_button)
        layout.addLayout(row)
        self._show_choice()

    def choice(self) -> str:
        """The answer chosen, or ``""``."""
        return next((key for key, button in self.buttons.items() if button.isChecked()), "")

    def choose(self, key: str) -> None:
        """Pick an answer (as a click on it does)."""
        self.buttons[key].setChecked(True)

    def go_on(self) -> None:
        """Continue: a team link is checked and saved first; a bad one stops here."""
        key = self.choice()
        if not key:
            self.completed.emit("")
            return
        if key == TEAM and not self._save_link():
            return
        self.completed.emit(key)

    def _save_link(self) -> bool:
        text = self.link_edit.text().strip()
        if not text:
            self._say(self._tr.t(NO_LINK), error=True)
            return False
        try:
            url = Enrollment.decode(text).server_url
        except ValueError:
            self._say(self._tr.t(BAD_TEAM_LINK), error=True)
            return False
        try:
            self._save(text)
        except Refused as exc:
            self._say(str(exc), error=True)
            return False
        self.saved_url = url
        self._say(self._tr.t(SAVED, url=url))
        return True

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.message.setStyleSheet(ERROR_STYLE if error else OK_STYLE)

    def _show_choice(self, *_: object) -> None:
        chosen = self.choice()
        for key, widget in self.details.items():
            widget.setVisible(key == chosen)
        self.continue_button.setEnabled(bool(chosen))
        self._say("")
        self.contentChanged.emit()
