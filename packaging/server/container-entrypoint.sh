#!/bin/sh
# Entry point of the MailBeacon server container (packaging/server/Containerfile).
#
# The server secret (every enrollment key is derived from it) comes from, in order:
#   1. a secret file: /run/secrets/mailbeacon (podman/docker secrets), or the path in
#      MAILBEACON_SECRET_FILE;
#   2. the environment: MAILBEACON_SERVER_SECRET;
#   3. else the server keeps one in its database (on the volume).
# Arguments go to `mailbeacon server serve` (the image's CMD holds the defaults).
set -eu

secret_file=${MAILBEACON_SECRET_FILE:-/run/secrets/mailbeacon}

if [ -e "$secret_file" ]; then
    exec mailbeacon server serve --secret-file "$secret_file" "$@"
fi
if [ -n "${MAILBEACON_SECRET_FILE:-}" ]; then
    # Asked for a file that is not there: say so rather than fall back silently.
    echo "mailbeacon: MAILBEACON_SECRET_FILE=$secret_file does not exist" >&2
    exit 2
fi
exec mailbeacon server serve "$@"
