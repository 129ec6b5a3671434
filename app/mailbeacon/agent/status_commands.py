"""``mailbeacon status``: what works and what does not, as the running agent sees it.

It reads the running agent's ``status.json`` (agent/status.py); with no agent
running it says what the settings alone tell. ``--test-tracking`` also runs "Test
tracking" (``agent.tracking.check``, as the settings dialog does) and reports its
verdict: "yes" or "no" instead of "unknown" for a public address, with what each
step found. Exit code 0 when the worst state is fine or a pause, 1 when something
needs the rep, so scripts can check it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from typing import Any

from mailbeacon.agent.settings.secrets import SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import ConfigError, Settings
from mailbeacon.agent.status import (
    Level,
    Reachable,
    StatusReport,
    Tracking,
    current_status,
    tracking_status,
)
from mailbeacon.agent.tracking.check import check_tracking
from mailbeacon.core.profile import Profile

NO_KEY = (
    "No tracking key is stored: start MailBeacon once, or paste your team link in "
    "Settings, then test again."
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``status``."""
    status = sub.add_parser("status", help="show whether sending and tracking work")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--test-tracking", action="store_true",
        help="also fetch a test pixel as a recipient would (the name, the secure "
        "connection, the answer) and say whether recipients can reach tracking",
    )
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
    if args.test_tracking:
        report = replace(report, tracking=tested_tracking(report.tracking, profile, settings))
    if args.json:
        print(json.dumps({**report.to_json(), "agent_running": running}, ensure_ascii=False))
    else:
        print(describe(report, running))
    return 0 if report.headline().level in (Level.OK, Level.PAUSED) else 1


def tested_tracking(current: Tracking, profile: Profile, settings: Settings) -> Tracking:
    """Tracking as "Test tracking" finds it now (never "yes" for loopback or private)."""
    try:
        enrollment = SecretStore(profile.keyring_service, dict(os.environ)).enrollment()
    except SecretStoreUnavailable as exc:
        return replace(current, reachable=Reachable.UNKNOWN, detail=str(exc))
    if enrollment is None:
        return replace(current, reachable=Reachable.UNKNOWN, detail=NO_KEY)
    sender_domain = settings.account.email.rpartition("@")[2] or None
    check = asyncio.run(check_tracking(enrollment, sender_domain=sender_domain))
    return tracking_status(enrollment.server_url, (check.ok, check.message))


def describe(report: StatusReport, running: bool) -> str:
    """The status as a few plain lines for a terminal."""
    head = report.headline()
    lines = [head.text if running else f"MailBeacon is not running. {head.text}"]
    lines.append(f"Sending: {report.sending.state.value} ({report.sending.waiting} waiting)"
                 + (f" - {report.sending.detail}" if report.sending.detail else ""))
    # A tested address's detail is a line per step: each on a line of its own.
    first, *steps = report.tracking.detail.splitlines() or [""]
    lines.append(f"Tracking: {report.tracking.public_url or '(none)'} reachable "
                 f"{report.tracking.reachable.value} - {first}")
    lines.extend(f"  {step}" for step in steps)
    lines.append(f"Event stream: {report.stream.state.value}"
                 + (f" - {report.stream.detail}" if report.stream.detail else ""))
    if report.paused_until:
        lines.append(f"Notifications paused until {report.paused_until}")
    return "\n".join(_printable(line) for line in lines)


def _printable(text: str) -> str:
    # Server replies end up in details: no control characters on the terminal.
    return "".join(c if c.isprintable() else "?" for c in text)
