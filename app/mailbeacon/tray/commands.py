"""Command-line entry points of the tray package: ``mailbeacon tray`` (also bare ``mailbeacon``).

Qt and the agent's runtime are imported only when the desktop app starts, so the other
commands stay quick and work without PySide6.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

from mailbeacon.agent.commands import add_agent_options
from mailbeacon.agent.notifications.model import AgentListener, AgentStatus, Notification
from mailbeacon.core.profile import Profile

log = logging.getLogger(__name__)

RUNTIME_MODULE = "mailbeacon.agent.runtime"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's sub-commands."""
    tray = sub.add_parser(
        "tray",
        help="the desktop app (the default command)",
        description="The desktop app. The agent's options override the settings for this run.",
    )
    add_agent_options(tray)
    tray.set_defaults(func=run_tray)


class TeeListener:
    """Hands everything the agent says to several listeners (``--notify jsonl`` in the tray)."""

    def __init__(self, *listeners: AgentListener) -> None:
        self._listeners = listeners

    def notification(self, notification: Notification) -> None:
        """To every listener."""
        for listener in self._listeners:
            listener.notification(notification)

    def status(self, status: AgentStatus) -> None:
        """To every listener."""
        for listener in self._listeners:
            listener.status(status)


def run_tray(
    args: argparse.Namespace,
    profile: Profile,
    choose_session_only: Callable[[str], bool] | None = None,
) -> int:
    """``mailbeacon tray``: the desktop app over the real agent.

    Without a usable keyring the rep chooses: run with secrets held in memory for this
    session (``choose_session_only``, a dialog by default), or quit. Never a file."""
    problem = no_display_problem(sys.platform, os.environ)
    if problem is not None:
        print(f"mailbeacon: {problem}", file=sys.stderr)
        return 1
    runtime = _load_runtime()
    if runtime is None:
        return 1
    try:
        tray_app = importlib.import_module("mailbeacon.tray.app")
        wiring = importlib.import_module("mailbeacon.tray.wiring")
    except ImportError as exc:
        log.error("cannot load the desktop app: %s", exc)
        print(
            "mailbeacon: the desktop app needs PySide6: pip install 'mailbeacon[tray]'",
            file=sys.stderr,
        )
        return 1
    options = runtime.AgentOptions(
        enroll=getattr(args, "enroll", None),
        smtp_listen=getattr(args, "smtp_listen", None),
        upstream=getattr(args, "upstream", None),
        relay_password=getattr(args, "relay_password", None),
        imap=getattr(args, "imap", None),
    )
    print_jsonl = getattr(args, "notify", None) == "jsonl"
    session_only = False
    problem = wiring.keyring_problem(profile)
    if problem is not None and options.relay_password is None:
        log.warning("keyring unavailable: %s", problem)
        _app = _application()  # held until the tray, which reuses it, has run
        if choose_session_only is not None:
            session_ok = choose_session_only(problem)
        else:
            session_ok = wiring.ask_session_only(problem, wiring.profile_language(profile))
        if not session_ok:
            return 1
        options = replace(options, relay_password=secrets.token_urlsafe(12))
        session_only = True

    def agent_main(listener: AgentListener, stop_event: Any) -> Any:
        if print_jsonl:
            listener = TeeListener(listener, runtime.JsonLinesListener())
        return runtime.run_agent(profile, options, listener, stop_event)

    first_run, first_run_shown = wiring.first_run_state(profile)
    first_run = first_run or session_only  # a new relay password: show it
    started: list[Any] = []

    def restart_agent() -> None:
        if started:
            started[0].restartAgentRequested.emit()

    password = wiring.relay_password_source(options.relay_password, profile)
    submit = wiring.relay_submitter(profile, options.smtp_listen, password)
    windows = wiring.ProfileWindows(profile, restart_agent, submit)
    windows.relay_password = password

    def ready(app: Any) -> None:
        started.append(app)
        windows.notify = app.notify  # a compose window's send shows in the tray
        windows.agent_status = lambda: app.tray.status.report
        app.notification_actions = windows.notification_actions  # a reminder's buttons
        windows.on_language = app.set_language  # a language saved in Settings

    try:
        code: int = tray_app.main(
            args,
            profile,
            agent_main,
            windows=windows.menu(),
            open_record=windows.open_record,
            relay_password=password,
            first_run=first_run,
            first_run_shown=first_run_shown,
            ready=ready,
            pause=wiring.saved_pause(profile),
            account_flow=windows.account_flow,
            reach_step=windows.reach_step,
            on_event=windows.event_added,
            language=windows.language,
        )
    finally:
        windows.close()
    return code


def no_display_problem(platform: str, environ: Mapping[str, str]) -> str | None:
    """Why the desktop app cannot show a window here, or None (Qt would abort)."""
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("there is no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set). "
            "Start the desktop app from your desktop session, or run the headless engine "
            "with `mailbeacon agent`.")


def _application() -> Any:
    """The QApplication, made early when a dialog must show before the tray."""
    widgets = importlib.import_module("PySide6.QtWidgets")
    return widgets.QApplication.instance() or widgets.QApplication(sys.argv[:1])


def _load_runtime() -> ModuleType | None:
    """``mailbeacon.agent.runtime``, or None with a message saying why not."""
    try:
        runtime = importlib.import_module(RUNTIME_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != RUNTIME_MODULE:
            raise
        log.error("%s is missing", RUNTIME_MODULE)
        print(
            "mailbeacon: this build has no agent runtime (mailbeacon.agent.runtime), "
            "so the desktop app cannot start; use a complete MailBeacon build.",
            file=sys.stderr,
        )
        return None
    if not hasattr(runtime, "run_agent"):
        log.error("%s has no run_agent", RUNTIME_MODULE)
        print(
            "mailbeacon: the agent runtime has no run_agent entry point; "
            "the desktop app cannot start.",
            file=sys.stderr,
        )
        return None
    return runtime
