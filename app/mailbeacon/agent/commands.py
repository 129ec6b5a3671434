"""Command-line entry points of the agent: ``agent`` and ``mint``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from mailbeacon.core.enrollment import Enrollment, EnrollmentError
from mailbeacon.core.profile import Profile
from mailbeacon.core.tokens import new_message_key
from mailbeacon.core.urls import TrackingUrls

log = logging.getLogger(__name__)


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """The options ``agent`` and ``tray`` share (docs/interfaces.md)."""
    parser.add_argument("--enroll", metavar="KEY", help="enrollment key of a tracking server")
    parser.add_argument("--smtp-listen", metavar="HOST:PORT", help="relay address")
    parser.add_argument("--upstream", metavar="URL", help="smtps://, smtp+starttls:// or smtp://")
    parser.add_argument("--relay-password", metavar="P", help="password mail clients log in with")
    parser.add_argument("--imap", metavar="URL", help="the rep's IMAP inbox (replies)")
    parser.add_argument("--notify", choices=["jsonl"], help="print notifications to stdout")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``agent`` and ``mint``."""
    agent = sub.add_parser("agent", help="run the headless engine (relay, outbox, stream)")
    add_agent_options(agent)
    agent.set_defaults(func=run_agent_command)
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


def run_agent_command(args: argparse.Namespace, profile: Profile) -> int:
    """``mailbeacon agent``: run until SIGTERM or SIGINT."""
    # Imported here so that `mailbeacon mint` stays quick.
    from mailbeacon.agent.runtime import (  # noqa: PLC0415
        AgentOptions,
        AgentRuntime,
        AgentStartError,
        JsonLinesListener,
    )
    from mailbeacon.agent.sending.relay import RelayStartError  # noqa: PLC0415
    from mailbeacon.agent.settings.mail_urls import UpstreamConfigError  # noqa: PLC0415

    options = AgentOptions(
        enroll=args.enroll,
        smtp_listen=args.smtp_listen,
        upstream=args.upstream,
        relay_password=args.relay_password,
        imap=args.imap,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        runtime = AgentRuntime(profile, options, JsonLinesListener())
        try:
            await runtime.start()
            status = runtime.status()
            print(
                f"mailbeacon agent: relay on {status.relay_host}:{status.relay_port}, "
                f"tracking server {status.server_url}",
                file=sys.stderr,
                flush=True,
            )
            await stop.wait()
        finally:
            await runtime.stop()

    try:
        asyncio.run(main())
    except (AgentStartError, EnrollmentError, UpstreamConfigError, RelayStartError,
            OSError) as exc:
        print(f"mailbeacon agent: {exc}", file=sys.stderr)
        return 1
    return 0
