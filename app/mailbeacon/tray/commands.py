"""Command-line entry points of the tray package: ``mailbeacon tray`` (also bare ``mailbeacon``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any

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


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """The agent's options (DESIGN 3.1), shared by ``tray``."""
    parser.add_argument("--enroll", metavar="KEY", help="enrollment key from the server")
    parser.add_argument(
        "--smtp-listen", metavar="HOST:PORT", help="where the relay listens for the mail client"
    )
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="the real outgoing server: smtp://, smtp+starttls:// or smtps://host:port",
    )
    parser.add_argument(
        "--relay-password", metavar="P", help="password mail clients log in to the relay with"
    )
    parser.add_argument(
        "--imap", metavar="URL", help="watch this inbox for replies (imap://, imaps://, …)"
    )
    parser.add_argument(
        "--notify", choices=["jsonl"], help="also print every notification to stdout as JSON"
    )


def run_tray(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon tray``: the desktop app over the real agent."""
    run_agent = _load_run_agent()
    if run_agent is None:
        return 1
    try:
        tray_app = importlib.import_module("mailbeacon.tray.app")
    except ImportError as exc:
        log.error("cannot load the desktop app: %s", exc)
        print(
            "mailbeacon: the desktop app needs PySide6: pip install 'mailbeacon[tray]'",
            file=sys.stderr,
        )
        return 1

    # Assumed entry point: run_agent(args, profile, listener, stop_event) -> coroutine.
    def agent_main(listener: Any, stop_event: Any) -> Any:
        return run_agent(args, profile, listener, stop_event)

    code: int = tray_app.main(args, profile, agent_main)
    return code


def _load_run_agent() -> Any:
    """``mailbeacon.agent.runtime.run_agent``, or None with a message saying why not."""
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
    run_agent = getattr(runtime, "run_agent", None)
    if run_agent is None:
        log.error("%s has no run_agent", RUNTIME_MODULE)
        print(
            "mailbeacon: the agent runtime has no run_agent entry point; "
            "the desktop app cannot start.",
            file=sys.stderr,
        )
    return run_agent
