"""External programs the tests drive: one way to require one.

Outside CI a missing program skips the test (a developer may not have Dovecot). In CI
(``CI=true``) the test command installs every one of them, so a missing program
fails the test with the Debian package to install: a silent skip would hide exactly
the case this exists for. ``tests/conftest.py`` applies the ``needs_program(name)``
marker through :func:`require`; tests that find out at run time call it directly.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Debian package of each program (packaging/bootstrap.sh installs these for `test`).
PACKAGES = {
    "caddy": "caddy",
    "chromium": "chromium",
    "dbus-daemon": "dbus",
    "dbus-run-session": "dbus",
    "desktop-file-validate": "desktop-file-utils",
    "dovecot": "dovecot-imapd",
    "dunst": "dunst",
    "import": "imagemagick",
    "initdb": "postgresql",
    "ip": "iproute2",
    "mount": "mount",
    "node": "nodejs",
    "npm": "nodejs",
    "dnsmasq": "dnsmasq",
    "nginx": "nginx-light",
    "openssl": "openssl",
    "pg_ctl": "postgresql",
    "rspamd": "rspamd",
    "spamassassin": "spamassassin",
    "strace": "strace",
    "swaks": "swaks",
    "systemd-analyze": "systemd",
    "trayer": "trayer",
    "umount": "mount",
    "wrk": "wrk",
    "xdotool": "xdotool",
    "xvfb-run": "xvfb",
}
_SBIN = "/usr/sbin:/sbin"
# Programs that also need root (Dovecot runs from a temporary folder as user `mail`).
NEEDS_ROOT = {"dovecot": "Dovecot runs as root from a temporary folder"}


def in_ci() -> bool:
    """True on the CI machine, where every program (and root) is required."""
    return os.environ.get("CI") == "true"


def find(name: str) -> str | None:
    """The program's path, looking in the sbin folders too (Dovecot lives there)."""
    return shutil.which(name) or shutil.which(name, path=_SBIN)


def missing_message(names: list[str]) -> str:
    """What to install for the programs ``names``."""
    packages = sorted({PACKAGES.get(name, name) for name in names})
    return (
        f"needs {', '.join(names)}: apt-get install {' '.join(packages)} "
        "(packaging/bootstrap.sh test installs them)"
    )


def require(*names: str) -> None:
    """Fail in CI, skip elsewhere, when one of the programs is not installed."""
    missing = [name for name in names if find(name) is None]
    if not missing:
        for name in names:
            if name in NEEDS_ROOT:
                require_root(NEEDS_ROOT[name])
        return
    if in_ci():
        pytest.fail(missing_message(missing))
    pytest.skip(missing_message(missing))


def path_of(name: str) -> str:
    """The program's path; fails in CI and skips elsewhere when it is not installed."""
    require(name)
    found = find(name)
    assert found is not None
    return found


def require_root(why: str) -> None:
    """Fail in CI, skip elsewhere, when not running as root."""
    if os.geteuid() == 0:
        return
    if in_ci():
        pytest.fail(f"needs root: {why}")
    pytest.skip(f"needs root: {why}")
