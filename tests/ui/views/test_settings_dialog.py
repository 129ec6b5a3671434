"""The settings dialog: every setting has a widget; OK saves all of it or none of it;
secrets go to the keyring only; the test buttons report what a real server said."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import QDateTime, QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
)
from pytestqt.qtbot import QtBot

from mailbeacon.agent.mailbox.check import ImapCheck
from mailbeacon.agent.sending.check import UpstreamProbe, check_upstream
from mailbeacon.agent.settings.kinds import (
    BoolKind,
    ChoiceKind,
    FloatKind,
    IntKind,
    TimestampKind,
)
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import KEYS, SECRET_KEYS, Settings
from mailbeacon.agent.tracking.check import TrackingCheck, public_result
from mailbeacon.agent.tracking.reach import (
    ANSWER_STEP,
    NAME_STEP,
    TLS_STEP,
    CheckStep,
    Outcome,
    not_checked,
)
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.profile import Profile
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from mailbeacon.tray.views.settings.dialog import PER_RECIPIENT_TRADE_OFF, SettingsDialog
from mailbeacon.tray.views.settings.fields import MB, MB_KEYS, BoolField, ChoiceField, PauseField
from tests.helpers import dovecot as dv
from tests.helpers.fakes import MemoryKeyring
from tests.helpers.smtp import SmtpSink

WAIT_MS = 15_000
SERVICE = "mailbeacon-test"
ENROLLMENT = Enrollment("https://track.example.com", 7, "api-token-secret-xyz", b"k" * 32)


class Saver:
    """The caller's save: writes the real settings file and remembers what it got."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: list[Settings] = []

    def __call__(self, settings: Settings) -> None:
        settings.save(self.path)
        self.saved.append(settings)


@pytest.fixture
def saver(profile: Profile) -> Saver:
    return Saver(profile.config_file)


