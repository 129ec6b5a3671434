#!/bin/sh
# Adds MailBeacon to the desktop's application menu: the desktop entry and its icons.
#
#   install.sh [--prefix DIR] [--exec PROGRAM] [--uninstall]
#
#   --prefix DIR     share folder to install into (default: $XDG_DATA_HOME, else
#                    ~/.local/share; /usr/local/share for every user, as root)
#   --exec PROGRAM   the mailbeacon program the menu entry starts (default: the bundle's
#                    executable when this script sits in a PyInstaller bundle, else
#                    `mailbeacon` from PATH)
#   --uninstall      remove what an earlier run installed under DIR
#
# Icons: the PNGs rendered at build time (bundle: linux/icons/hicolor), else the SVG
# from resources/icons/app.svg as a scalable icon (source tree), plus PNGs rendered by
# packaging/make_icons.py when a Python with PySide6 is at hand ($PYTHON or .venv).
# Start-at-login is the app's own setting (Settings > App), not this script's business.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=${XDG_DATA_HOME:-${HOME:?HOME is not set}/.local/share}
program=
uninstall=no

die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix=$2; shift 2 ;;
        --exec) [ $# -ge 2 ] || die "--exec needs a program"; program=$2; shift 2 ;;
        --uninstall) uninstall=yes; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

apps=$prefix/applications
icons=$prefix/icons/hicolor
entry=$apps/mailbeacon.desktop
# Opens mailbeacon://enroll?key=… links (the console's enrollment links).
handler=$apps/mailbeacon-enroll.desktop
sizes="16 22 24 32 48 64 128 256 512"

refresh() {
    # Caches that already exist are brought up to date (a stale icon cache hides new
    # icons); none is created where there was none.
    if [ -f "$icons/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$icons" 2>/dev/null || true
    fi
    if [ -f "$apps/mimeinfo.cache" ] && command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$apps" 2>/dev/null || true
    fi
}

if [ "$uninstall" = yes ]; then
    rm -f "$entry" "$handler" "$icons/scalable/apps/mailbeacon.svg"
    for n in $sizes; do rm -f "$icons/${n}x$n/apps/mailbeacon.png"; done
    refresh
    echo "removed MailBeacon's menu entry and icons from $prefix"
    exit 0
fi

# The program the entry starts.
if [ -z "$program" ]; then
    if [ -x "$here/../mailbeacon" ] && [ -d "$here/../_internal" ]; then
        program=$(cd "$here/.." && pwd)/mailbeacon
    elif command -v mailbeacon >/dev/null 2>&1; then
        program=mailbeacon
    else
        die "no mailbeacon program found: pass --exec /path/to/mailbeacon"
    fi
fi
case $program in
    *[!A-Za-z0-9_./+-]*) die "--exec $program: use a path without spaces or quotes" ;;
esac

mkdir -p "$apps" "$icons/scalable/apps"

# The desktop entries, with Exec pointing at the program.
put_entry() {
    src_entry=$here/$1
    [ -f "$src_entry" ] || die "missing $src_entry"
    tmp=$(mktemp "$apps/.mailbeacon-XXXXXX")
    mv "$tmp" "$tmp.desktop" && tmp=$tmp.desktop
    sed "s|^Exec=mailbeacon |Exec=$program |" "$src_entry" > "$tmp"
    if command -v desktop-file-validate >/dev/null 2>&1; then
        desktop-file-validate "$tmp" || { rm -f "$tmp"; die "the desktop entry does not validate"; }
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$2"
}
put_entry mailbeacon.desktop "$entry"
put_entry mailbeacon-enroll.desktop "$handler"

# Icons: pre-rendered PNGs (bundle), else the SVG (+ PNGs if Qt is at hand).
if [ -d "$here/icons/hicolor" ]; then
    cp -R "$here/icons/hicolor/." "$icons/"
else
    svg=$here/../../resources/icons/app.svg
    [ -f "$svg" ] || die "no icons found (looked in $here/icons and $svg)"
    cp "$svg" "$icons/scalable/apps/mailbeacon.svg"
    python=${PYTHON:-$here/../../.venv/bin/python}
    if [ -x "$python" ] && "$python" -c 'import PySide6.QtSvg' >/dev/null 2>&1; then
        rendered=$(mktemp -d)
        "$python" "$here/../make_icons.py" "$rendered" >/dev/null
        cp -R "$rendered/hicolor/." "$icons/"
        rm -rf "$rendered"
    fi
fi

refresh
# The enrollment links' handler, for this user (no-op without xdg-utils).
if command -v xdg-mime >/dev/null 2>&1; then
    xdg-mime default mailbeacon-enroll.desktop x-scheme-handler/mailbeacon 2>/dev/null || true
fi
echo "installed $entry (starts $program) and icons under $icons"
