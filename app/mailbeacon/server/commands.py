"""``mailbeacon server serve``, ``add-user``, ``remove-user`` and ``rotate-key``
(operator tasks: see operator_commands).

``remove-user`` and ``rotate-key`` change the database only; a server running on it
(another process) notices within ``ServerConfig.users_check_seconds`` and refuses
the old API token and signing key from then on (users.py, docs/promises.md#isolation).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from mailbeacon.core.botlists import Thresholds
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import LANGUAGES
from mailbeacon.core.profile import Profile
from mailbeacon.server import meta, operator_commands, team_commands
from mailbeacon.server.cli_support import (
    EXIT_FAILURE,
    EXIT_USAGE,
    add_db_option,
    db_path,
    fail,
)
from mailbeacon.server.config import (
    DEFAULT_CLICK_TOKEN_MAX_DAYS,
    DEFAULT_FLOOD_WINDOW_SECONDS,
    DEFAULT_LISTEN,
    DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR,
    DEFAULT_POOL_SIZE,
    DEFAULT_PUBLIC_URL,
    ConfigError,
    Database,
    ServerConfig,
    load_secret,
    parse_listen,
    parse_networks,
)
from mailbeacon.server.schema import SchemaTooNew
from mailbeacon.server.store import Store, UserRecord
from mailbeacon.server.stores import DATABASE_ERRORS, OPEN_ERRORS, open_store
from mailbeacon.server.tracker import iso_utc
from mailbeacon.server.users import UserAdmin, create_user, signing_key

log = logging.getLogger(__name__)

SPOOL_DIR = "spool"  # in the profile's data dir, unless --spool-dir says otherwise
# The youngest generation of the garbage collector, for `server serve` (_tune_collector).
COLLECT_AFTER_ALLOCATIONS = 20_000

def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's sub-commands."""
    server = sub.add_parser("server", help="the tracking server")
    commands = server.add_subparsers(dest="server_command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the tracking server")
    serve.add_argument(
        "--listen",
        default=f"{DEFAULT_LISTEN[0]}:{DEFAULT_LISTEN[1]}",
        metavar="HOST:PORT",
        help="address to listen on (default %(default)s)",
    )
    _db_options(serve)
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="CIDR",
        help="a reverse proxy whose X-Forwarded-For is believed (repeatable)",
    )
    defaults = Thresholds()
    for option, default, hit in (
        ("--min-open-seconds", defaults.min_open_s, "an open"),
        ("--min-click-seconds", defaults.min_click_s, "a click"),
    ):
        serve.add_argument(
            option,
            type=_seconds,
            default=default,
            metavar="S",
            help=f"{hit} sooner than this after sending is a machine's (default %(default)s)",
        )
    serve.add_argument(
        "--truncate-ips",
        action="store_true",
        help="store only the /24 (IPv4) or /48 (IPv6) of each hit's address",
    )
    serve.add_argument(
        "--click-token-max-days",
        type=_max_days,
        default=DEFAULT_CLICK_TOKEN_MAX_DAYS,
        metavar="DAYS",
        help="a tracked link minted longer ago than this answers 404, like a forged one "
        "(docs/rules.md rule 4; default %(default)s)",
    )
    serve.add_argument(
        "--console-language",
        choices=("auto", *LANGUAGES),
        default="auto",
        help="the admin console's language: auto (each browser's Accept-Language, "
        "English when it asks for none of ours) or one for every browser",
    )
    serve.add_argument(
        "--flood-window-seconds",
        type=float,
        default=DEFAULT_FLOOD_WINDOW_SECONDS,
        metavar="S",
        help="identical hits (token, address, agent) within this are stored once with a "
        "count (0: off; default %(default)s)",
    )
    serve.add_argument(
        "--max-events-per-token-hour",
        type=int,
        default=DEFAULT_MAX_EVENTS_PER_TOKEN_HOUR,
        metavar="N",
        help="past this many stored events of one pixel or link in an hour, further hits "
        "are only counted (default %(default)s)",
    )
    serve.add_argument(
        "--pool-size",
        type=int,
        default=DEFAULT_POOL_SIZE,
        metavar="N",
        help="database connections for reads (stream backlogs, lookups) besides the "
        "writer's (default %(default)s)",
    )
    serve.add_argument(
        "--spool-dir",
        type=Path,
        metavar="PATH",
        help="PostgreSQL: where hits are stored while the database does not answer, "
        f"until they are replayed into it (default: {SPOOL_DIR} in the data dir)",
    )
    serve.add_argument(
        "--proxy-ranges",
        type=Path,
        metavar="PATH",
        help="Apple relay ranges from refresh-proxy-ranges (default: the file it writes in "
        "the data dir; the shipped snapshot when there is none)",
    )
    serve.set_defaults(func=_serve)

    add_user = commands.add_parser("add-user", help="create a user; prints the enrollment key")
    add_user.add_argument("name", metavar="NAME", help="the rep's name")
    _db_options(add_user)
    add_user.add_argument(
        "--json", action="store_true", help="print enrollment_key, user_id, api_token as JSON"
    )
    add_user.set_defaults(func=_add_user)

    remove = commands.add_parser(
        "remove-user",
        help="remove a user: their API token, key and tracking links stop working at once",
    )
    _which_user(remove)
    add_db_option(remove)
    remove.set_defaults(func=_remove_user)

    rotate = commands.add_parser(
        "rotate-key",
        help="give a user a new enrollment key; the old key and its tokens stop working",
    )
    _which_user(rotate)
    _db_options(rotate)
    rotate.add_argument(
        "--json", action="store_true", help="print enrollment_key, user_id, api_token as JSON"
    )
    rotate.set_defaults(func=_rotate_key)
    operator_commands.register(commands)
    team_commands.register(commands)