def make_dialog(qtbot: QtBot, saver: Saver, settings: Settings | None = None,
                **kwargs: object) -> SettingsDialog:
    dialog = SettingsDialog(settings or Settings(), SecretStore(SERVICE), saver, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def line(dialog: SettingsDialog, key: str) -> QLineEdit:
    widget = dialog.fields[key].widget
    assert isinstance(widget, QLineEdit)
    return widget


def error_of(dialog: SettingsDialog, key: str) -> QLabel:
    return dialog.fields[key].error


# ---------------------------------------------------------------- every setting


def test_every_setting_and_secret_has_a_widget_on_a_tab(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    assert set(dialog.fields) == set(KEYS) | set(SECRET_KEYS)
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert "Other" not in titles  # every key has its proper place (issue 20)
    pages = [dialog.tabs.widget(i) for i in range(dialog.tabs.count())]
    for key, field in dialog.fields.items():
        assert any(page.isAncestorOf(field.widget) for page in pages), key
        assert field.widget.toolTip(), key
    for key, spec in KEYS.items():
        widget = dialog.fields[key].widget
        if isinstance(spec.kind, BoolKind):
            assert isinstance(widget, QCheckBox), key
        elif key in MB_KEYS:
            assert isinstance(widget, QDoubleSpinBox), key
            assert widget.suffix() == " MB"
            assert widget.maximum() * MB == spec.kind.high  # type: ignore[attr-defined]
        elif isinstance(spec.kind, IntKind):
            assert isinstance(widget, QSpinBox), key
            assert (widget.minimum(), widget.maximum()) == (spec.kind.low, spec.kind.high)
        elif isinstance(spec.kind, FloatKind):
            assert isinstance(widget, QDoubleSpinBox), key
            assert (widget.minimum(), widget.maximum()) == (spec.kind.low, spec.kind.high)
        elif isinstance(spec.kind, ChoiceKind):
            assert isinstance(widget, QComboBox), key
        elif isinstance(spec.kind, TimestampKind):
            assert isinstance(widget, QDateTimeEdit), key
        else:
            assert isinstance(widget, QLineEdit), key
    for key in SECRET_KEYS:
        assert line(dialog, key).echoMode() == QLineEdit.EchoMode.Password


def test_the_widgets_show_the_current_values(qtbot: QtBot, saver: Saver) -> None:
    settings = Settings()
    settings.set("relay.port", "2600")
    settings.set("tracking.settle_seconds", "2.25")
    settings.set("privacy.enabled", "true")
    settings.set("server.mode", "remote")
    dialog = make_dialog(qtbot, saver, settings)
    for key in KEYS:
        assert dialog.fields[key].text().lower() == settings.get(key).lower(), key


def test_per_recipient_explains_its_trade_off(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    assert dialog.per_recipient_note.text() == PER_RECIPIENT_TRADE_OFF
    assert "several copies in Sent" in PER_RECIPIENT_TRADE_OFF
    assert "their own pixel" in PER_RECIPIENT_TRADE_OFF


def test_server_mode_enables_the_fields_that_matter(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    mode = dialog.fields["server.mode"].widget
    assert isinstance(mode, QComboBox)
    assert not line(dialog, "server.enrollment").isEnabled()
    assert line(dialog, "server.listen").isEnabled()
    mode.setCurrentIndex(mode.findData("remote"))
    assert line(dialog, "server.enrollment").isEnabled()
    assert not line(dialog, "server.listen").isEnabled()


# ---------------------------------------------------------------- OK


def test_ok_saves_the_settings_and_puts_secrets_only_in_the_keyring(
    qtbot: QtBot, saver: Saver, memory_keyring: MemoryKeyring
) -> None:
    dialog = make_dialog(qtbot, saver)
    f = dialog.fields
    spin = f["relay.port"].widget
    assert isinstance(spin, QSpinBox)
    spin.setValue(2600)
    settle = f["tracking.settle_seconds"].widget
    assert isinstance(settle, QDoubleSpinBox)
    settle.setValue(0.5)
    per_recipient = f["tracking.per_recipient"]
    assert isinstance(per_recipient, BoolField)
    dialog.show_field("tracking.per_recipient")
    box = per_recipient.box
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    mode = f["server.mode"].widget
    assert isinstance(mode, QComboBox)
    mode.setCurrentIndex(mode.findData("remote"))
    line(dialog, "upstream.url").setText("smtps://smtp.example.com")
    line(dialog, "upstream.user").setText("rep@example.com")
    line(dialog, "upstream.password").setText("upstream-pw-123")
    line(dialog, "imap.url").setText("imaps://rep@imap.example.com")
    line(dialog, "imap.password").setText("imap-pw-456")
    line(dialog, "server.enrollment").setText(ENROLLMENT.encode())
    relay_password = dialog.generate_relay_password()
    assert line(dialog, "relay.password").text() == relay_password
    assert line(dialog, "relay.password").echoMode() == QLineEdit.EchoMode.Normal

    with qtbot.waitSignal(dialog.settingsSaved, timeout=WAIT_MS) as saved:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.result() == QDialog.DialogCode.Accepted
    assert saved.args is not None and saved.args[0] is saver.saved[-1]
    on_disk = Settings.load(saver.path)
    assert on_disk.relay.port == 2600
    assert on_disk.tracking.settle_seconds == 0.5
    assert on_disk.tracking.per_recipient is True
    assert on_disk.server.mode == "remote"
    assert on_disk.upstream.url == "smtps://smtp.example.com"
    assert on_disk.upstream.user == "rep@example.com"
    assert on_disk.imap.url == "imaps://rep@imap.example.com"
    assert dict(on_disk.items()) == dict(saver.saved[-1].items())

    store = SecretStore(SERVICE)
    assert store.get(Secret.UPSTREAM_PASSWORD) == "upstream-pw-123"
    assert store.get(Secret.IMAP_PASSWORD) == "imap-pw-456"
    assert store.get(Secret.RELAY_PASSWORD) == relay_password
    assert store.enrollment() == ENROLLMENT
    assert store.get(Secret.API_TOKEN) == ENROLLMENT.api_token

    text = saver.path.read_text("utf-8")
    for secret in ("upstream-pw-123", "imap-pw-456", relay_password,
                   ENROLLMENT.api_token, ENROLLMENT.encode()):
        assert secret not in text
    assert "password" not in json.loads(text)["upstream"]


def test_after_ok_the_secret_fields_say_the_secrets_are_stored(
    qtbot: QtBot, saver: Saver
) -> None:
    dialog = make_dialog(qtbot, saver)
    assert line(dialog, "imap.password").placeholderText() == "not set"
    line(dialog, "imap.password").setText("imap-pw")
    dialog.accept()
    assert line(dialog, "imap.password").text() == ""
    assert "stored in the keyring" in line(dialog, "imap.password").placeholderText()


def test_an_untouched_dialog_saves_the_same_settings(qtbot: QtBot, saver: Saver) -> None:
    settings = Settings()
    settings.set("tracking.settle_seconds", "1.234")  # more decimals than the spin box shows
    settings.set("upstream.url", "smtp+starttls://mail.example.com")
    dialog = make_dialog(qtbot, saver, settings)
    dialog.accept()
    assert dict(saver.saved[-1].items()) == dict(settings.items())


def test_empty_secret_fields_keep_the_stored_secrets(
    qtbot: QtBot, saver: Saver, memory_keyring: MemoryKeyring
) -> None:
    store = SecretStore(SERVICE)
    store.set(Secret.UPSTREAM_PASSWORD, "kept-password")
    dialog = make_dialog(qtbot, saver)
    assert "keep" in line(dialog, "upstream.password").placeholderText()
    assert line(dialog, "upstream.password").text() == ""  # never read back into the UI
    dialog.accept()
    assert store.get(Secret.UPSTREAM_PASSWORD) == "kept-password"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("upstream.url", "ftp://x", "smtp"),
        ("server.public_url", "not a url", "http:// or https://"),
        ("imap.url", "imap://rep@imap.example.com", "unencrypted"),
        ("server.listen", "127.0.0.1:99999", "port"),
    ],
)
def test_a_refused_value_shows_why_and_nothing_is_saved(
    qtbot: QtBot, saver: Saver, memory_keyring: MemoryKeyring, key: str, value: str, reason: str
) -> None:
    dialog = make_dialog(qtbot, saver)
    spin = dialog.fields["relay.port"].widget
    assert isinstance(spin, QSpinBox)
    spin.setValue(2700)
    line(dialog, "upstream.password").setText("typed-secret")
    line(dialog, key).setText(value)

    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    error = error_of(dialog, key)
    assert error.isVisible() and reason in error.text()
    assert dialog.message.isVisible() and "Nothing was saved" in dialog.message.text()
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted
    assert saver.saved == [] and not saver.path.exists()
    assert memory_keyring.items == {}
    assert dialog.tabs.currentWidget().isAncestorOf(dialog.fields[key].widget)
    # Fixing the value clears the error and saves everything.
    line(dialog, key).setText(Settings().get(key))
    dialog.accept()
    assert not error.isVisible()
    assert saver.saved[-1].relay.port == 2700
    assert SecretStore(SERVICE).get(Secret.UPSTREAM_PASSWORD) == "typed-secret"


def test_settings_that_depend_on_each_other_are_applied_together(
    qtbot: QtBot, saver: Saver
) -> None:
    dialog = make_dialog(qtbot, saver)
    line(dialog, "upstream.url").setText("smtp://mail.lan.example.com")
    dialog.accept()
    assert "unencrypted" in error_of(dialog, "upstream.url").text()
    assert saver.saved == []
    allow = dialog.fields["upstream.allow_plain"]
    assert isinstance(allow, BoolField)
    allow.box.setChecked(True)  # url comes before allow_plain: it must still pass
    dialog.accept()
    assert saver.saved[-1].upstream.url == "smtp://mail.lan.example.com"
    assert saver.saved[-1].upstream.allow_plain is True


def test_a_bad_enrollment_key_is_refused(
    qtbot: QtBot, saver: Saver, memory_keyring: MemoryKeyring
) -> None:
    dialog = make_dialog(qtbot, saver)
    line(dialog, "server.enrollment").setText("mbk1_garbage")
    dialog.accept()
    assert "team link" in error_of(dialog, "server.enrollment").text()
    assert saver.saved == [] and memory_keyring.items == {}


@pytest.mark.expect_log("settings not saved")
def test_without_a_keyring_nothing_is_written_and_the_rep_is_told(
    qtbot: QtBot, saver: Saver, tmp_path: Path
) -> None:
    keyring.set_keyring(fail.Keyring())  # the autouse fixture restores the memory keyring
    dialog = make_dialog(qtbot, saver)
    assert "keyring is unavailable" in dialog.message.text()
    assert "unavailable" in line(dialog, "upstream.password").placeholderText()
    line(dialog, "upstream.password").setText("plaintext-never")
    spin = dialog.fields["relay.port"].widget
    assert isinstance(spin, QSpinBox)
    spin.setValue(2800)

    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.isVisible()
    text = dialog.message.text()
    assert "Nothing was saved" in text and "keyring is unavailable" in text
    assert "Traceback" not in text
    assert saver.saved == [] and not saver.path.exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"plaintext-never" not in path.read_bytes(), path


@pytest.mark.expect_log("saving the settings failed")
def test_a_failing_save_rolls_the_secrets_back(
    qtbot: QtBot, memory_keyring: MemoryKeyring
) -> None:
    store = SecretStore(SERVICE)
    store.set(Secret.IMAP_PASSWORD, "old-imap")

    def broken_save(_settings: Settings) -> None:
        raise PermissionError(13, "Permission denied", "/config/config.json")

    dialog = SettingsDialog(Settings(), store, broken_save)
    qtbot.addWidget(dialog)
    line(dialog, "imap.password").setText("new-imap")
    line(dialog, "upstream.password").setText("new-upstream")
    dialog.accept()
    assert "could not be saved" in dialog.message.text()
    assert "Permission denied" in dialog.message.text()
    assert store.get(Secret.IMAP_PASSWORD) == "old-imap"
    assert store.get(Secret.UPSTREAM_PASSWORD) is None


# ---------------------------------------------------------------- test buttons


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[tuple[TrackingServer, Enrollment]]:
    """A real tracking server on its own thread and loop (the test's thread runs Qt)."""
    ready: queue.Queue[tuple[TrackingServer, Enrollment, asyncio.AbstractEventLoop,
                             asyncio.Event] | BaseException] = queue.Queue()

    async def serve() -> None:
        try:
            server = TrackingServer(ServerConfig(db_path=tmp_path / "s.db"))
            await server.start()
            enrollment = await server.add_user("rep")
        except BaseException as exc:
            ready.put(exc)
            raise
        stop = asyncio.Event()
        ready.put((server, enrollment, asyncio.get_running_loop(), stop))
        try:
            await stop.wait()
        finally:
            await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    started = ready.get(timeout=30)
    if isinstance(started, BaseException):
        raise started
    server, enrollment, loop, stop = started
    yield server, enrollment
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=15)
    assert not thread.is_alive()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_test_tracking_never_reports_success_for_this_computers_address(
    qtbot: QtBot, saver: Saver, tracking_server: tuple[TrackingServer, Enrollment]
) -> None:
    _server, enrollment = tracking_server
    SecretStore(SERVICE).set_enrollment(enrollment)
    dialog = make_dialog(qtbot, saver)
    dialog.show_field("server.mode")  # the checks sit under the tracking server
    with qtbot.waitSignal(dialog.trackingTested, timeout=WAIT_MS) as result:
        qtbot.mouseClick(dialog.test_tracking_button, Qt.MouseButton.LeftButton)
    assert result.args is not None
    ok, message = result.args
    # The server answered the pixel, but recipients elsewhere can never reach 127.0.0.1
    # (issue 20: "Tracking works" was said for an address only this computer reaches).
    assert ok is False, message
    assert message.startswith("This computer got the pixel, but 127.0.0.1 is this computer")
    assert "never by your recipients" in message
    assert dialog.tracking_result.text() == message
    assert dialog.test_tracking_button.isEnabled()


def test_test_tracking_reports_a_server_that_does_not_answer(
    qtbot: QtBot, saver: Saver
) -> None:
    dead = Enrollment(f"http://127.0.0.1:{closed_port()}", 1, "t", b"k" * 32)
    dialog = make_dialog(qtbot, saver)
    line(dialog, "server.enrollment").setText(dead.encode())  # typed, not yet saved
    with qtbot.waitSignal(dialog.trackingTested, timeout=WAIT_MS) as result:
        dialog.run_tracking_test()
    assert result.args is not None
    ok, message = result.args
    assert ok is False
    assert "did not answer" in message and dead.server_url in message
    assert "Traceback" not in message


def test_test_tracking_without_an_enrollment_says_what_to_do(
    qtbot: QtBot, saver: Saver
) -> None:
    dialog = make_dialog(qtbot, saver)
    with qtbot.waitSignal(dialog.trackingTested, timeout=WAIT_MS) as result:
        dialog.run_tracking_test()
    assert result.args is not None and result.args[0] is False
    assert "start MailBeacon once" in dialog.tracking_result.text()


def test_mark_this_browser_opens_a_working_claim_url(
    qtbot: QtBot, saver: Saver, tracking_server: tuple[TrackingServer, Enrollment]
) -> None:
    _server, enrollment = tracking_server
    SecretStore(SERVICE).set_enrollment(enrollment)
    opened: list[str] = []
    dialog = make_dialog(qtbot, saver, open_url=opened.append)
    dialog.show_field("server.mode")
    qtbot.mouseClick(dialog.claim_button, Qt.MouseButton.LeftButton)
    assert len(opened) == 1 and opened[0].startswith(f"{enrollment.server_url}/claim/")
    response = httpx.get(opened[0], timeout=10)
    assert response.status_code == 200
    assert "set-cookie" in response.headers


def test_test_upstream_passes_the_typed_values_to_the_check(
    qtbot: QtBot, saver: Saver
) -> None:
    probes: list[UpstreamProbe] = []

    async def fake_check(probe: UpstreamProbe) -> tuple[bool, str]:
        probes.append(probe)
        return (True, "fine")

    class Result:
        def __init__(self, ok: bool, message: str) -> None:
            self.ok, self.message = ok, message

    async def check(probe: UpstreamProbe) -> Result:
        return Result(*(await fake_check(probe)))

    dialog = make_dialog(qtbot, saver, test_upstream=check)
    line(dialog, "upstream.url").setText("smtps://smtp.example.com")
    line(dialog, "upstream.user").setText("rep")
    line(dialog, "upstream.password").setText("typed")
    dialog.show_field("upstream.url")
    with qtbot.waitSignal(dialog.upstreamTested, timeout=WAIT_MS) as result:
        qtbot.mouseClick(dialog.test_upstream_button, Qt.MouseButton.LeftButton)
    assert result.args == [True, "fine"]
    assert probes == [UpstreamProbe("smtps://smtp.example.com", "rep", "typed", False)]
    assert saver.saved == []  # testing saves nothing


def test_test_upstream_logs_in_to_a_real_smtp_server(qtbot: QtBot, saver: Saver) -> None:
    SecretStore(SERVICE).set(Secret.UPSTREAM_PASSWORD, "sink-pw")  # the stored one is used
    with SmtpSink(user="rep", password="sink-pw") as sink:
        dialog = make_dialog(qtbot, saver, test_upstream=check_upstream)
        line(dialog, "upstream.url").setText(f"smtp://127.0.0.1:{sink.port}")
        line(dialog, "upstream.user").setText("rep")
        with qtbot.waitSignal(dialog.upstreamTested, timeout=WAIT_MS) as result:
            dialog.run_upstream_test()
        assert result.args is not None
        assert result.args[0] is True, result.args[1]
        line(dialog, "upstream.password").setText("wrong")
        with qtbot.waitSignal(dialog.upstreamTested, timeout=WAIT_MS) as result:
            dialog.run_upstream_test()
        assert result.args is not None and result.args[0] is False
        assert sink.handler.failed_logins >= 1


def test_closing_during_a_test_leaves_the_dialog_usable(qtbot: QtBot, saver: Saver) -> None:
    release = threading.Event()

    def slow_check(_probe: UpstreamProbe) -> tuple[bool, str]:
        release.wait(WAIT_MS / 1000)
        raise AssertionError("a closed dialog must not get this")

    dialog = make_dialog(qtbot, saver, test_upstream=slow_check)
    dialog.run_upstream_test()
    assert not dialog.test_upstream_button.isEnabled()
    dialog.reject()
    release.set()
    assert dialog.test_upstream_button.isEnabled()
    assert dialog.upstream_result.text() == ""


def test_test_upstream_reports_a_closed_port(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    line(dialog, "upstream.url").setText(f"smtp://127.0.0.1:{closed_port()}")
    with qtbot.waitSignal(dialog.upstreamTested, timeout=WAIT_MS) as result:
        dialog.run_upstream_test()
    assert result.args is not None and result.args[0] is False
    assert dialog.upstream_result.text() == result.args[1]


class ImapChecks:
    """An injected IMAP check: remembers what it was asked and answers ``answer``."""

    def __init__(self, answer: ImapCheck) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, bool]] = []

    async def __call__(self, url: str, password: str, allow_plain: bool) -> ImapCheck:
        self.calls.append((url, password, allow_plain))
        return self.answer


