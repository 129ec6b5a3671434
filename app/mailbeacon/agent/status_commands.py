"""``mailbeacon status``: what works and what does not, as the running agent sees it.

It reads the running agent's ``status.json`` (agent/status.py); with no agent
running it says what the settings alone tell. Exit code 0 when the worst state is
fine or a pause, 1 when something needs the rep, so scripts can check it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mailbeacon.agent.settings.store import ConfigError, Settings
from mailbeacon.agent.status import Level, StatusReport, current_status
from mailbeacon.core.profile import Profile


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``status``."""
    status = sub.add_parser("status", help="show whether sending and tracking work")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=run_status)


def run_status(args: argparse.Namespace, profile: Profile) -> int:
    """Print the status; 1 when sending or tracking needs the rep."""
    try:
        # Not load_or_default: a status query must not move the rep's settings aside.
        settings = Settings.load(profile.config_file)
    except ConfigError as exc:
        print(f"mailbeacon status: {exc}", file=sys.stderr)
        return 2
    report, running = current_status(profile.data_dir, settings)
    if args.json:
        print(json.dumps({**report.to_json(), "agent_running": running}, ensure_ascii=False))
    else:
        print(describe(report, running))
    return 0 if report.headline().level in (Level.OK, Level.PAUSED) else 1


def describe(report: StatusReport, running: bool) -> str:
    """The status as a few plain lines for a terminal."""
    head = report.headline()
    lines = [head.text if running else f"MailBeacon is not running. {head.text}"]
    lines.append(f"Sending: {report.sending.state.value} ({report.sending.waiting} waiting)"
                 + (f" - {report.sending.detail}" if report.sending.detail else ""))
    lines.append(f"Tracking: {report.tracking.public_url or '(none)'} reachable "
                 f"{report.tracking.reachable.value} - {report.tracking.detail}")
    lines.append(f"Event stream: {report.stream.state.value}"
                 + (f" - {report.stream.detail}" if report.stream.detail else ""))
    if report.paused_until:
        lines.append(f"Notifications paused until {report.paused_until}")
    return "\n".join(_printable(line) for line in lines)


def _printable(text: str) -> str:
    # Server replies end up in details: no control characters on the terminal.
    return "".join(c if c.isprintable() else "?" for c in text)
