"""Operator commands: ``server backup``, ``server retention``, ``server refresh-proxy-ranges``,
``server migrate``."""

from __future__ import annotations

import argparse
import logging
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbeacon.core.profile import Profile
from mailbeacon.server.cli_support import (
    EXIT_FAILURE,
    EXIT_USAGE,
    add_db_option,
    db_path,
    fail,
)
from mailbeacon.server.config import ConfigError, PostgresUrl, parse_db_url
from mailbeacon.server.maintenance import (
    MaintenanceError,
    apply_retention,
    backup,
    pg_dump_command,
)
from mailbeacon.server.migrate import MigrationRefused, migrate
from mailbeacon.server.proxy_ranges import APPLE_EGRESS_URL, RangeRefreshError, refresh_apple_ranges
from mailbeacon.server.schema import SchemaTooNew
from mailbeacon.server.stores import OPEN_ERRORS, open_postgres, open_store

log = logging.getLogger(__name__)

APPLE_RANGES_FILE = "apple-egress-ip-ranges.csv"
FETCH_TIMEOUT = 60.0
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024  # Apple's list is tens of MB; far more is no list

Fetch = Callable[[str], bytes]


def default_apple_ranges(profile: Profile) -> Path:
    """Where ``refresh-proxy-ranges`` writes Apple's list and ``serve`` reads it."""
    return profile.data_dir / APPLE_RANGES_FILE


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the operator sub-commands to ``mailbeacon server``."""
    copy = commands.add_parser(
        "backup", help="copy the database, consistently, while the server runs"
    )
    add_db_option(copy)
    copy.add_argument("dest", type=Path, metavar="DEST", help="the file to write (must not exist)")
    copy.set_defaults(func=_backup)

    retention = commands.add_parser(
        "retention", help="delete old events; optionally truncate old IP addresses"
    )
    add_db_option(retention)
    retention.add_argument(
        "--days", type=_positive_days, required=True, metavar="N",
        help="delete events older than N days",
    )
    retention.add_argument(
        "--truncate-ips-days", type=_days, metavar="M",
        help="keep only the /24 (IPv4) or /48 (IPv6) of addresses of events older than M days",
    )
    retention.set_defaults(func=_retention)

    refresh = commands.add_parser(
        "refresh-proxy-ranges",
        help="download Apple's privacy-relay address ranges (restart serve to use them)",
    )
    refresh.add_argument(
        "--dest", type=Path, metavar="PATH",
        help=f"where to write them (default: {APPLE_RANGES_FILE} in the data dir, "
        "where serve looks)",
    )
    refresh.add_argument(
        "--url", default=APPLE_EGRESS_URL, metavar="URL", help="the list (default: Apple's)"
    )
    refresh.set_defaults(func=_refresh)

    move = commands.add_parser(
        "migrate",
        help="copy a SQLite server database into PostgreSQL (users, keys, events and their "
        "ids): every link already sent keeps working; resumable",
    )
    move.add_argument("--from", dest="source", required=True, metavar="URL",
                      help="the SQLite database: sqlite:///PATH or a path")
    move.add_argument("--to", dest="target", required=True, metavar="URL",
                      help="the PostgreSQL database: postgresql://USER@HOST/NAME")
    move.add_argument(
        "--into-non-empty", "--force", action="store_true",
        help="allow a target that already holds users or events (ids must not collide)",
    )
    move.set_defaults(func=_migrate)

    restored = commands.add_parser(
        "restored",
        help="PostgreSQL: after pg_restore, start a new generation of event ids above "
        "every id agents saw (a restored SQLite backup does it by itself)",
    )
    add_db_option(restored)
    restored.set_defaults(func=_restored)


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not 0 <= days < 100_000:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a number of days, e.g. 30")
    return days


def _positive_days(value: str) -> float:
    days = _days(value)
    if days <= 0:
        # 0 would delete every event at once: surely not what anyone meant.
        raise argparse.ArgumentTypeError(f"{value!r}: expected more than 0 days")
    return days


def _backup(args: argparse.Namespace, profile: Profile) -> int:
    try:
        source = db_path(args, profile)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    if isinstance(source, PostgresUrl):
        # PostgreSQL's own tool takes a consistent copy while the servers run.
        return fail(
            "on PostgreSQL, back up with pg_dump (one consistent snapshot while the "
            f"servers run): {pg_dump_command(source.url, Path(args.dest).expanduser())}; "
            "restore with pg_restore --dbname=URL into an empty database, then run "
            "`mailbeacon server restored --db URL` before serving it",
            EXIT_USAGE,
        )
    try:
        result = backup(source, Path(args.dest).expanduser())
    except MaintenanceError as exc:
        return fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        return fail(f"could not write {args.dest}: {exc.strerror or exc}", EXIT_FAILURE)
    print(
        f"backed up {source} to {result.path}: {result.events} events "
        f"(schema version {result.schema_version})"
    )
    return 0


def _retention(args: argparse.Namespace, profile: Profile, now: datetime | None = None) -> int:
    try:
        path = db_path(args, profile)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    if isinstance(path, Path) and not path.is_file():
        return fail(f"there is no database at {path}", EXIT_FAILURE)
    try:
        store = open_store(path, role="mailbeacon-retention")
    except SchemaTooNew as exc:
        return fail(str(exc), EXIT_FAILURE)
    except OPEN_ERRORS as exc:
        return fail(f"could not open the database {path}: {exc}", EXIT_FAILURE)
    try:
        result = apply_retention(
            store, now or datetime.now(UTC), args.days, args.truncate_ips_days
        )
    except Exception as exc:  # sqlite3 errors: locked for too long, disk full...
        log.debug("retention failed", exc_info=True)
        return fail(
            f"retention on {path} stopped: {exc} (what was done so far is kept)", EXIT_FAILURE
        )
    finally:
        store.close()
    print(
        f"deleted {result.deleted_events} events older than {args.days:g} days "
        f"(before {result.deleted_before}) and {result.deleted_revisions} revisions"
    )
    if result.truncated_before is not None:
        print(
            f"truncated the IP addresses of {result.truncated_ips} events older than "
            f"{args.truncate_ips_days:g} days (before {result.truncated_before})"
        )
    return 0


def _migrate(args: argparse.Namespace, profile: Profile) -> int:
    try:
        source = parse_db_url(args.source, Path())
        target = parse_db_url(args.target, Path())
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    if not isinstance(source, Path) or not str(source) or str(source) == ".":
        return fail("--from: give the SQLite database (sqlite:///PATH or a path)", EXIT_USAGE)
    if not isinstance(target, PostgresUrl):
        return fail("--to: give the PostgreSQL database (postgresql://USER@HOST/NAME)",
                    EXIT_USAGE)
    try:
        result = migrate(source, target.url, into_non_empty=args.into_non_empty)
    except MigrationRefused as exc:
        return fail(str(exc), EXIT_FAILURE)
    except OPEN_ERRORS as exc:
        log.debug("migrate failed", exc_info=True)
        return fail(
            f"migrate stopped: {exc} (what was copied is kept; run the same command again "
            "to go on)", EXIT_FAILURE,
        )
    resumed = f" (resumed after id {result.resumed_after})" if result.resumed_after else ""
    print(
        f"copied {result.users} users, {result.events} events and {result.revisions} "
        f"revisions{resumed} into {target}; events up to id {result.last_id}. Serve with "
        f"--db {target} (and the same --secret-file, if you use one)."
    )
    return 0


def _restored(args: argparse.Namespace, profile: Profile) -> int:
    try:
        db = db_path(args, profile)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    if not isinstance(db, PostgresUrl):
        return fail("a restored SQLite backup starts its new generation by itself; "
                    "restored is for PostgreSQL (--db postgresql://…)", EXIT_USAGE)
    try:
        store = open_postgres(db, "mailbeacon-restored")
        try:
            generation, floor = store.new_generation(time.time())
        finally:
            store.close()
    except OPEN_ERRORS as exc:
        return fail(f"could not start a new generation in {db}: {exc}", EXIT_FAILURE)
    print(f"{db}: generation {generation}; new events get ids above {floor}, so agents "
          "receive every one of them")
    return 0


def fetch_url(url: str) -> bytes:
    """Download ``url`` (http, https or file), refusing absurd sizes."""
    if not url.startswith(("https://", "http://", "file:")):
        raise ValueError(f"{url!r}: expected an https:// URL")
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - scheme checked
        body: bytes = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"{url} sent more than {MAX_DOWNLOAD_BYTES} bytes")
    return body


def _refresh(args: argparse.Namespace, profile: Profile, fetch: Fetch = fetch_url) -> int:
    dest = Path(args.dest).expanduser() if args.dest else default_apple_ranges(profile)
    try:
        count = refresh_apple_ranges(fetch, dest, url=args.url)
    except RangeRefreshError as exc:
        return fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        return fail(f"could not write {dest}: {exc.strerror or exc}", EXIT_FAILURE)
    print(
        f"wrote {count} Apple relay address ranges to {dest}; restart `mailbeacon server "
        "serve` to use them"
    )
    return 0