def test_test_connection_checks_the_typed_imap_values_and_shows_the_answer(
    qtbot: QtBot, saver: Saver
) -> None:
    SecretStore(SERVICE).set(Secret.IMAP_PASSWORD, "stored-pw")  # typed wins over stored
    checks = ImapChecks(ImapCheck(True, "Connected; it supports IDLE."))
    dialog = make_dialog(qtbot, saver, test_imap=checks)
    line(dialog, "imap.url").setText("  imap://rep@mail.lan.example.com  ")
    line(dialog, "imap.password").setText("typed-pw")
    allow = dialog.fields["imap.allow_plain"]
    assert isinstance(allow, BoolField)
    allow.box.setChecked(True)
    dialog.show_field("imap.url")
    assert dialog.test_imap_button.isVisible()
    with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS) as result:
        qtbot.mouseClick(dialog.test_imap_button, Qt.MouseButton.LeftButton)
    assert result.args == [True, "Connected; it supports IDLE."]
    assert checks.calls == [("imap://rep@mail.lan.example.com", "typed-pw", True)]
    assert dialog.imap_result.text() == "Connected; it supports IDLE."
    assert dialog.test_imap_button.isEnabled()
    assert saver.saved == []  # testing saves nothing


def test_a_long_test_connection_answer_is_shown_whole(qtbot: QtBot, saver: Saver) -> None:
    answer = "Connected to imap.example.com:993 as rep@example.com; " + "word " * 40
    dialog = make_dialog(qtbot, saver, test_imap=ImapChecks(ImapCheck(True, answer)))
    dialog.show_field("imap.url")
    with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS):
        dialog.run_imap_test()
    label = dialog.imap_result
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()),
                    timeout=WAIT_MS)
    assert label.width() > dialog.test_imap_button.width() * 2  # not a narrow column


