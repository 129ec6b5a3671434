"""What the ``mailbeacon server`` sub-commands share: exit codes, the database option,
and how a failure is told to the operator."""

from __future__ import annotations

import argparse
import sys

from mailbeacon.core.profile import Profile
from mailbeacon.server.config import Database, parse_db_url

EXIT_USAGE = 2
EXIT_FAILURE = 1
DB_FILE = "server.db"  # in the profile's data dir, unless --db says otherwise


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--db URL``."""
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLite path, sqlite:///PATH or postgresql://USER@HOST/NAME (default: a SQLite "
        "file in the data dir)",
    )


def db_path(args: argparse.Namespace, profile: Profile) -> Database:
    """The database ``--db`` names, or the default file (ConfigError if malformed)."""
    return parse_db_url(args.db, profile.data_dir / DB_FILE)


def fail(message: str, code: int) -> int:
    """Tell the operator why the command stopped; returns the exit code."""
    print(f"mailbeacon server: {message}", file=sys.stderr)
    return code
