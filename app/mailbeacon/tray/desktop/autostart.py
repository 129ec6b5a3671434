"""Start MailBeacon at login: the freedesktop autostart entry (setting ``app.autostart``).

Desktops that follow the XDG Autostart specification (GNOME, KDE, Xfce, Cinnamon,
MATE, LXQt, ...) start every ``$XDG_CONFIG_HOME/autostart/*.desktop`` entry at login.
Turning the setting on writes ``mailbeacon.desktop`` there; turning it off removes it.
Only this file is ever touched, and only under the ``config_home`` the caller passes
(tests pass a temporary folder, never the rep's own).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mailbeacon.core.durable import atomic_write
from mailbeacon.core.language import ENGLISH, Language

log = logging.getLogger(__name__)

ENTRY_NAME = "mailbeacon.desktop"
ICON_NAME = "mailbeacon"  # installed by packaging/linux/install.sh
# Characters that make the desktop entry spec require quoting an Exec argument.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")
# Inside a quoted Exec argument these take a backslash.
_ESCAPED_IN_QUOTES = set('"`$\\')


class AutostartError(Exception):
    """The autostart entry could not be written or removed; the message says why."""


def entry_path(config_home: Path) -> Path:
    """Where the autostart entry lives: ``<config_home>/autostart/mailbeacon.desktop``."""
    return config_home / "autostart" / ENTRY_NAME


def xdg_config_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME``, else ``~/.config`` (the base the autostart folder is under)."""
    env = os.environ if environ is None else environ
    value = env.get("XDG_CONFIG_HOME", "")
    # The spec says a relative value is invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME") or Path.home()) / ".config"


def exec_command_for(profile: Path | None = None) -> str:
    """The command line that starts this installation's tray (``profile``: ``--profile``).

    A PyInstaller bundle runs its own executable; otherwise this Python runs the
    package, which works in a virtual environment that is not on ``PATH``.
    """
    if getattr(sys, "frozen", False):
        argv = [sys.executable]
    else:
        argv = [sys.executable, "-m", "mailbeacon"]
    if profile is not None:
        argv += ["--profile", str(profile)]
    return shlex.join([*argv, "tray"])


def desktop_exec(argv: Sequence[str]) -> str:
    """``argv`` as a desktop entry ``Exec`` value (quoted per the spec, then escaped)."""
    if not argv:
        raise AutostartError("the autostart command is empty")
    words = []
    for raw in argv:
        arg = raw.replace("%", "%%")  # a literal percent, not a field code
        if arg and not _RESERVED.intersection(arg):
            words.append(arg)
        else:
            inner = "".join("\\" + c if c in _ESCAPED_IN_QUOTES else c for c in arg)
            words.append(f'"{inner}"')
    # The value is a "string": its backslashes are escaped once more.
    return " ".join(words).replace("\\", "\\\\")


def render_entry(exec_command: str) -> str:
    """The text of the autostart entry that runs ``exec_command`` (a shell-style command)."""
    try:
        argv = shlex.split(exec_command)
    except ValueError as exc:
        raise AutostartError(f"the autostart command {exec_command!r} is malformed: {exc}") from exc
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=MailBeacon\n"
        "Comment=Email open and click notifications\n"
        f"Exec={desktop_exec(argv)}\n"
        f"Icon={ICON_NAME}\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def apply_autostart(
    enabled: bool, config_home: Path, exec_command: str, tr: Language = ENGLISH
) -> Path:
    """Write (``enabled``) or remove the autostart entry under ``config_home``; its path.

    ``exec_command`` is the command line to start at login, split like a shell would
    (``exec_command_for()`` makes one). Writing is atomic, so a crash never leaves a
    half-written entry for the desktop to run. Raises AutostartError with a message for
    the rep (in ``tr``) when the folder cannot be written.
    """
    path = entry_path(config_home)
    if enabled:
        _write_atomically(path, render_entry(exec_command), tr)
        log.info("autostart entry written: %s", path)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            return path
        except OSError as exc:
            log.warning("cannot remove the autostart entry %s: %s", path, exc)
            raise AutostartError(
                tr.t(
                    "Could not remove {path} ({error}); delete it to stop MailBeacon from "
                    "starting at login.",
                    path=path,
                    error=exc.strerror or exc,
                )
            ) from exc
        log.info("autostart entry removed: %s", path)
    return path


def _write_atomically(path: Path, text: str, tr: Language) -> None:
    try:
        # 0o644: the desktop session reads it; it holds no secret.
        atomic_write(path, text.encode("utf-8"), 0o644)
    except OSError as exc:
        log.warning("cannot write the autostart entry %s: %s", path, exc)
        raise AutostartError(
            tr.t(
                "Could not set MailBeacon to start at login: {folder} is not writable ({error}).",
                folder=path.parent,
                error=exc.strerror or exc,
            )
        ) from exc