def test_test_connection_uses_the_stored_password_when_none_is_typed(
    qtbot: QtBot, saver: Saver
) -> None:
    checks = ImapChecks(ImapCheck(False, "No IMAP password is set."))
    dialog = make_dialog(qtbot, saver, test_imap=checks)
    line(dialog, "imap.url").setText("imaps://rep@imap.example.com")
    with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS) as result:
        dialog.run_imap_test()
    assert result.args == [False, "No IMAP password is set."]
    assert dialog.imap_result.text() == "No IMAP password is set."
    SecretStore(SERVICE).set(Secret.IMAP_PASSWORD, "stored-pw")
    with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS):
        dialog.run_imap_test()
    assert checks.calls == [
        ("imaps://rep@imap.example.com", "", False),
        ("imaps://rep@imap.example.com", "stored-pw", False),
    ]


def test_a_test_connection_that_breaks_is_reported_in_words(
    qtbot: QtBot, saver: Saver
) -> None:
    def broken(_url: str, _password: str, _allow_plain: bool) -> ImapCheck:
        raise RuntimeError("the check broke")

    dialog = make_dialog(qtbot, saver, test_imap=broken)
    with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS) as result:
        dialog.run_imap_test()
    assert result.args == [False, "The test could not run: the check broke"]
    assert dialog.test_imap_button.isEnabled()