def _db_options(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    parser.add_argument(
        "--public-url", metavar="URL", help="base URL put into emails (the tracking domain)"
    )
    parser.add_argument(
        "--secret-file",
        type=Path,
        metavar="PATH",
        help="file holding the server secret (else MAILBEACON_SERVER_SECRET, else one kept "
        "in the database)",
    )


def _seconds(value: str) -> float:
    """A duration option: a finite number of seconds, zero or more."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: expected seconds, e.g. 2 or 0.5")
    return seconds


def _max_days(value: str) -> int:
    """``--click-token-max-days``: a whole number of days, at least 1."""
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected a whole number of days, at least 1 (e.g. 365)"
        )
    return days


class CommandFailed(Exception):
    """A command cannot go on; ``message`` tells the operator why."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _open_store(db: Database) -> Store:
    """The store, or CommandFailed with a message for the operator."""
    try:
        return open_store(db, role="mailbeacon-admin")
    except SchemaTooNew as exc:
        raise CommandFailed(str(exc)) from exc
    except OPEN_ERRORS as exc:
        log.debug("could not open %s", db, exc_info=True)
        raise CommandFailed(f"could not open the database {db}: {exc}") from exc


def _checked_public_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"--public-url {value!r}: expected http://... or https://...")
    return value.rstrip("/")


def serve_config(args: argparse.Namespace, profile: Profile) -> ServerConfig:
    """The server settings ``serve``'s options describe (ConfigError if they are wrong)."""
    host, port = parse_listen(args.listen)
    return ServerConfig(
        db_path=db_path(args, profile),
        host=host,
        port=port,
        public_url=_checked_public_url(args.public_url),
        trusted_proxies=parse_networks(args.trusted_proxy),
        secret=load_secret(args.secret_file),
        min_open_seconds=args.min_open_seconds,
        min_click_seconds=args.min_click_seconds,
        truncate_ips=args.truncate_ips,
        click_token_max_days=args.click_token_max_days,
        console_language=args.console_language,
        flood_window_seconds=args.flood_window_seconds,
        max_events_per_token_hour=args.max_events_per_token_hour,
        apple_ranges=args.proxy_ranges or operator_commands.default_apple_ranges(profile),
        pool_size=args.pool_size,
        spool_dir=args.spool_dir or profile.data_dir / SPOOL_DIR,
    )


def _which_user(parser: argparse.ArgumentParser) -> None:
    """NAME, and --id when several users share it (remove-user, rotate-key)."""
    parser.add_argument("name", metavar="NAME", help="the rep's name, as given to add-user")
    parser.add_argument("--id", type=int, metavar="ID", help="which one, if several share NAME")


def _serve(args: argparse.Namespace, profile: Profile) -> int:
    try:
        config = serve_config(args, profile)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    return _run(lambda: _serve_until_signalled(config))


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        # A faster event loop: measured ~25% more pixel hits/s (see tests/bench).
        uvloop = importlib.import_module("uvloop")
    except ImportError:  # pragma: no cover - a declared dependency
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def _serve_until_signalled(config: ServerConfig) -> int:
    # Imported here: uvicorn and Starlette are not needed by every mailbeacon command.
    from mailbeacon.server.tracking_server import (  # noqa: PLC0415
        ServerStartError,
        TrackingServer,
    )

    server = TrackingServer(config)
    try:
        await server.start()
    except (ServerStartError, ConfigError, SchemaTooNew) as exc:
        return fail(str(exc), EXIT_FAILURE)
    except OPEN_ERRORS as exc:
        log.debug("could not start the tracking server", exc_info=True)
        return fail(f"could not open the database {config.db_path}: {exc}", EXIT_FAILURE)
    _tune_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"MailBeacon tracking server listening on {server.url} (public URL {server.public_url})",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()
    return 0


def _tune_collector() -> None:
    """Fewer garbage collections for a long-running server (docs/performance.md).

    The profile of a loaded server showed ~11% of its CPU in the cyclic collector,
    walking again and again the objects that live as long as the process (the bot
    lists and address ranges loaded at start, the recent-hits window, the verified
    tokens). Those loaded at start are frozen out of every collection, and the
    youngest generation is collected after 20,000 allocations instead of 700 (a few
    hundred hits), so the older generations, whose collections walk everything, run
    about thirty times less often. Reference cycles are still collected, later.
    """
    gc.freeze()
    gc.set_threshold(COLLECT_AFTER_ALLOCATIONS, 10, 10)


