#!/usr/bin/env bash
# One entry point for a fresh machine:
#   packaging/bootstrap.sh app  [mailbeacon args...]   start the desktop app (embedded default)
#   packaging/bootstrap.sh test [pytest args...]       lint, type-check and run the test suite
# It creates .venv, installs the Python dependencies, and on Debian/Ubuntu as root
# installs the system libraries Qt needs (and, for `test`, the programs the tests drive).
set -euo pipefail

mode=${1:-}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

qt_libs=(libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
         libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
         libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core)
# Real programs the tests drive (SMTP client, X server, tray, notification daemon, ...).
test_tools=(swaks xvfb xauth trayer dunst dbus-x11 x11-utils imagemagick xdotool
            nginx-light wrk iproute2 dovecot-imapd dovecot-submissiond chromium desktop-file-utils
            caddy systemd dnsmasq nodejs spamassassin rspamd strace postgresql valgrind)

say() { printf 'bootstrap: %s\n' "$*" >&2; }

missing_debs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

ensure_debs() {
    command -v dpkg-query >/dev/null 2>&1 || { say "not a Debian/Ubuntu system: install the Qt xcb libraries yourself"; return 0; }
    local missing
    missing=$(missing_debs "$@")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing system packages (run as root or install them): $(echo $missing | tr '\n' ' ')"
        return 0
    fi
    say "installing system packages: $(echo $missing | tr '\n' ' ')"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

find_python() {
    local c
    for c in python3.13 python3.12 python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 &&
           "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$c"; return 0
        fi
    done
    say "Python 3.11 or newer is required"; exit 1
}

ensure_venv() {
    local extras=$1 stamp
    if [ ! -x .venv/bin/python ]; then
        say "creating .venv"
        "$(find_python)" -m venv .venv
    fi
    stamp=".venv/.mailbeacon-$(cat pyproject.toml | sha256sum | cut -c1-16)-$extras"
    if [ ! -f "$stamp" ]; then
        say "installing Python dependencies ($extras)"
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        .venv/bin/python -m pip install -q -e ".[$extras]"
        rm -f .venv/.mailbeacon-*
        touch "$stamp"
    fi
    # The translation catalogs as .mo (the app compiles a missing or stale one itself).
    .venv/bin/python packaging/catalogs.py compile
    # Our modules' bytecode, written here because a machine with PYTHONDONTWRITEBYTECODE
    # set (some CI images) would otherwise compile ~120 modules from source at every
    # start of every command: `mailbeacon --help` took 1.3 s instead of 0.55 s. Only
    # changed files are compiled again; a stale .pyc is never used.
    .venv/bin/python -m compileall -q app >/dev/null
}

case "$mode" in
    app)
        ensure_debs "${qt_libs[@]}"
        ensure_venv tray
        exec .venv/bin/mailbeacon "$@"
        ;;
    test)
        ensure_debs "${qt_libs[@]}" "${test_tools[@]}"
        ensure_venv test,bundle
        export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
        # The desktop bundle is built and started once per run (about 40 s).
        export MAILBEACON_BUNDLE=${MAILBEACON_BUNDLE:-1}
        say "ruff"; .venv/bin/ruff check app tests packaging
        say "mypy"; .venv/bin/mypy
        say "import contract (pyproject.toml [tool.importlinter])"; .venv/bin/lint-imports
        say "pytest"
        # One worker by default. MAILBEACON_TEST_WORKERS=2 runs the suite on two (it
        # mostly waits on the programs it drives: 14:24 on one worker, 7:41–8:35 on
        # two, 2-core machine), but the timing tests then share the cores with another
        # worker, and two of six clean runs on two failed (a race, mended; an Rspamd
        # score and the PostgreSQL outage test, the latter a real bug since fixed): two
        # is not the default until runs on two are steady. A module's tests stay on
        # one worker (--dist loadscope), so a module-wide fixture (the bundle, the
        # deliverability corpus) is built once; each worker starts its own
        # PostgreSQL. Arguments given replace these.
        if [ $# -eq 0 ]; then
            set -- -n "${MAILBEACON_TEST_WORKERS:-0}" --dist loadscope
        fi
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: packaging/bootstrap.sh app|test [args...]" >&2
        exit 2
        ;;
esac
