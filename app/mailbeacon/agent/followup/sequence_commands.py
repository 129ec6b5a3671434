"""``mailbeacon sequence create|enroll|status|pause|resume|remove``.

Every check happens before anything is stored: a file with a problem, a template
that does not exist, a contact missing a field some step needs (each such row is
named) — the command refuses (exit 2) and nothing is enrolled, so nothing can be
sent half. The running agent picks up what these commands store on its next pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from mailbeacon.agent.followup.cli_support import fail, iso, open_store, plain
from mailbeacon.agent.followup.enrolment import contact_row, create_sequence, enroll_rows
from mailbeacon.agent.followup.sequences import template_lookup
from mailbeacon.agent.followup.status import sequence_status
from mailbeacon.agent.followup.store import FollowupError, FollowupStore
from mailbeacon.agent.records.database import RecordsError
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.profile import Profile
from mailbeacon.core.sequence_spec import (
    ContactRow,
    SequenceError,
    is_address,
    parse_contacts_csv,
)

TEMPLATES_FILE = "templates.json"


def _refuse(problems: list[str] | tuple[str, ...], what: str) -> int:
    print(f"mailbeacon: {what}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {plain(problem)}", file=sys.stderr)
    return 2


def _store(profile: Profile) -> FollowupStore | None:
    try:
        return open_store(profile)
    except FollowupError as exc:
        fail(str(exc), 1)
        return None


def cmd_sequence_create(args: argparse.Namespace, profile: Profile) -> int:
    """``sequence create FILE``."""
    try:
        source = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"cannot read {args.file}: {exc}", 2)
    store = _store(profile)
    if store is None:
        return 1
    try:
        sequence = create_sequence(
            store, source, Settings.load_or_default(profile.config_file),
            template_lookup(profile.config_dir / TEMPLATES_FILE), time.time(),
        )  # fmt: skip
    except SequenceError as exc:
        return _refuse(exc.problems, f"{args.file} is not a usable sequence")
    finally:
        store.close()
    print(f"Created sequence {sequence.name!r} with {len(sequence.steps)} steps.")
    return 0


def _rows_from_args(args: argparse.Namespace, profile: Profile) -> list[ContactRow]:
    if args.csv:
        try:
            text = Path(args.csv).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SequenceError([f"cannot read {args.csv}: {exc}"]) from None
        return parse_contacts_csv(text)
    if not args.emails:
        raise SequenceError(["name at least one EMAIL, or --csv FILE"])
    wrong = [e for e in args.emails if not is_address(e.strip().lower())]
    if wrong:
        raise SequenceError([f"{e!r} is not an email address" for e in wrong])
    rows = []
    try:
        records = RecordsStore.for_profile(profile)
    except RecordsError:
        records = None
    try:
        for email in dict.fromkeys(e.strip().lower() for e in args.emails):
            rows.append(contact_row(email, records.contact(email) if records else None))
    finally:
        if records is not None:
            records.close()
    return rows


def cmd_sequence_enroll(args: argparse.Namespace, profile: Profile) -> int:
    """``sequence enroll NAME EMAIL…|--csv FILE``: all or nothing."""
    store = _store(profile)
    if store is None:
        return 1
    try:
        if store.sequence(args.name) is None:
            return fail(f"there is no sequence {args.name!r}", 1)
        try:
            rows = _rows_from_args(args, profile)
        except SequenceError as exc:
            return _refuse(exc.problems, "nobody was enrolled")
        templates = template_lookup(profile.config_dir / TEMPLATES_FILE)
        try:
            already = enroll_rows(store, args.name, rows, templates, time.time())
        except SequenceError as exc:
            return _refuse(exc.problems, "nobody was enrolled; these contacts lack a value")
    finally:
        store.close()
    for email in already:
        print(f"{plain(email)} was in {args.name!r} already: left as it was.")
    print(f"Enrolled {len(rows) - len(already)} contact(s) in {args.name!r}.")
    return 0


def cmd_sequence_status(args: argparse.Namespace, profile: Profile) -> int:
    """``sequence status NAME [--json]``."""
    store = _store(profile)
    if store is None:
        return 1
    try:
        records: RecordsStore | None = RecordsStore.for_profile(profile)
    except RecordsError:
        records = None
    try:
        status = sequence_status(store, records, args.name)
    finally:
        store.close()
        if records is not None:
            records.close()
    if status is None:
        return fail(f"there is no sequence {args.name!r}", 1)
    if args.json:
        print(json.dumps(status.to_json(iso), ensure_ascii=False))
        return 0
    print(f"{status.row.name} ({status.row.state}), {len(status.steps)} steps")
    for step in status.steps:
        print(f"  step {step.number}: sent {step.sent}, opens {step.opens}, "
              f"clicks {step.clicks}, replies {step.replies}")  # fmt: skip
    for contact in status.contacts:
        when = ""
        if contact.next_at is not None:
            local = datetime.fromtimestamp(contact.next_at, UTC).astimezone()
            when = f", next {local:%Y-%m-%d %H:%M %Z}"
        print(f"  {plain(contact.email)}: {contact.sent} sent, {contact.state}{when}")
    return 0


def cmd_sequence_state(args: argparse.Namespace, profile: Profile) -> int:
    """``sequence pause|resume NAME``."""
    store = _store(profile)
    if store is None:
        return 1
    try:
        if not store.set_sequence_state(args.name, args.state):
            return fail(f"there is no sequence {args.name!r}", 1)
    finally:
        store.close()
    print(f"Sequence {args.name!r} is {'paused' if args.state == 'paused' else 'running'}.")
    return 0


def cmd_sequence_remove(args: argparse.Namespace, profile: Profile) -> int:
    """``sequence remove NAME EMAIL``: nothing more is sent to that contact."""
    store = _store(profile)
    if store is None:
        return 1
    try:
        email = args.email.strip().lower()
        found = next((e for e in store.enrollments(args.name) if e.email == email), None)
        if found is None:
            return fail(f"{args.email} is not in sequence {args.name!r}", 1)
        if not store.leave(found.id, "removed", "removed by the rep"):
            return fail(f"{args.email} had left {args.name!r} already ({found.state})", 1)
    finally:
        store.close()
    print(f"Removed {email} from {args.name!r}; nothing more is sent to them.")
    return 0
