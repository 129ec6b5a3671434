"""What the tray's menu and notifications open for one profile, built from the windows
that exist. Imported by ``commands.py`` only when the desktop app starts."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from mailbeacon.agent.followup.sequences import template_lookup
from mailbeacon.agent.followup.store import FollowupStore, ScheduledMail
from mailbeacon.agent.notifications.model import Notification, NotificationType
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.submit import RelaySubmitter
from mailbeacon.agent.settings.mail_urls import parse_host_port
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import ConfigError, Settings
from mailbeacon.agent.settings.team import TeamPolicyFile, overlay
from mailbeacon.agent.status import Reachable, SendingState, StatusReport
from mailbeacon.core.extract import extract_for_log, header_value
from mailbeacon.core.language import ENGLISH, Language, in_language, mark, said
from mailbeacon.core.profile import Profile
from mailbeacon.tray.desktop.autostart import (
    AutostartError,
    apply_autostart,
    exec_command_for,
    xdg_config_home,
)
from mailbeacon.tray.icon.menu import Windows
from mailbeacon.tray.icon.pause import PauseState
from mailbeacon.tray.views.account.flow import AccountDialog, AccountFlow
from mailbeacon.tray.views.account.runner import AccountRunner, ProfileSteps
from mailbeacon.tray.views.activity.window import ActivityWindow
from mailbeacon.tray.views.compose.opener import ComposeOpener
from mailbeacon.tray.views.compose.send_job import Send
from mailbeacon.tray.views.compose.templates import TemplateStore
from mailbeacon.tray.views.compose.window import ComposeDefaults, ComposeWindow, SentEmail
from mailbeacon.tray.views.contacts.model import ContactsModel
from mailbeacon.tray.views.contacts.window import ContactsWindow
from mailbeacon.tray.views.email.actions import ComposeFill
from mailbeacon.tray.views.email.window import EmailWindow, EmailWindows, fill_compose
from mailbeacon.tray.views.first_run import MailClientSettings
from mailbeacon.tray.views.reach import ReachStep, team_link_saver
from mailbeacon.tray.views.reminder import FollowUpFill, ReminderWindow, reminder_actions
from mailbeacon.tray.views.reports.window import ReportsWindow
from mailbeacon.tray.views.scheduled.window import ScheduledWindow
from mailbeacon.tray.views.sequences.enroll import SequenceEnroller
from mailbeacon.tray.views.sequences.window import SequencesWindow
from mailbeacon.tray.views.settings.dialog import SettingsDialog

log = logging.getLogger(__name__)

FIRST_RUN_MARKER = "first-run-shown"
HANDED_OVER = mark("Handed to MailBeacon")
GOES_OUT = mark("It goes out as soon as your outgoing mail server answers.")


def warn_dialog(message: str) -> None:
    """Tell the rep in a warning box (what a failure to open or save shows)."""
    QMessageBox.warning(None, "MailBeacon", message)


class LazyWindow:
    """A window made on first use, then shown and raised on each ``open``."""

    def __init__(
        self,
        title: str,
        factory: Callable[[], QWidget],
        tr: Callable[[], Language] = lambda: ENGLISH,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._title = title
        self._tr = tr
        self._warn = warn or warn_dialog
        self._factory = factory
        self.window: QWidget | None = None

    def open(self) -> None:
        """Show the window (making it first if needed)."""
        if self.window is None:
            try:
                self.window = self._factory()
            except Exception as exc:  # a window that cannot open says why, never crashes
                log.exception("cannot open %s", self._title)
                message = self._tr().t("Cannot open {window}: {error}",
                                       window=self._tr().t(self._title), error=exc)
                self._warn(message)
                return
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def forget(self) -> None:
        """Make the window afresh next time (a dialog reads current settings on open)."""
        if self.window is not None:
            self.window.deleteLater()
            self.window = None


class ProfileWindows:
    """The windows of one profile, each over its own records store connection."""

    def __init__(
        self,
        profile: Profile,
        restart_agent: Callable[[], None],
        submit: Send,
        config_home: Path | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        # How a failure reaches the rep: a dialog; tests pass a list's append instead of
        # a modal box that would wait for a click no one makes.
        self._warn = warn or warn_dialog
        self._profile = profile
        self._config_home = config_home or xdg_config_home()
        self._restart_agent = restart_agent
        self._submit = submit
        self._store: RecordsStore | None = None
        self._contacts: ContactsWindow | None = None
        words = self._words  # the language as it is when a window fails to open

        def lazy(title: str, factory: Callable[[], QWidget]) -> LazyWindow:
            return LazyWindow(title, factory, words, self._warn)

        self.activity = lazy(mark("the activity feed"), self._make_activity)
        self.contacts = lazy(mark("the contacts"), self._make_contacts)
        self.reports = lazy(mark("the reports"), self._make_reports)
        self.settings = lazy(mark("the settings"), self._make_settings)
        self.account = lazy(mark("your email account"), self._make_account)
        # Follow-up (issue 17): its own store, which the running agent reads on each pass.
        self._followup: FollowupStore | None = None
        self.scheduled = lazy(mark("the scheduled emails"), self._make_scheduled)
        self.sequences = lazy(mark("the sequences"), self._make_sequences)
        self.reminders: list[ReminderWindow] = []
        # What the account window's last page tells the rep to type into the mail client.
        # (the keyring's; a launch with its own relay password sets this to that one).
        self.relay_password: Callable[[], str | None] = relay_password_source(None, profile)
        self._compose = ComposeOpener(self._make_compose)
        # Set once the tray is up (commands.py): where a send's confirmation shows, and
        # the agent's latest status report (None while it is not known).
        self.notify: Callable[[str, str], None] | None = None
        self.agent_status: Callable[[], StatusReport | None] = lambda: None
        self._emails: EmailWindows | None = None
        # The rep's language (app.language, else the system's): a saved change applies to
        # the windows at once (each is made afresh) and to the tray through on_language.
        self.language = Language.load(self._settings().app.language, os.environ)
        self.on_language: Callable[[Language], None] = lambda _language: None

    def event_added(self, *_event: object) -> None:
        """The agent stored something new: the open windows read it again (issue 20)."""
        for lazy in (self.activity, self.contacts, self.reports):
            refresh = getattr(lazy.window, "event_added", None)
            if refresh is not None:
                refresh()
        if self._emails is not None:
            self._emails.event_added()

    def close(self) -> None:
        """At quit: stop every window's background reads, then close the store."""
        for lazy in (self.activity, self.contacts, self.reports):
            window = lazy.window
            shutdown = getattr(window, "shutdown", None)
            if shutdown is not None:
                shutdown(2000)
            lazy.forget()
        if self._emails is not None:
            self._emails.shutdown(2000)
        for compose in list(self._compose.windows):
            compose.shutdown(2000)
            compose.deleteLater()
        self._compose.windows.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
        self.scheduled.forget()
        self.sequences.forget()
        if self._followup is not None:
            self._followup.close()
            self._followup = None

    def store(self) -> RecordsStore:
        """The records store the windows read (opened on first use)."""
        if self._store is None:
            self._store = RecordsStore.for_profile(self._profile)
        return self._store

    def menu(self) -> Windows:
        """The tray menu's openers."""
        return Windows(
            compose=self.compose,
            activity=self.activity.open,
            contacts=self.contacts.open,
            reports=self.reports.open,
            settings=self.settings.open,
            scheduled=self.scheduled.open,
            sequences=self.sequences.open,
        )

    def compose(self) -> None:
        """A new compose window."""
        self._compose()

    def open_record(self, notification: Notification) -> None:
        """A notification was clicked: exactly one window. The email's own view when the
        notification names an email, else the contact's record, else the activity feed."""
        if notification.type == NotificationType.SIGN_IN:
            self.account.open()  # "Sign in again": the flow's button opens the browser
        elif notification.type == NotificationType.REMINDER:
            self.open_reminder(notification)
        elif notification.email_id is not None:
            self.open_email(notification.email_id)
        elif notification.recipient:
            self.open_contact(notification.recipient)
        else:
            self.activity.open()

    def open_contact(self, email: str) -> None:
        """One contact's record page, alone: the contacts list is made (it keeps the
        records and refreshes them) but not shown (issue 20)."""
        if self._contacts is None:
            try:
                self.contacts.window = self._make_contacts()
            except Exception as exc:  # as LazyWindow.open: say why, never crash
                log.exception("cannot open the contact's record")
                self._warn(self.language.t("Cannot open the record: {error}", error=exc))
                return
        assert self._contacts is not None
        self._contacts.open_record(email)

    def open_email(self, email_id: int) -> None:
        """One sent email's own view (issue 20): recipients, timeline, follow-ups."""
        # Made here on first use: the windows live in their opener, which stops their
        # reads when the application quits.
        emails = self._emails
        if emails is None:
            emails = self._emails = EmailWindows(
                lambda key: EmailWindow(
                    self.store(), key,
                    compose=lambda fill: fill_compose(self._compose(), fill),
                    open_contact=self.open_contact,
                    tr=self.language,
                )
            )
        emails.open(email_id)

    def _settings(self) -> Settings:
        return Settings.load_or_default(self._profile.config_file)

    def followup(self) -> FollowupStore:
        """The follow-up store the Scheduled and Sequences windows change."""
        if self._followup is None:
            self._followup = FollowupStore.in_dir(self._profile.data_dir)
        return self._followup

    def _make_scheduled(self) -> QWidget:
        return ScheduledWindow(
            self.followup(), clock=time.time, edit=self._edit_scheduled, tr=self.language
        )

    def _make_sequences(self) -> QWidget:
        return SequencesWindow(
            self.followup(), self.store(), settings=self._settings,
            templates=template_lookup(self._profile.config_dir / "templates.json"),
            tr=self.language,
        )

    def _edit_scheduled(self, item: ScheduledMail, data: bytes) -> None:
        copy = extract_for_log(data)
        cc = header_value(data, "Cc") or ""
        fill_compose(self._compose(), ComposeFill(
            to=tuple(a for a in item.to_text.split(", ") if a and a not in cc),
            cc=tuple(a.strip() for a in cc.split(",") if a.strip()),
            subject=item.subject, html=copy.html, text=copy.text,
            note=self.language.t(
                "Taken out of the schedule: send it, or choose Send later… again."
            ),
        ))  # fmt: skip

    def open_reminder(self, notification: Notification) -> None:
        """A reminder's own small window: Open record, Write follow-up, Snooze."""
        window = ReminderWindow(
            notification, self.followup(), self.store(), clock=time.time,
            open_email=self.open_email, write=self._write_follow_up, tr=self.language,
        )  # fmt: skip
        self.reminders = [w for w in self.reminders if w.isVisible()] + [window]
        window.show()
        window.raise_()

    def notification_actions(
        self, notification: Notification
    ) -> list[tuple[str, Callable[[], None]]]:
        """A reminder's buttons in the notification itself (where the desktop draws them)."""
        if notification.type != NotificationType.REMINDER:
            return []
        return reminder_actions(
            notification, self.followup(), self.store(), clock=time.time,
            open_email=self.open_email, write=self._write_follow_up, tr=self.language,
        )  # fmt: skip

    def _write_follow_up(self, reply: FollowUpFill) -> None:
        window = fill_compose(self._compose(), reply.fill)
        window.reply_thread = (reply.in_reply_to, reply.references)

    def _make_activity(self) -> QWidget:
        window = ActivityWindow(self.store(), tr=self.language)
        window.openRecord.connect(
            lambda _email_id, contact: self.open_contact(contact) if contact else None
        )
        return window

    def _make_contacts(self) -> QWidget:
        enroller = SequenceEnroller(
            self.followup, template_lookup(self._profile.config_dir / "templates.json"),
            tr=self.language,
        )
        self._contacts = ContactsWindow(
            self.store(), add_to_sequence=enroller, tr=self.language
        )
        return self._contacts

    def _make_reports(self) -> QWidget:
        return ReportsWindow(self.store(), tr=self.language)

    def _make_compose(self) -> ComposeWindow:
        settings = self._settings()
        team = TeamPolicyFile.load(self._profile.config_dir, self._profile.config_file)
        store = self.store()
        sender = settings.upstream.user if "@" in settings.upstream.user else ""
        window = ComposeWindow(
            self._submit,
            defaults=ComposeDefaults.from_settings(
                overlay(settings, team.policy), sender, team.policy.tracking_allowed
            ),
            contacts=ContactsModel(store),
            lookup_contact=store.contact,
            templates=TemplateStore.for_profile(self._profile, self.language),
            tr=self.language,
        )
        window.handedOver.connect(self._confirm_sent)
        report = self.agent_status()
        if report is not None and report.tracking.reachable == Reachable.NO:
            window.set_reach_note(self.language.t(
                "Your recipients cannot reach tracking, so their opens and clicks of this "
                "email will not be seen. {detail}", detail=report.tracking.detail,
            ).strip())
        return window

    def _confirm_sent(self, sent: SentEmail) -> None:
        """The compose window's email was taken: the tray says so, truthfully."""
        if self.notify is not None:
            self.notify(*send_confirmation(sent, self.agent_status(), self.language))

    def _make_settings(self) -> QWidget:
        def save(new: Settings) -> None:
            new.save(self._profile.config_file)
            self._apply_autostart(new.app.autostart)
            self._restart_agent()
            self._language_saved(new.app.language)

        secrets = SecretStore(self._profile.keyring_service, dict(os.environ))
        team = TeamPolicyFile.load(self._profile.config_dir, self._profile.config_file).policy
        dialog = SettingsDialog(
            self._settings(), secrets, save, open_account=self.account.open, team=team,
            tr=self.language,
        )
        dialog.finished.connect(lambda _code: self.settings.forget())
        return dialog

    def account_flow(self, mail_client: MailClientSettings) -> AccountFlow:
        """The account flow for the first-run dialog (``FirstRunDialog(account=...)``)."""
        settings = self._settings()
        flow = AccountFlow(
            AccountRunner(ProfileSteps(self._profile, language=self.language), tr=self.language),
            mail_client=mail_client,
            name=settings.account.name,
            email=settings.account.email,
            tr=self.language,
        )
        flow.completed.connect(lambda _result: self._account_saved())
        return flow

    def reach_step(self) -> ReachStep:
        """The first-run step "How will your recipients reach tracking?"; a saved team
        link restarts the agent, which then counts opens on that server."""
        return ReachStep(
            team_link_saver(self._profile, self._restart_agent, self.language), tr=self.language
        )

    def _make_account(self) -> QWidget:
        settings = self._settings()
        relay = settings.relay
        dialog = AccountDialog(
            AccountRunner(ProfileSteps(self._profile, language=self.language), tr=self.language),
            mail_client=MailClientSettings(
                relay.host, relay.port, relay.user, self.relay_password()
            ),
            name=settings.account.name,
            email=settings.account.email,
            tr=self.language,
        )
        dialog.accepted.connect(self._account_saved)
        dialog.finished.connect(lambda _code: self.account.forget())
        return dialog

    def _words(self) -> Language:
        return self.language

    def _language_saved(self, setting: str) -> None:
        """The rep chose a language: windows are made afresh in it (an open one opens
        again), the tray follows."""
        language = Language.load(setting, os.environ)
        if language.code == self.language.code:
            return
        self.language = language
        for lazy in (self.activity, self.contacts, self.reports, self.scheduled, self.sequences):
            window = lazy.window
            if window is None:
                continue
            shown = window.isVisible()
            window.hide()
            shutdown = getattr(window, "shutdown", None)
            if shutdown is not None:
                shutdown()
            lazy.forget()
            if shown:
                lazy.open()
        if self._emails is not None:  # an email's view is made afresh when next opened
            self._emails.shutdown(2000)
            self._emails = None
        self.on_language(language)

    def _account_saved(self) -> None:
        """The flow saved the account: the agent takes it up; an open Settings shows it."""
        self._restart_agent()
        if isinstance(self.settings.window, SettingsDialog):
            self.settings.window.account_saved(self._settings())

    def _apply_autostart(self, enabled: bool) -> None:
        own = None if self._profile == Profile.default() else self._profile.config_dir.parent
        try:
            apply_autostart(enabled, self._config_home, exec_command_for(own), self.language)
        except AutostartError as exc:
            log.warning("autostart: %s", exc)
            self._warn(self.language.t("Start at login could not be set: {error}", error=exc))


