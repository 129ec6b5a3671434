"""``mailbeacon schedule`` and ``mailbeacon sequence``: follow-up from the command line.

They change the follow-up store directly; a running agent reads it again on its
next pass (agent/followup/loop.py), so nothing needs a restart. Exit codes as the
records commands: 0 done, 1 nothing found or the environment is in the way, 2 the
input was refused.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from mailbeacon.agent.followup.cli_support import fail, iso, open_store, plain
from mailbeacon.agent.followup.sequence_commands import (
    cmd_sequence_create,
    cmd_sequence_enroll,
    cmd_sequence_remove,
    cmd_sequence_state,
    cmd_sequence_status,
)
from mailbeacon.agent.followup.store import FollowupError
from mailbeacon.core.profile import Profile


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``schedule`` and ``sequence``."""
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
    register_sequence(sub)


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


# ------------------------------------------------------------------ sequences


def register_sequence(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``sequence create|enroll|status|pause|resume|remove``."""
    sequence = sub.add_parser("sequence", help="emails sent in steps until the contact answers")
    inner = sequence.add_subparsers(dest="sequence_command", required=True)
    create = inner.add_parser("create", help="store a sequence from its TOML file")
    create.add_argument("file")
    create.set_defaults(func=cmd_sequence_create)
    enroll = inner.add_parser("enroll", help="enrol contacts (addresses, or a CSV)")
    enroll.add_argument("name")
    enroll.add_argument("emails", nargs="*", metavar="EMAIL")
    enroll.add_argument("--csv", metavar="FILE", help="email, name, company and custom columns")
    enroll.set_defaults(func=cmd_sequence_enroll)
    status = inner.add_parser("status", help="who is at which step")
    status.add_argument("name")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_sequence_status)
    for verb, state in (("pause", "paused"), ("resume", "active")):
        command = inner.add_parser(verb, help=f"{verb} the whole sequence")
        command.add_argument("name")
        command.set_defaults(func=cmd_sequence_state, state=state)
    remove = inner.add_parser("remove", help="take a contact out (nothing more is sent)")
    remove.add_argument("name")
    remove.add_argument("email")
    remove.set_defaults(func=cmd_sequence_remove)
