"""The team's commands, for scripts: ``server policy get|set|clear`` and ``server report``
give what the console's Policy and Team report pages give."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mailbeacon.core.policy import POLICY_KEYS, PolicyError, TeamPolicy
from mailbeacon.core.profile import Profile
from mailbeacon.server.admin.accounts import AdminError, add_admin
from mailbeacon.server.cli_support import EXIT_FAILURE, EXIT_USAGE, add_db_option, db_path, fail
from mailbeacon.server.config import DEFAULT_PUBLIC_URL, ConfigError
from mailbeacon.server.meta import public_url
from mailbeacon.server.schema import SchemaTooNew
from mailbeacon.server.store import Store
from mailbeacon.server.stores import DATABASE_ERRORS, OPEN_ERRORS, open_store
from mailbeacon.server.team import clear_policy_item, load_policy, set_policy_item, team_report
from mailbeacon.server.tracker import iso_utc

log = logging.getLogger(__name__)

DEFAULT_REPORT_WEEKS = 8


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``policy`` and ``report`` to ``mailbeacon server``."""
    keys = ", ".join(POLICY_KEYS)
    policy = commands.add_parser("policy", help="the team's tracking policy every rep follows")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    get = actions.add_parser("get", help="print the policy (or one key)")
    get.add_argument("key", nargs="?", metavar="KEY", help=f"one of: {keys}")
    get.add_argument("--json", action="store_true", help="print it as JSON")
    add_db_option(get)
    get.set_defaults(func=_get)
    set_ = actions.add_parser("set", help="decide KEY for every rep")
    set_.add_argument("key", metavar="KEY", help=f"one of: {keys}")
    set_.add_argument("value", metavar="VALUE")
    set_.add_argument(
        "--enforce",
        action="store_true",
        help="reps cannot change it (without: a default each rep may change)",
    )
    add_db_option(set_)
    set_.set_defaults(func=_set)
    clear = actions.add_parser("clear", help="leave KEY to each rep again")
    clear.add_argument("key", metavar="KEY")
    add_db_option(clear)
    clear.set_defaults(func=_clear)

    report = commands.add_parser(
        "report", help="per rep and week: tracked emails, human opens, clicks, replies"
    )
    report.add_argument("--json", action="store_true", help="print the rows as JSON")
    report.add_argument(
        "--weeks",
        type=int,
        default=DEFAULT_REPORT_WEEKS,
        metavar="N",
        help="this many weeks back (default %(default)s)",
    )
    add_db_option(report)
    report.set_defaults(func=_report)

    admin = commands.add_parser(
        "add-admin",
        help="create an administrator of the web console (/admin); prints a one-time set-up link",
    )
    admin.add_argument("name", metavar="NAME", help="the administrator's login name")
    admin.add_argument(
        "--public-url",
        metavar="URL",
        help="the server's public address (default: the one it was last served with)",
    )
    add_db_option(admin)
    admin.set_defaults(func=_add_admin)


def _open(args: argparse.Namespace, profile: Profile) -> Store | int:
    try:
        path = db_path(args, profile)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        return open_store(path, role="mailbeacon-admin")
    except SchemaTooNew as exc:
        return fail(str(exc), EXIT_FAILURE)
    except OPEN_ERRORS as exc:
        return fail(f"could not open the database {path}: {exc}", EXIT_FAILURE)


def describe(policy: TeamPolicy) -> list[str]:
    """One line per key: value, and whether it is enforced, a default or the rep's."""
    lines = []
    for key, spec in POLICY_KEYS.items():
        item = policy.item(key)
        if item is None:
            lines.append(f"{key} = {spec.default or '(empty)'}  (not set: each rep decides)")
        else:
            how = "enforced" if item.enforced else "default, reps may change it"
            lines.append(f"{key} = {item.value or '(empty)'}  ({how})")
    return lines