def send_confirmation(
    sent: SentEmail, report: StatusReport | None, tr: Language = ENGLISH
) -> tuple[str, str]:
    """(title, body) of the notification for an email the relay took.

    "Queued: …" while the agent says sending is not set up or failing (its status,
    ``agent/status.py``, decides), "Sent, tracked" or "Sent" while it works, and no
    more than "Handed to MailBeacon" while its status is not known.
    """
    subject = sent.subject or tr.t("(no subject)")
    if sent.send_at is not None:
        when = tr.t("{weekday} {date} {time}", weekday=tr.weekday(sent.send_at),
                    date=tr.short_day(sent.send_at), time=tr.clock(sent.send_at))
        return tr.t("Scheduled for {when}", when=when), subject
    if report is None:
        return tr.t(HANDED_OVER), tr.t(GOES_OUT)
    sending = report.sending
    if sending.state == SendingState.NOT_CONFIGURED:
        return tr.t("Queued: sending is not set up"), sending.detail
    if sending.state == SendingState.FAILING:
        return tr.t("Queued: sending is failing"), sending.detail
    return (tr.t("Sent, tracked") if sent.tracked else tr.t("Sent")), subject


def keyring_problem(profile: Profile) -> str | None:
    """Why the OS keyring cannot hold this profile's secrets, or None when it can."""
    try:
        SecretStore(profile.keyring_service).get(Secret.RELAY_PASSWORD)
    except SecretStoreUnavailable as exc:
        return said(exc)  # a phrase: the dialog says it in the rep's language
    return None


