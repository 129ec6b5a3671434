"""``mailbeacon schedule`` and ``mailbeacon sequence``: follow-up from the command line.

They change the follow-up store directly; a running agent reads it again on its
next pass (agent/followup/loop.py), so nothing needs a restart. Exit codes as the
records commands: 0 done, 1 nothing found or the environment is in the way, 2 the
input was refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from mailbeacon.agent.followup.store import FollowupError, FollowupStore
from mailbeacon.core.durable import private_dir
from mailbeacon.core.profile import Profile


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``schedule``."""
    schedule = sub.add_parser("schedule", help="emails waiting to be sent later")
    schedule_sub = schedule.add_subparsers(dest="schedule_command", required=True)
    listing = schedule_sub.add_parser("list", help="every email waiting, soonest first")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(func=cmd_schedule_list)
    cancel = schedule_sub.add_parser("cancel", help="cancel a waiting email (never sent)")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(func=cmd_schedule_cancel)
    now = schedule_sub.add_parser("send-now", help="send a waiting email now")
    now.add_argument("id", type=int)
    now.set_defaults(func=cmd_schedule_send_now)


def open_store(profile: Profile) -> FollowupStore:
    """The profile's follow-up store (created if need be)."""
    private_dir(profile.data_dir)
    return FollowupStore.in_dir(profile.data_dir)


def iso(at: float | None) -> str | None:
    """A stored time as UTC ISO 8601 (seconds), or None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def plain(text: str) -> str:
    """Text from outside for a terminal: control characters replaced."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def fail(message: str, code: int) -> int:
    """Say why on stderr and return the exit code."""
    print(f"mailbeacon: {message}", file=sys.stderr)
    return code


def cmd_schedule_list(args: argparse.Namespace, profile: Profile) -> int:
    """``schedule list [--json]``."""
    try:
        store = open_store(profile)
    except FollowupError as exc:
        return fail(str(exc), 1)
    with_store = store.scheduled()
    store.close()
    if args.json:
        rows = [{**item.to_json(), "send_at": iso(item.send_at)} for item in with_store]
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not with_store:
        print("No emails are waiting to be sent later.")
    for item in with_store:
        when = datetime.fromtimestamp(item.send_at, UTC).astimezone()
        print(f"{item.id}\t{when:%Y-%m-%d %H:%M %Z}\t{plain(item.to_text)}\t{plain(item.subject)}")
    return 0


def cmd_schedule_cancel(args: argparse.Namespace, profile: Profile) -> int:
    """``schedule cancel ID``."""
    try:
        store = open_store(profile)
    except FollowupError as exc:
        return fail(str(exc), 1)
    try:
        if not store.cancel_scheduled(args.id):
            return fail(f"no email {args.id} is waiting to be sent (sent or cancelled?)", 1)
    finally:
        store.close()
    print(f"Cancelled scheduled email {args.id}; it will not be sent.")
    return 0


def cmd_schedule_send_now(args: argparse.Namespace, profile: Profile) -> int:
    """``schedule send-now ID``: due now; the running agent sends it on its next pass."""
    try:
        store = open_store(profile)
    except FollowupError as exc:
        return fail(str(exc), 1)
    try:
        if not store.reschedule(args.id, time.time()):
            return fail(f"no email {args.id} is waiting to be sent (sent or cancelled?)", 1)
    finally:
        store.close()
    print(f"Scheduled email {args.id} is due now; the running agent sends it within a second.")
    return 0
