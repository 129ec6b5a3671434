"""The ``mailbeacon`` command: a thin dispatcher over each package's own commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mailbeacon import __version__
from mailbeacon.core.profile import Profile
from mailbeacon.core.redact import RedactSecrets

# Each module has ``register(subparsers)``, which adds its sub-commands and sets
# ``func(args, profile) -> int`` on them. Packages own their commands.
_COMMAND_MODULES: tuple[str, ...] = (
    "mailbeacon.server.commands",
    "mailbeacon.agent.commands",
    "mailbeacon.agent.enroll_commands",
    "mailbeacon.agent.status_commands",
    "mailbeacon.agent.records.commands",
    "mailbeacon.agent.account.commands",
    "mailbeacon.agent.followup.commands",
    "mailbeacon.tray.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="mailbeacon", description="Email open and click tracking for the desktop."
    )
    parser.add_argument("--version", action="version", version=f"mailbeacon {__version__}")
    parser.add_argument(
        "--profile", metavar="DIR", help="profile folder (config, data, keyring namespace)"
    )
    parser.add_argument("--log-level", default="WARNING", help="operator log level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m mailbeacon``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(with_default_command(args_list))
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
    # aiosmtpd logs every SMTP command with its addresses at INFO: not in our logs.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    profile = Profile.resolve(args.profile)
    result: int = args.func(args, profile)
    return result


_OWN_OPTIONS = ("-h", "--help", "--version")


def with_default_command(argv: list[str]) -> list[str]:
    """Bare ``mailbeacon`` (maybe with agent options) is the desktop app: ``tray``."""
    rest = _rest(argv)
    if not rest or (rest[0].startswith("-") and rest[0] not in _OWN_OPTIONS):
        return [*_leading_globals(argv), "tray", *rest]
    return argv


def _leading_globals(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv) and argv[i] in ("--profile", "--log-level"):
        out += argv[i : i + 2]
        i += 2
    return out


def _rest(argv: list[str]) -> list[str]:
    return argv[len(_leading_globals(argv)) :]