def profile_language(profile: Profile) -> Language:
    """The rep's language before the tray starts (``app.language``, else the system's)."""
    try:
        setting = Settings.load_or_default(profile.config_file).app.language
    except ConfigError as exc:  # the tray reports a bad settings file itself
        log.info("language: the settings file cannot be read (%s)", exc)
        setting = "system"
    return Language.load(setting, os.environ)


def ask_session_only(problem: str, tr: Language = ENGLISH) -> bool:
    """Ask the rep whether to run with secrets kept in memory for this session only."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        tr.t("MailBeacon: no keyring"),
        in_language(problem, tr),
        QMessageBox.StandardButton.NoButton,
    )
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setInformativeText(
        tr.t(
            "MailBeacon can run for this session with its passwords kept in memory only: "
            "your mail client then needs the new relay password shown next. Nothing is "
            "written to a file."
        )
    )
    session = box.addButton(tr.t("Run for this session"), QMessageBox.ButtonRole.AcceptRole)
    box.addButton(tr.t("Quit"), QMessageBox.ButtonRole.RejectRole)
    box.exec()
    return box.clickedButton() is session


def saved_pause(profile: Profile) -> PauseState:
    """The pause as the settings hold it, saved back there whenever the rep changes it,
    so the agent (which reads ``notify.paused_until``) holds notifications too."""
    settings = Settings.load_or_default(profile.config_file)
    until = None
    if settings.notify.paused_until:
        until = datetime.fromisoformat(settings.notify.paused_until).timestamp()

    def save(new_until: float | None) -> None:
        current = Settings.load_or_default(profile.config_file)
        value = "" if new_until is None else datetime.fromtimestamp(new_until, UTC).isoformat()
        try:
            current.set("notify.paused_until", value)
            current.save(profile.config_file)
        except (OSError, ValueError) as exc:
            log.warning("could not save the pause: %s", exc)

    return PauseState(until=until, on_change=save)


def relay_submitter(
    profile: Profile, smtp_listen: str | None, password: Callable[[], str | None]
) -> RelaySubmitter:
    """How the compose window hands mail to the agent: through its relay."""
    settings = Settings.load_or_default(profile.config_file)
    host, port = settings.relay.host, settings.relay.port
    if smtp_listen:
        host, port = parse_host_port(smtp_listen, allow_zero=True)
    return RelaySubmitter(host, port, settings.relay.user, password)


def relay_password_source(given: str | None, profile: Profile) -> Callable[[], str | None]:
    """The relay password for the mail-client dialog: the command line's, else the keyring's."""

    def read() -> str | None:
        if given:
            return given
        try:
            return SecretStore(profile.keyring_service).get(Secret.RELAY_PASSWORD)
        except SecretStoreUnavailable as exc:
            log.warning("relay password unavailable: %s", exc)
            return None

    return read


def first_run_state(profile: Profile) -> tuple[bool, Callable[[], None]]:
    """Whether the mail-client dialog is still to be shown for ``profile``, and what
    records that it was (an empty marker file in the profile's config folder)."""
    marker = profile.config_dir / FIRST_RUN_MARKER

    def shown() -> None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError as exc:
            log.warning("cannot record that the first-run dialog was shown: %s", exc)

    return not marker.exists(), shown
