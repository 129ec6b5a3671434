"""``mailbeacon account discover|setup|show|sign-out`` (docs/interfaces.md, "Command line").

Exit codes: 0 done; 1 the account could not be found, reached or signed in to (the
message says what to do; nothing was saved); 2 the input was refused. Results go to
stdout, messages (and a device-flow code) to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from mailbeacon.agent.account import discovery
from mailbeacon.agent.account.discovery import DiscoveryFailed, NameserverInvalid
from mailbeacon.agent.account.model import AuthMethod, Discovered, Security, ServerSetting
from mailbeacon.agent.account.oauth import DeviceCode, OAuthClient, OAuthError
from mailbeacon.agent.account.probe import Probe
from mailbeacon.agent.account.setup import AccountRequest, AccountResult, AccountSetup, SetupError
from mailbeacon.agent.account.tokens import AccessTokens
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import ConfigError, Settings
from mailbeacon.core.profile import Profile

log = logging.getLogger(__name__)

OK, FAILED, REFUSED = 0, 1, 2
HTTP_SECONDS = 10.0
SECURITY_CHOICES = [str(choice) for choice in Security]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``account`` with its four sub-commands."""
    account = sub.add_parser("account", help="the rep's mail account: find, sign in, show")
    verbs = account.add_subparsers(dest="verb", metavar="VERB", required=True)
    find = verbs.add_parser("discover", help="find the mail servers of an email address")
    find.add_argument("email")
    find.add_argument("--json", action="store_true", help="print one JSON object")
    find.set_defaults(func=run_discover)
    setup = verbs.add_parser("setup", help="find, sign in, try both servers, save")
    setup.add_argument("email")
    setup.add_argument("--name", default="", help="your name as recipients see it")
    setup.add_argument("--login", default="", help="login name, if not the email address")
    how = setup.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    how.add_argument("--oauth", action="store_true", help="sign in with the provider (OAuth 2.0)")
    setup.add_argument("--device", action="store_true", help="with --oauth: sign in by code")
    for protocol in ("smtp", "imap"):
        setup.add_argument(f"--{protocol}-host", metavar="HOST")
        setup.add_argument(f"--{protocol}-port", metavar="PORT", type=_port)
        setup.add_argument(f"--{protocol}-security", choices=SECURITY_CHOICES)
    setup.add_argument("--json", action="store_true", help="print one JSON object")
    setup.set_defaults(func=run_setup)
    show = verbs.add_parser("show", help="the account's settings (never a secret)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(func=run_show)
    out = verbs.add_parser("sign-out", help="revoke the sign-in and forget its tokens")
    out.set_defaults(func=run_sign_out)


def run_discover(args: argparse.Namespace, _profile: Profile) -> int:
    """``account discover EMAIL``."""

    async def find(http: httpx.AsyncClient) -> Discovered:
        return await _discover(http, args.email)

    try:
        found = _run(find)
    except (DiscoveryFailed, NameserverInvalid, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(found.to_json()))
    else:
        print(_describe(found))
    return OK


def run_setup(args: argparse.Namespace, profile: Profile) -> int:
    """``account setup EMAIL``: nothing is saved unless both servers accepted the login."""
    try:
        request = _request(args)
        settings = Settings.load_or_default(profile.config_file)
    except (SettingError, ConfigError, ValueError) as exc:
        print(f"mailbeacon: {exc}", file=sys.stderr)
        return REFUSED
    secrets = SecretStore(profile.keyring_service, dict(os.environ))

    async def set_up(http: httpx.AsyncClient) -> AccountResult:
        flow = AccountSetup(
            settings,
            secrets,
            http,
            lambda email: _discover(http, email),
            show_code=_show_code,
            save=lambda kept: kept.save(profile.config_file),
        )
        return await flow.run(request)

    try:
        result = _run(set_up)
    except (DiscoveryFailed, NameserverInvalid, SetupError, SecretStoreUnavailable) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(_result_json(result)))
    else:
        print(f"{result.servers.email} is set up ({result.method}).")
        print(f"Outgoing: {result.smtp_said}")
        if result.imap_said:
            print(f"Incoming: {result.imap_said}")
    return OK


def run_show(args: argparse.Namespace, profile: Profile) -> int:
    """``account show``: settings and which secrets exist, never their values."""
    try:
        settings = Settings.load_or_default(profile.config_file)
        secrets = SecretStore(profile.keyring_service, dict(os.environ))
        shown = _shown(settings, secrets)
    except (ConfigError, SecretStoreUnavailable) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(shown))
    else:
        for key, value in shown.items():
            print(f"{key}: {value}")
    return OK