def _get(args: argparse.Namespace, profile: Profile) -> int:
    store = _open(args, profile)
    if isinstance(store, int):
        return store
    try:
        policy = load_policy(store)
    except DATABASE_ERRORS as exc:
        return fail(f"could not read the policy: {exc}", EXIT_FAILURE)
    finally:
        store.close()
    if args.key is not None and args.key not in POLICY_KEYS:
        return fail(f"{args.key!r} is not a policy key; valid keys: {', '.join(POLICY_KEYS)}",
                    EXIT_USAGE)  # fmt: skip
    if args.json:
        data = policy.to_json()
        print(json.dumps(data["items"].get(args.key) if args.key else data))
        return 0
    for line in describe(policy):
        if args.key is None or line.startswith(f"{args.key} "):
            print(line)
    return 0


def _set(args: argparse.Namespace, profile: Profile) -> int:
    store = _open(args, profile)
    if isinstance(store, int):
        return store
    try:
        policy = set_policy_item(store, args.key, args.value, args.enforce, iso_utc(time.time()))
    except PolicyError as exc:
        return fail(str(exc), EXIT_USAGE)
    except DATABASE_ERRORS as exc:
        return fail(f"could not change the policy: {exc}", EXIT_FAILURE)
    finally:
        store.close()
    log.info("team policy version %d: %s", policy.version, args.key)
    line = describe(policy)[list(POLICY_KEYS).index(args.key)]
    print(f"policy version {policy.version}: {line}")
    print("a server running on this database sends it to every connected agent within a second")
    return 0


def _clear(args: argparse.Namespace, profile: Profile) -> int:
    store = _open(args, profile)
    if isinstance(store, int):
        return store
    try:
        policy = clear_policy_item(store, args.key, iso_utc(time.time()))
    except PolicyError as exc:
        return fail(str(exc), EXIT_USAGE)
    except DATABASE_ERRORS as exc:
        return fail(f"could not change the policy: {exc}", EXIT_FAILURE)
    finally:
        store.close()
    print(f"policy version {policy.version}: {args.key} is each rep's own again")
    return 0


def report_since(weeks: int, now: datetime) -> str:
    """The start (a Monday, UTC) of the report's first week."""
    today = now.astimezone(UTC).date()
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=max(weeks, 1) - 1)
    return f"{monday.isoformat()}T00:00:00Z"


def _report(args: argparse.Namespace, profile: Profile) -> int:
    store = _open(args, profile)
    if isinstance(store, int):
        return store
    try:
        rows = team_report(store, report_since(args.weeks, datetime.now(UTC)))
    except DATABASE_ERRORS as exc:
        return fail(f"could not read the report: {exc}", EXIT_FAILURE)
    finally:
        store.close()
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    print(f"{'week':10}  {'rep':20} {'tracked':>7} {'opens':>6} {'clicks':>6} "
          f"{'replies':>7} {'filtered':>8}")  # fmt: skip
    for row in rows:
        print(f"{row.week:10}  {row.rep[:20]:20} {row.tracked:7d} {row.opens:6d} "
              f"{row.clicks:6d} {row.replies:7d} {row.filtered_share:8.0%}")  # fmt: skip
    return 0


def _add_admin(args: argparse.Namespace, profile: Profile) -> int:
    store = _open(args, profile)
    if isinstance(store, int):
        return store
    now = time.time()
    try:
        token = add_admin(store, str(args.name), now, iso_utc(now))
        url, _source = public_url(store, args.public_url)
    except AdminError as exc:
        return fail(str(exc), EXIT_USAGE)
    except DATABASE_ERRORS as exc:
        return fail(f"could not add the administrator: {exc}", EXIT_FAILURE)
    finally:
        store.close()
    base = url or DEFAULT_PUBLIC_URL
    log.info("administrator %s: set-up link issued", args.name)
    print(f"{base}/admin/setup/{token}")
    print(
        "mailbeacon server: open this link once, within 3 days, to choose the password; "
        "the console is at /admin of the tracking server from now on",
        file=sys.stderr,
    )
    return 0