@pytest.mark.needs_program("dovecot")
def test_test_connection_logs_in_to_a_real_dovecot(qtbot: QtBot, saver: Saver) -> None:
    SecretStore(SERVICE).set(Secret.IMAP_PASSWORD, dv.PASSWORD)  # the stored one is used
    with dv.running_dovecot() as server:
        dialog = make_dialog(qtbot, saver)  # the real check, by default
        line(dialog, "imap.url").setText(f"imap://rep%40example.net@127.0.0.1:{server.port}")
        with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS) as result:
            dialog.run_imap_test()
        assert result.args is not None
        ok, message = result.args
        assert ok is True, message
        assert "IDLE" in message and '"Sent"' in message
        assert dialog.imap_result.text() == message
        line(dialog, "imap.password").setText("wrong-pw")
        with qtbot.waitSignal(dialog.imapTested, timeout=WAIT_MS) as result:
            dialog.run_imap_test()
        assert result.args is not None and result.args[0] is False
        assert "user name" in result.args[1] and "password" in result.args[1]
        assert "wrong-pw" not in result.args[1]


# ---------------------------------------------------------------- looks


def test_labels_never_render_rich_text(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    for label in dialog.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText, label.text()


def test_render_every_tab_to_png(qtbot: QtBot, saver: Saver, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, saver)
    line(dialog, "upstream.url").setText("ftp://x")
    dialog.accept()  # shows an error under the field and the message line
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        path = tmp_path / f"settings-{index}.png"
        assert dialog.grab().save(str(path))
        assert path.stat().st_size > 2000


def test_the_tracking_tab_says_what_open_tracking_costs_and_offers_clicks_only(
    qtbot: QtBot, saver: Saver
) -> None:
    """Issue 21: the rep is told the cost honestly, next to the switch that avoids it."""
    dialog = make_dialog(qtbot, saver)
    note = dialog.findChild(QLabel, "opens_note")
    assert note is not None
    assert "spam filters" in note.text() and "Clicks only" in note.text()
    assert "tracking.opens" in dialog.fields


# ---------------------------------------------------------------- plain words (issue 20)


def test_the_words_are_the_mail_clients_not_the_engines(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    words = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    words += [box.title() for box in dialog.findChildren(QGroupBox)]
    words += [label.text() for label in dialog.findChildren(QLabel)]
    words += [button.text() for button in dialog.findChildren(QAbstractButton)]
    for jargon in ("upstream", "relay", "enrollment", "settle", "IMAP", "UTC", "bytes"):
        assert not [w for w in words if jargon.lower() in w.lower()], jargon
    shown = " | ".join(words)
    for plain in ("Outgoing mail server", "Mail client connection", "Team link:",
                  "Wait before notifying:", "Paused until:", "Incoming mail"):
        assert plain in shown, plain


def test_no_tab_holds_only_one_or_two_fields(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    for index in range(dialog.tabs.count()):
        page = dialog.tabs.widget(index)
        held = [k for k, f in dialog.fields.items() if page.isAncestorOf(f.widget)]
        assert len(held) >= 3, (dialog.tabs.tabText(index), held)


def test_no_label_is_cut_off_at_the_minimum_size(qtbot: QtBot, saver: Saver) -> None:
    """Issue 20, item 5: every label, check box and button shows whole on every tab."""
    dialog = make_dialog(qtbot, saver, open_account=lambda: None)
    dialog.resize(dialog.minimumSize())
    qtbot.waitUntil(lambda: dialog.size() == dialog.minimumSize(), timeout=WAIT_MS)
    assert dialog.minimumWidth() <= 760  # still fits a small laptop screen
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        area = dialog.tabs.widget(index)
        assert isinstance(area, QScrollArea)
        viewport = area.viewport()
        assert not area.horizontalScrollBar().isVisible(), dialog.tabs.tabText(index)
        widgets = [w for w in area.findChildren(QLabel) + area.findChildren(QAbstractButton)
                   if w.isVisibleTo(area) and w.text()]
        assert widgets
        for widget in widgets:
            where = (dialog.tabs.tabText(index), widget.text())
            if isinstance(widget, QLabel) and widget.wordWrap():
                assert widget.height() >= widget.heightForWidth(widget.width()), where
            else:
                assert widget.width() >= widget.sizeHint().width(), where
            right = widget.mapTo(viewport, widget.rect().topRight()).x()
            assert right < viewport.width(), where


def test_the_largest_email_is_shown_in_mb_and_saved_in_bytes(
    qtbot: QtBot, saver: Saver
) -> None:
    settings = Settings()
    settings.set("relay.max_message_bytes", "36700160")
    dialog = make_dialog(qtbot, saver, settings)
    spin = dialog.fields["relay.max_message_bytes"].widget
    assert isinstance(spin, QDoubleSpinBox)
    assert spin.value() == 35.0 and spin.text().endswith(" MB")
    dialog.accept()
    assert saver.saved[-1].relay.max_message_bytes == 36700160  # untouched: the same
    spin.setValue(20)
    dialog.accept()
    assert saver.saved[-1].relay.max_message_bytes == 20 * MB


def test_paused_until_is_a_local_date_time_saved_as_utc(qtbot: QtBot, saver: Saver) -> None:
    dialog = make_dialog(qtbot, saver)
    field = dialog.fields["notify.paused_until"]
    assert isinstance(field, PauseField)
    assert not field.box.isChecked() and not field.picker.isEnabled()
    assert field.text() == ""
    field.box.setChecked(True)
    assert field.picker.isEnabled()
    until = datetime(2031, 3, 4, 17, 30, tzinfo=UTC)
    field.picker.setDateTime(QDateTime.fromSecsSinceEpoch(int(until.timestamp())))
    local = until.astimezone()
    assert f"{local:%H:%M}" in field.picker.text() and str(local.year) in field.picker.text()
    dialog.accept()
    assert saver.saved[-1].notify.paused_until == "2031-03-04T17:30:00Z"

    again = make_dialog(qtbot, saver, saver.saved[-1])
    shown = again.fields["notify.paused_until"]
    assert isinstance(shown, PauseField) and shown.box.isChecked()
    assert shown.picker.dateTime().toSecsSinceEpoch() == int(until.timestamp())
    shown.box.setChecked(False)
    again.accept()
    assert saver.saved[-1].notify.paused_until == ""


def test_a_pause_that_is_over_shows_unticked_and_is_kept_untouched(
    qtbot: QtBot, saver: Saver
) -> None:
    settings = Settings()
    past = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    settings.set("notify.paused_until", past)
    dialog = make_dialog(qtbot, saver, settings)
    field = dialog.fields["notify.paused_until"]
    assert isinstance(field, PauseField) and not field.box.isChecked()
    dialog.accept()
    assert saver.saved[-1].notify.paused_until == past


def test_a_public_test_tracking_result_shows_every_step_whole_at_the_minimum_size(
    qtbot: QtBot, saver: Saver, tmp_path: Path
) -> None:
    """Issue 20, item 1: what each step found is shown, nothing clipped (the words are
    the check's own; tests/integration/agent/tracking runs the real path)."""
    steps = (
        CheckStep(NAME_STEP, Outcome.YES, "yes (203.0.113.5)"),
        CheckStep(TLS_STEP, Outcome.NO, "no. The server's certificate is not made out to "
                  "track.acme.com. The server needs a certificate for track.acme.com from "
                  "a public authority (Caddy and Let's Encrypt make one automatically)."),
        not_checked(ANSWER_STEP, "there was no secure connection to ask over"),
    )
    answer = public_result("https://track.acme.com", steps, [])

    async def test_tracking(_enrollment: Enrollment) -> TrackingCheck:
        return answer

    SecretStore(SERVICE).set_enrollment(Enrollment("https://track.acme.com", 7, "t", bytes(32)))
    dialog = make_dialog(qtbot, saver, test_tracking=test_tracking, open_account=lambda: None)
    dialog.resize(dialog.minimumSize())
    dialog.show_field("server.mode")
    with qtbot.waitSignal(dialog.trackingTested, timeout=WAIT_MS) as result:
        dialog.run_tracking_test()
    assert result.args == [False, answer.message]
    label = dialog.tracking_result
    assert label.text().splitlines() == [
        "Recipients cannot reach tracking at https://track.acme.com:",
        "Name resolves: yes (203.0.113.5)",
        steps[1].line(),
        "Answer: not checked (there was no secure connection to ask over)",
    ]
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()),
                    timeout=WAIT_MS)
    area = dialog.tabs.currentWidget()
    assert isinstance(area, QScrollArea)
    assert not area.horizontalScrollBar().isVisible()
    right = label.mapTo(area.viewport(), label.rect().topRight()).x()
    assert right < area.viewport().width()
    assert label.width() > dialog.test_tracking_button.width() * 2  # not a narrow column
    assert dialog.grab().save(str(tmp_path / "settings-test-tracking.png"))


def test_the_tracking_server_tab_says_when_recipients_cannot_reach_the_address(
    qtbot: QtBot, saver: Saver
) -> None:
    """Issue 20, item 1: Settings says it before any test, as the tray and compose do,
    and follows what is typed."""
    dialog = make_dialog(qtbot, saver)  # out of the box: this computer, 127.0.0.1:8725
    dialog.show_field("server.mode")
    note = dialog.reach_note
    assert dialog.tracking_url() == "http://127.0.0.1:8725"
    assert note.isVisible()
    assert note.text().startswith("127.0.0.1 is this computer: opens and clicks are only seen")
    assert "public https address (Address in your emails)" in note.text()
    line(dialog, "server.public_url").setText("https://track.acme.com")
    assert not note.isVisible() and note.text() == ""
    mode = dialog.fields["server.mode"]
    assert isinstance(mode, ChoiceField)
    mode.combo.setCurrentIndex(mode.combo.findData("remote"))
    line(dialog, "server.url").setText("https://10.1.2.3")
    assert note.isVisible()
    assert note.text().startswith("10.1.2.3 is a private network address")


def shown_whole(qtbot: QtBot, dialog: SettingsDialog, label: QLabel) -> None:
    """``label`` shows all its text inside its tab's visible width (issue 20, item 5)."""
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()),
                    timeout=WAIT_MS)
    area = dialog.tabs.currentWidget()
    assert isinstance(area, QScrollArea)
    assert not area.horizontalScrollBar().isVisible()
    assert label.mapTo(area.viewport(), label.rect().topRight()).x() < area.viewport().width()


