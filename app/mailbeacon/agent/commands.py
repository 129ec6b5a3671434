"""Command-line entry points of the agent: ``agent`` and ``mint``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mailbeacon.core.enrollment import Enrollment, EnrollmentError
from mailbeacon.core.profile import Profile
from mailbeacon.core.tokens import new_message_key
from mailbeacon.core.urls import TrackingUrls


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``mint`` (and the agent's other sub-commands)."""
    mint = sub.add_parser("mint", help="print fresh test tracking URLs as JSON")
    mint.add_argument("--enroll", required=True, metavar="KEY", help="enrollment key")
    mint.add_argument("--url", help="also mint a click URL redirecting to URL")
    mint.set_defaults(func=run_mint)


def run_mint(args: argparse.Namespace, _profile: Profile) -> int:
    """``mailbeacon mint``: a test pixel, optional click and the claim URL."""
    try:
        enrollment = Enrollment.decode(args.enroll)
    except EnrollmentError as exc:
        print(f"mailbeacon: {exc}", file=sys.stderr)
        return 2
    urls = TrackingUrls(enrollment)
    message_key = new_message_key()
    out = {"message": message_key, "pixel": urls.pixel(message_key, None), "claim": urls.claim()}
    if args.url:
        if not args.url.lower().startswith(("http://", "https://")):
            print("mailbeacon: --url must be an http(s) URL", file=sys.stderr)
            return 2
        out["click"] = urls.click(message_key, None, 0, args.url)
    print(json.dumps(out))
    return 0