def run_sign_out(_args: argparse.Namespace, profile: Profile) -> int:
    """``account sign-out``: revoke at the provider where it can, forget the tokens."""
    try:
        settings = Settings.load_or_default(profile.config_file)
        secrets = SecretStore(profile.keyring_service, dict(os.environ))
        if not secrets.is_set(Secret.OAUTH_REFRESH_TOKEN):
            print("Not signed in: nothing to forget.", file=sys.stderr)
            return OK
    except (ConfigError, SecretStoreUnavailable) as exc:
        return _fail(str(exc))

    async def sign_out(http: httpx.AsyncClient) -> bool:
        client = await _oauth_client(settings, secrets, http)
        if client is None:
            secrets.delete(Secret.OAUTH_REFRESH_TOKEN)
            return False
        return await AccessTokens(settings.account.email, client, secrets).sign_out()

    revoked = _run(sign_out)
    print(
        "Signed out: the provider revoked the sign-in." if revoked
        else "Signed out: MailBeacon forgot the sign-in (the provider offers no revocation).",
        file=sys.stderr,
    )  # fmt: skip
    return OK


# ---------------------------------------------------------------- helpers


def _run(work: Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(timeout=HTTP_SECONDS) as http:
            return await work(http)

    return asyncio.run(main())


async def _discover(http: httpx.AsyncClient, email: str) -> Discovered:
    resolver = discovery.resolver_from_env(os.environ)
    return await discovery.discover(email, resolver=resolver, http=http, probe=Probe(resolver))


async def _oauth_client(
    settings: Settings, secrets: SecretStore, http: httpx.AsyncClient
) -> OAuthClient | None:
    issuer = settings.oauth.issuer
    if not issuer or not settings.oauth.client_id:
        return None
    from mailbeacon.agent.account import oauth  # noqa: PLC0415 - only sign-out needs it

    try:
        metadata = await oauth.discover(issuer, http)
    except OAuthError as exc:
        log.warning("sign-out: %s", exc)
        return None
    return OAuthClient(
        metadata,
        settings.oauth.client_id,
        http,
        client_secret=secrets.get(Secret.OAUTH_CLIENT_SECRET),
    )


def _request(args: argparse.Namespace) -> AccountRequest:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ValueError("--password-stdin: no password on standard input")
    if args.device and not args.oauth:
        raise ValueError("--device goes with --oauth")
    method = AuthMethod.OAUTH2 if args.oauth else (AuthMethod.PASSWORD if password else None)
    return AccountRequest(
        email=args.email,
        name=args.name,
        method=method,
        password=password,
        smtp=_server(args, "smtp"),
        imap=_server(args, "imap"),
        device=args.device,
        login=args.login,
    )


def _server(args: argparse.Namespace, protocol: str) -> ServerSetting | None:
    host = getattr(args, f"{protocol}_host")
    port = getattr(args, f"{protocol}_port")
    security = getattr(args, f"{protocol}_security")
    if host is None and port is None and security is None:
        return None
    if host is None or security is None:
        raise ValueError(f"--{protocol}-host and --{protocol}-security go together")
    chosen = Security(security)
    return ServerSetting(host, port or _default_port(protocol, chosen), chosen)


def _default_port(protocol: str, security: Security) -> int:
    ports = {
        "smtp": {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25},
        "imap": {Security.TLS: 993, Security.STARTTLS: 143, Security.NONE: 143},
    }
    return ports[protocol][security]


def _port(text: str) -> int:
    number = int(text)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError("a port is 1..65535")
    return number


def _show_code(code: DeviceCode) -> None:
    print(
        f"To sign in, open {code.verification_uri} and enter the code {code.user_code}",
        file=sys.stderr,
        flush=True,
    )


def _describe(found: Discovered) -> str:
    lines = [f"{found.email}: found by {found.source}" + (
        f" ({found.provider})" if found.provider else "")]  # fmt: skip
    lines.append(f"  outgoing {found.smtp.host}:{found.smtp.port} ({found.smtp.security})")
    if found.imap:
        lines.append(f"  incoming {found.imap.host}:{found.imap.port} ({found.imap.security})")
    lines.append("  sign-in: " + ", ".join(str(method) for method in found.auth))
    return "\n".join(lines)


def _result_json(result: AccountResult) -> dict[str, Any]:
    return {
        **result.servers.to_json(),
        "method": str(result.method),
        "smtp_said": result.smtp_said,
        "imap_said": result.imap_said,
    }


def _shown(settings: Settings, secrets: SecretStore) -> dict[str, Any]:
    return {
        "email": settings.account.email,
        "name": settings.account.name,
        "auth": settings.account.auth,
        "smtp": settings.upstream.url,
        "imap": settings.imap.url,
        "issuer": settings.oauth.issuer,
        "client_id": settings.oauth.client_id,
        "signed_in": secrets.is_set(Secret.OAUTH_REFRESH_TOKEN),
        "password_set": secrets.is_set(Secret.UPSTREAM_PASSWORD),
    }


def _fail(message: str) -> int:
    print(f"mailbeacon: {message}", file=sys.stderr)
    return FAILED
