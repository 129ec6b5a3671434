"""Commands over the records store, the settings and the keyring.

``activity``, ``record EMAIL``, ``contact EMAIL`` and ``config get|set|list``
(docs/interfaces.md). Exit codes: 0 done; 1 nothing found or the environment is in the
way (damaged file, no keyring); 2 the input was refused (unknown key, bad value).
Messages go to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from mailbeacon.agent.records.database import RecordsError
from mailbeacon.agent.records.model import (
    EVENT_TYPES,
    VERDICTS,
    ActivityFilter,
    ActivityRow,
    ContactRecord,
    EventEntry,
    SentEntry,
)
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import (
    KEYS,
    SECRET_KEYS,
    ConfigError,
    Settings,
    unknown_key_message,
)
from mailbeacon.core.enrollment import Enrollment, EnrollmentError
from mailbeacon.core.profile import Profile

log = logging.getLogger(__name__)

OK, NOT_FOUND, REFUSED = 0, 1, 2
DEFAULT_ACTIVITY_LIMIT = 100
NO_BASIS = ("none", "")

Handler = Callable[[argparse.Namespace, Profile], int]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``activity``, ``record``, ``contact`` and ``config``."""
    activity = sub.add_parser("activity", help="the activity feed: every event and its verdict")
    activity.add_argument("--json", action="store_true", help="print one JSON array")
    activity.add_argument(
        "--limit", type=_positive, default=DEFAULT_ACTIVITY_LIMIT,
        help=f"newest N events (default {DEFAULT_ACTIVITY_LIMIT})",
    )
    activity.add_argument("--all", action="store_true", help="every event, no limit")
    activity.add_argument("--type", action="append", choices=EVENT_TYPES, help="only this type")
    activity.add_argument(
        "--verdict", action="append", choices=VERDICTS, help="only this verdict"
    )
    activity.set_defaults(func=_guarded(cmd_activity))

    record = sub.add_parser("record", help="one contact's properties and timeline")
    record.add_argument("email", metavar="EMAIL")
    record.add_argument("--json", action="store_true", help="print one JSON object")
    record.add_argument(
        "--all-verdicts", action="store_true",
        help="also show opens and clicks no human made (bot, proxy, self)",
    )
    record.set_defaults(func=_guarded(cmd_record))

    contact = sub.add_parser("contact", help="set a contact's lawful basis, name or company")
    contact.add_argument("email", metavar="EMAIL")
    contact.add_argument(
        "--lawful-basis", metavar="BASIS|none",
        help="lawful basis for processing (e.g. consent, contract, legitimate-interest); "
        "'none' clears it",
    )
    contact.add_argument("--name", help="the contact's name")
    contact.add_argument("--company", help="the contact's company")
    contact.add_argument("--json", action="store_true", help="print the contact as JSON")
    contact.set_defaults(func=_guarded(cmd_contact))

    config = sub.add_parser("config", help="read and change settings (secrets: the keyring)")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    get = config_sub.add_parser("get", help="print a setting (a secret: only whether it is set)")
    get.add_argument("key", metavar="KEY")
    get.add_argument("--json", action="store_true", help="print one JSON object")
    get.set_defaults(func=_guarded(cmd_config_get))
    put = config_sub.add_parser("set", help="change a setting (a secret goes to the keyring)")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE", help="the value; for a secret '-' reads stdin")
    put.set_defaults(func=_guarded(cmd_config_set))
    listing = config_sub.add_parser("list", help="every setting with its value and meaning")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=_guarded(cmd_config_list))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _guarded(handler: Handler) -> Handler:
    """Turn the errors a rep can fix into a message and an exit code, never a traceback."""

    def run(args: argparse.Namespace, profile: Profile) -> int:
        try:
            return handler(args, profile)
        except (SettingError, EnrollmentError) as exc:
            return _fail(str(exc), REFUSED)
        except (ConfigError, RecordsError, SecretStoreUnavailable) as exc:
            return _fail(str(exc), NOT_FOUND)

    return run


def _fail(message: str, code: int, err: TextIO | None = None) -> int:
    print(f"mailbeacon: {message}", file=err or sys.stderr)
    return code


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _plain(text: str | None) -> str:
    """Text safe for a terminal: control characters (escape codes) replaced."""
    return "".join(ch if ch.isprintable() else "?" for ch in (text or ""))


def _secrets(profile: Profile) -> SecretStore:
    # The command line is the boundary where the process environment is read.
    return SecretStore(profile.keyring_service, dict(os.environ))


# ---------------------------------------------------------------- records