def test_outgoing_server_results_show_whole_at_the_minimum_size(
    qtbot: QtBot, saver: Saver
) -> None:
    """The clipped "Connected to smtp://" and "Cannot reach 127.0.0.1:2599:" of issue 20:
    real answers from a real server and a closed port, at the dialog's minimum size."""
    SecretStore(SERVICE).set(Secret.UPSTREAM_PASSWORD, "sink-pw")
    dialog = make_dialog(qtbot, saver, test_upstream=check_upstream)
    dialog.resize(dialog.minimumSize())
    dialog.show_field("upstream.url")
    label = dialog.upstream_result
    with SmtpSink(user="rep", password="sink-pw") as sink:
        line(dialog, "upstream.url").setText(f"smtp://127.0.0.1:{sink.port}")
        line(dialog, "upstream.user").setText("rep")
        with qtbot.waitSignal(dialog.upstreamTested, timeout=WAIT_MS) as result:
            dialog.run_upstream_test()
    assert result.args is not None and result.args[0] is True
    assert label.text() == result.args[1] and label.text().startswith("Connected to smtp://")
    shown_whole(qtbot, dialog, label)
    port = closed_port()
    line(dialog, "upstream.url").setText(f"smtp://127.0.0.1:{port}")
    with qtbot.waitSignal(dialog.upstreamTested, timeout=WAIT_MS) as result:
        dialog.run_upstream_test()
    assert result.args is not None and result.args[0] is False
    assert label.text() == result.args[1] and f"127.0.0.1:{port}" in label.text()
    shown_whole(qtbot, dialog, label)
