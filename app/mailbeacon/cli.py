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
# ``func(args, profile) -> int`` on them. Packages own their commands. A command
# imports only the module that registers it (the others cost ~0.4 s together, which
# every start of the desktop app paid): this table says which one, and a test checks
# it against what the modules register.
_COMMANDS: dict[str, str] = {
    "server": "mailbeacon.server.commands",
    "agent": "mailbeacon.agent.commands",
    "mint": "mailbeacon.agent.commands",
    "enroll": "mailbeacon.agent.enroll_commands",
    "status": "mailbeacon.agent.status_commands",
    "activity": "mailbeacon.agent.records.commands",
    "record": "mailbeacon.agent.records.commands",
    "contact": "mailbeacon.agent.records.commands",
    "config": "mailbeacon.agent.records.commands",
    "account": "mailbeacon.agent.account.commands",
    "schedule": "mailbeacon.agent.followup.commands",
    "sequence": "mailbeacon.agent.followup.commands",
    "tray": "mailbeacon.tray.commands",
}


def command_modules() -> tuple[str, ...]:
    """Every module that registers commands, in the order ``--help`` lists them."""
    return tuple(dict.fromkeys(_COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: with only ``command``'s module when it names one, else
    with every command (``--help``, a mistyped command)."""
    parser = argparse.ArgumentParser(
        prog="mailbeacon", description="Email open and click tracking for the desktop."
    )
    parser.add_argument("--version", action="version", version=f"mailbeacon {__version__}")
    parser.add_argument(
        "--profile", metavar="DIR", help="profile folder (config, data, keyring namespace)"
    )
    parser.add_argument("--log-level", default="WARNING", help="operator log level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    one = _COMMANDS.get(command or "")
    for name in (one,) if one is not None else command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m mailbeacon``."""
    args_list = with_default_command(list(sys.argv[1:] if argv is None else argv))
    rest = _rest(args_list)
    args = build_parser(rest[0] if rest else None).parse_args(args_list)
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
