#!/usr/bin/env bash
# Runs inside `xvfb-run ... dbus-run-session -- bash tray_xvfb_session.sh OUT PROFILE PYTHON`:
# an X tray (trayer), the notification daemon (dunst, bus-activated on first use), a
# D-Bus monitor logging every Notify call, then the tray program; waits (bounded) for
# the notification, clicks it through dunst, takes a screenshot and quits the program.
set -u
out=$1 profile=$2 python=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$out" || exit 2

# wait_for TRIES COMMAND...: retry COMMAND every 50 ms, at most TRIES times.
wait_for() {
    local tries=$1 i
    shift
    for ((i = 0; i < tries; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

trayer --edge top --align right --widthtype pixel --width 160 --height 28 \
    --SetDockType true --tint 0x2e3440 --transparent true --alpha 0 >trayer.log 2>&1 &
wait_for 100 xdotool search --class trayer || echo "session: trayer did not start"

dbus-monitor --session "interface='org.freedesktop.Notifications',member='Notify'" \
    >notify.log 2>/dev/null &
wait_for 100 test -s notify.log || echo "session: dbus-monitor did not start"

(cd "$root" && QT_QPA_PLATFORM=xcb exec "$python" -m tests.ui.tray_xvfb_program "$profile") \
    >program.log 2>program.err &
program=$!

wait_for 200 grep -q "Oferta Q4" notify.log || echo "session: no Notify seen"
wait_for 100 grep -q "first open" notify.log || echo "session: Notify body not seen"
wait_for 100 grep -q icon_geometry program.log || echo "session: icon not reported"
wait_for 100 xdotool search --onlyvisible --class dunst || echo "session: no dunst window"
import -window root shot.png

dunstctl action 0 >dunstctl.log 2>&1   # the rep clicks the notification
wait_for 100 grep -q '"opened"' program.log || echo "session: click did not come back"

kill -TERM "$program"
if ! wait_for 200 sh -c "! kill -0 $program"; then
    echo "session: program ignored SIGTERM"
    kill -KILL "$program"
fi
wait "$program"
echo "program exit $?"
kill $(jobs -p) 2>/dev/null