def _add_user(args: argparse.Namespace, profile: Profile) -> int:
    name = str(args.name).strip()
    if not name:
        return fail("NAME must not be empty", EXIT_USAGE)
    try:
        path = db_path(args, profile)
        given_url = _checked_public_url(args.public_url)
        external = load_secret(args.secret_file)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        store = _open_store(path)
    except CommandFailed as exc:
        return fail(exc.message, exc.code)
    try:
        with store.transaction():
            secret = meta.enrollment_secret(store, external)
            url, source = meta.public_url(store, given_url)
            new = create_user(store, name, iso_utc(time.time()))
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    except DATABASE_ERRORS as exc:
        return fail(f"could not add the user to {path}: {exc}", EXIT_FAILURE)
    finally:
        store.close()
    if url is None:
        url = DEFAULT_PUBLIC_URL
        print(
            f"mailbeacon server: note: no --public-url given and the server was never served "
            f"from this database; the key points at {url}",
            file=sys.stderr,
        )
    else:
        log.info("public URL from %s: %s", source, url)
    enrollment = Enrollment(url, new.id, new.api_token, signing_key(secret, new.id))
    _print_enrollment(enrollment, args.json)
    return 0


def _print_enrollment(enrollment: Enrollment, as_json: bool) -> None:
    key = enrollment.encode()
    if as_json:
        print(json.dumps(
            {"enrollment_key": key, "user_id": enrollment.user_id,
             "api_token": enrollment.api_token}
        ))
    else:
        print(key)


def _open_admin(db: Database) -> UserAdmin:
    if isinstance(db, Path) and not db.is_file():
        raise CommandFailed(f"there is no database at {db}")
    return UserAdmin(_open_store(db))


def _the_user(admin: UserAdmin, name: str, user_id: int | None) -> UserRecord:
    """The one user NAME (and --id) designate, or CommandFailed saying why not."""
    named = admin.users_named(name)
    if user_id is not None:
        named = [user for user in named if user.id == user_id]
    if not named:
        which = f"named {name!r}" + ("" if user_id is None else f" with id {user_id}")
        raise CommandFailed(f"there is no user {which} in {admin.where}")
    if len(named) > 1:
        ids = ", ".join(str(user.id) for user in named)
        raise CommandFailed(
            f"{len(named)} users are named {name!r} (ids {ids}); add --id ID to say which",
            EXIT_USAGE,
        )
    return named[0]


def _remove_user(args: argparse.Namespace, profile: Profile) -> int:
    try:
        path = db_path(args, profile)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        admin = _open_admin(path)
        try:
            user = _the_user(admin, str(args.name), args.id)
            if not admin.remove_user(user.id):
                raise CommandFailed(f"user {user.id} was removed meanwhile")
        finally:
            admin.close()
    except CommandFailed as exc:
        return fail(exc.message, exc.code)
    except DATABASE_ERRORS as exc:
        return fail(f"could not remove the user from {path}: {exc}", EXIT_FAILURE)
    log.info("removed user %d (%s) from %s", user.id, user.name, path)
    print(
        f"removed user {user.name!r} (id {user.id}): their API token, enrollment key and "
        "tracking links are refused; a server running on this database applies it within "
        "a second and closes their streams. Their stored events stay until retention."
    )
    return 0


def _rotate_key(args: argparse.Namespace, profile: Profile) -> int:
    try:
        path = db_path(args, profile)
        given_url = _checked_public_url(args.public_url)
        external = load_secret(args.secret_file)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        admin = _open_admin(path)
        try:
            user = _the_user(admin, str(args.name), args.id)
            with admin.store.transaction():  # the secret as add-user checks it, read before
                secret = meta.enrollment_secret(admin.store, external)
                url, _source = meta.public_url(admin.store, given_url)
            rotated = admin.rotate(user.id)
            if rotated is None:
                raise CommandFailed(f"user {user.id} was removed meanwhile")
        finally:
            admin.close()
    except CommandFailed as exc:
        return fail(exc.message, exc.code)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    except DATABASE_ERRORS as exc:
        return fail(f"could not rotate the key in {path}: {exc}", EXIT_FAILURE)
    token, generation = rotated
    log.info("rotated the key of user %d (%s) to generation %d", user.id, user.name, generation)
    print(
        f"mailbeacon server: rotated the key of {user.name!r} (id {user.id}): the old "
        "enrollment key, API token and every link minted with it are refused from now "
        "on (a running server applies it within a second). Give the rep this new key:",
        file=sys.stderr,
    )
    enrollment = Enrollment(
        url or DEFAULT_PUBLIC_URL, user.id, token, signing_key(secret, user.id, generation)
    )
    _print_enrollment(enrollment, args.json)
    return 0