def cmd_activity(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon activity``."""
    filters = ActivityFilter(types=tuple(args.type or ()), verdicts=tuple(args.verdict or ()))
    with RecordsStore.for_profile(profile) as store:
        rows = store.activity(None if args.all else args.limit, 0, filters)
    if args.json:
        _print_json([row.to_json() for row in rows])
    else:
        for row in rows:
            print(_activity_line(row))
        if not rows:
            print("No activity yet.")
    return OK


def _activity_line(row: ActivityRow) -> str:
    event = row.event
    who = "Someone" if event.anonymous or not event.contact else event.contact
    extra = f" {event.url}" if event.url else ""
    inferred = " (inferred)" if event.inferred else ""
    return (
        f"{event.at}  {event.type:<15} {event.verdict:<6} {_plain(who)}  "
        f"{_plain(row.subject)!r}{inferred}{_plain(extra)}  [{_plain(event.reason)}]"
    )


def cmd_record(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon record EMAIL``."""
    try:
        with RecordsStore.for_profile(profile) as store:
            found = store.contact_record(args.email, include_non_human=args.all_verdicts)
    except ValueError as exc:
        return _fail(str(exc), REFUSED)
    if found is None:
        return _fail(f"no record of {args.email}: nothing was sent to or heard from it", NOT_FOUND)
    if args.json:
        _print_json(found.to_json())
    else:
        print(_record_text(found))
    return OK


def _record_text(found: ContactRecord) -> str:
    contact = found.contact
    lines = [
        f"{_plain(contact.name) or contact.email} <{contact.email}>",
        f"  company:         {_plain(contact.company) or '-'}",
        f"  lawful basis:    {_plain(contact.lawful_basis) or '-'}",
        f"  last open:       {contact.last_open or '-'}",
        f"  last click:      {contact.last_click or '-'}",
        f"  last reply:      {contact.last_reply or '-'}",
        f"  last engagement: {contact.last_engagement or '-'}",
        f"  opens {found.opens}, clicks {found.clicks}, replies {found.replies}"
        + (", address bounces" if contact.bounced else ""),
        "  timeline:",
    ]
    for entry in found.timeline:
        if isinstance(entry, SentEntry):
            logged = ", logged" if entry.copy else ""
            tracked = "tracked" if entry.email.tracked else "untracked"
            lines.append(
                f"    {entry.at}  sent ({entry.field}, {tracked}{logged}) "
                f"{_plain(entry.email.subject)!r}"
            )
        elif isinstance(entry, EventEntry):
            event = entry.event
            lines.append(
                f"    {entry.at}  {event.type} ({event.verdict}) {_plain(entry.subject)!r}"
                + (f" {_plain(event.url)}" if event.url else "")
            )
    return "\n".join(lines)


def cmd_contact(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon contact EMAIL [--lawful-basis B|none] [--name N] [--company C]``."""
    if "@" not in args.email:
        return _fail(f"not an email address: {args.email!r}", REFUSED)
    try:
        with RecordsStore.for_profile(profile) as store:
            contact = store.upsert_contact(args.email, name=args.name, company=args.company)
            if args.lawful_basis is not None:
                basis = args.lawful_basis.strip()
                contact = store.set_lawful_basis(
                    args.email, None if basis.lower() in NO_BASIS else basis
                )
    except ValueError as exc:
        return _fail(str(exc), REFUSED)
    if args.json:
        _print_json(contact.to_json())
    else:
        print(f"{contact.email}: lawful basis {contact.lawful_basis or 'none'}"
              + (f", name {_plain(contact.name)}" if contact.name else "")
              + (f", company {_plain(contact.company)}" if contact.company else ""))
    return OK


# ---------------------------------------------------------------- config


def cmd_config_get(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon config get KEY``: a secret prints only whether it is set."""
    key = args.key
    if key in SECRET_KEYS:
        is_set = _secrets(profile).is_set(Secret(SECRET_KEYS[key]))
        if args.json:
            _print_json({"key": key, "secret": True, "set": is_set})
        else:
            print("set" if is_set else "not set")
        return OK
    settings = Settings.load(profile.config_file)
    text = settings.get(key)
    if args.json:
        _print_json({"key": key, "value": settings.value(key)})
    else:
        print(text)
    return OK


def cmd_config_set(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon config set KEY VALUE``."""
    key, value = args.key, args.value
    if key in SECRET_KEYS:
        return _set_secret(profile, key, value)
    if key not in KEYS:
        raise SettingError(unknown_key_message(key))
    settings = Settings.load(profile.config_file)
    settings.set(key, value)
    settings.save(profile.config_file)
    log.info("setting %s changed", key)
    print(f"{key} = {settings.get(key)}")
    return OK


def _set_secret(profile: Profile, key: str, value: str) -> int:
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        return _fail(f"{key}: the value must not be empty", REFUSED)
    store = _secrets(profile)
    if key == "server.enrollment":
        enrollment = Enrollment.decode(value)
        settings = Settings.load(profile.config_file)
        settings.set("server.url", enrollment.server_url)
        settings.set("server.mode", "remote")
        store.set_enrollment(enrollment)
        settings.save(profile.config_file)
        print(f"enrolled with {enrollment.server_url} as user {enrollment.user_id}; "
              "server.mode = remote")
        return OK
    store.set(Secret(SECRET_KEYS[key]), value)
    log.info("secret %s stored in the keyring", key)
    print(f"{key} stored in the keyring")
    return OK


def cmd_config_list(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon config list``: every key, its value and what it does."""
    settings = Settings.load(profile.config_file)
    if args.json:
        _print_json({key: settings.value(key) for key in KEYS})
        return OK
    for key, text in settings.items():
        print(f"{key} = {text}    # {KEYS[key].doc}")
    for key in SECRET_KEYS:
        print(f"{key} = (secret, in the keyring)")
    return OK
