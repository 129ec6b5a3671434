"""``mailbeacon enroll LINK``: join a team's tracking server from the link its
administrator sent (``mailbeacon://enroll?key=…``, or the bare key).

What it does, in order: check the key (and that its server is not plain http on
another machine), keep it in the keyring, switch the settings to that server
(``server.mode = remote``), then read the team's policy from the server so that the
first email already follows it. A running MailBeacon takes the new server at its next
start. The desktop entry ``mailbeacon-enroll.desktop`` runs this for a clicked link.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from typing import Any

from mailbeacon.agent.settings.secrets import SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import ConfigError, Settings
from mailbeacon.agent.tracking.remote import PlainServerRefused, checked_remote
from mailbeacon.agent.tracking.team import TeamSync
from mailbeacon.core.enrollment import Enrollment, EnrollmentError, key_from_link
from mailbeacon.core.profile import Profile

log = logging.getLogger(__name__)

OK, FAILED, REFUSED = 0, 1, 2


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``enroll``."""
    enroll = sub.add_parser(
        "enroll", help="join a team's tracking server with the link (or key) it sent"
    )
    enroll.add_argument("link", metavar="LINK", help="mailbeacon://enroll?key=… or the key")
    enroll.set_defaults(func=cmd_enroll)


def cmd_enroll(args: argparse.Namespace, profile: Profile) -> int:
    """Enroll this profile; prints what it did."""
    try:
        enrollment = Enrollment.decode(key_from_link(args.link))
        settings = Settings.load(profile.config_file)
        checked_remote(enrollment, settings)
    except (EnrollmentError, PlainServerRefused, ConfigError) as exc:
        print(f"mailbeacon: {exc}", file=sys.stderr)
        return REFUSED
    try:
        SecretStore(profile.keyring_service, dict(os.environ)).set_enrollment(enrollment)
    except SecretStoreUnavailable as exc:
        print(f"mailbeacon: {exc}", file=sys.stderr)
        return FAILED
    settings.set("server.url", enrollment.server_url)
    settings.set("server.mode", "remote")
    settings.save(profile.config_file)
    log.info("enrolled with %s as user %d", enrollment.server_url, enrollment.user_id)
    print(f"Enrolled with {enrollment.server_url} as user {enrollment.user_id} "
          "(server.mode = remote).")  # fmt: skip
    team = TeamSync(profile.config_dir, profile.config_file, time.time)
    team.connect(enrollment.server_url, enrollment.api_token)
    if asyncio.run(team.fetch()):
        print(f"Team policy version {team.policy.version} applied.")
    else:
        print("The team policy is read when MailBeacon next connects to the server.")
    print("Restart MailBeacon if it is running, to use this server.")
    return OK
