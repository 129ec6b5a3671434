""" "Test tracking" for a public tracking URL: the name, the secure connection, the answer.

Each step is checked the way a recipient's mail client meets it, and says in plain
words what it found, what it could not check and what to do:

1. **Name** — the host's A/AAAA records from the resolver given (the system's, or
   ``MAILBEACON_NAMESERVER``); an address recipients could not reach (private,
   loopback — as ``reachable`` judges) is a failure, not a success.
2. **Secure connection** — a TLS handshake with the first address, for the name,
   against the trust store given (the system's): whether it works, whether the
   certificate is valid for the name and trusted, and until when (soon: say so).
3. **Answer** — the pixel fetched through the public name (pinned to the resolved
   address, the name in the Host header and SNI, so the certificate is checked for
   it): 200, ``image/gif``, GIF bytes.

A step that cannot run because an earlier one failed says "not checked" and why.
The resolver, the trust store, the address policy and the clock are parameters so
the whole path runs in tests against a real name server and a real TLS server on
loopback (tests/integration/agent/tracking/test_public_reach.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

from mailbeacon.core.language import ENGLISH, Language, mark

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
"""Whether recipients anywhere could reach an address (default: ``is_global``)."""

EXPIRY_WARNING = timedelta(days=14)  # a certificate renewed monthly has 30 days left
# Verification codes (OpenSSL X509_V_ERR_*) a rep or operator can act on.
_EXPIRED = frozenset({10})
_UNTRUSTED = frozenset({2, 18, 19, 20, 21, 27})
_WRONG_NAME = frozenset({62})

NAME_STEP = mark("Name resolves")
TLS_STEP = mark("Secure connection")
ANSWER_STEP = mark("Answer")


def public_address(address: IPAddress) -> bool:
    """The default address policy: only globally routable addresses count."""
    return address.is_global


class Outcome(StrEnum):
    """How one step ended."""

    YES = "yes"
    NO = "no"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True)
class CheckStep:
    """One step of the check: its name, how it ended and what it found, in plain words."""

    name: str
    outcome: Outcome
    text: str

    def line(self, tr: Language = ENGLISH) -> str:
        """``"Name resolves: yes (203.0.113.5)"`` (the step's name in ``tr``; its text
        was worded in the probe's language)."""
        return tr.t("{step}: {finding}", step=tr.t(self.name), finding=self.text)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the public URL points: scheme, host name, port, and the path's base."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Target:
        """The parts of ``url`` (already known to be http(s) with a host)."""
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, (parts.hostname or "").lower().rstrip("."), port)

    @property
    def literal(self) -> IPAddress | None:
        """The host as an IP address, when it is one."""
        try:
            return ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Probe:
    """What the public checks use; every part replaceable for tests."""

    resolver: dns.asyncresolver.Resolver
    ssl_context: ssl.SSLContext
    reachable: AddressPolicy = public_address
    seconds: float = 10.0
    expiry_warning: timedelta = EXPIRY_WARNING
    clock: Callable[[], float] = time.time
    tr: Language = ENGLISH  # the language the steps are worded in


async def resolve(target: Target, probe: Probe) -> tuple[CheckStep, IPAddress | None]:
    """Step 1: the name's addresses; the one to connect to (None: stop here)."""
    tr = probe.tr
    literal = target.literal
    if literal is not None:
        return CheckStep(
            NAME_STEP,
            Outcome.NOT_CHECKED,
            tr.t("not needed: {address} is an address, not a name", address=literal),
        ), literal
    try:
        found = await _addresses(target.host, probe)
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        return CheckStep(
            NAME_STEP,
            Outcome.NOT_CHECKED,
            tr.t(
                "could not be checked: no name server answered for {host} ({reason}). "
                "Check this computer's network connection and try again.",
                host=target.host,
                reason=_why(exc),
            ),
        ), None
    if not found:
        return CheckStep(
            NAME_STEP,
            Outcome.NO,
            tr.t(
                "no. {host} does not exist in DNS, so no recipient can load the pixel. "
                "Whoever runs your domain's DNS should add an A record for {host} pointing "
                "at the tracking server.",
                host=target.host,
            ),
        ), None
    shown = ", ".join(str(a) for a in found)
    outside = [a for a in found if probe.reachable(a)]
    if not outside:
        return CheckStep(
            NAME_STEP,
            Outcome.NO,
            tr.t(
                "to {addresses}, which recipients outside your network cannot reach. Point "
                "{host} at the tracking server's public address.",
                addresses=shown,
                host=target.host,
            ),
        ), None
    return CheckStep(NAME_STEP, Outcome.YES, tr.t("yes ({addresses})", addresses=shown)), outside[0]


async def _addresses(host: str, probe: Probe) -> list[IPAddress]:
    """A and AAAA records of ``host`` (empty: the name does not exist or has none)."""
    found: list[IPAddress] = []
    for kind in ("A", "AAAA"):
        try:
            answer = await probe.resolver.resolve(host, kind, lifetime=probe.seconds)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        found.extend(ipaddress.ip_address(record.to_text()) for record in answer)
    return found


async def secure_connection(target: Target, address: IPAddress, probe: Probe) -> CheckStep:
    """Step 2: a TLS handshake for the name at ``address``; the certificate's end date."""
    tr = probe.tr
    if target.scheme != "https":
        return CheckStep(
            TLS_STEP,
            Outcome.NOT_CHECKED,
            tr.t(
                "not checked: the address is plain http, so opens and clicks travel "
                "unencrypted. Put the server behind https (Caddy does it in two lines)."
            ),
        )
    try:
        async with asyncio.timeout(probe.seconds):
            _reader, writer = await asyncio.open_connection(
                str(address), target.port, ssl=probe.ssl_context, server_hostname=target.host
            )
    except ssl.SSLCertVerificationError as exc:
        return CheckStep(TLS_STEP, Outcome.NO, _certificate_problem(target, exc, tr))
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return CheckStep(
            TLS_STEP,
            Outcome.NO,
            tr.t(
                "no. {address} port {port} did not accept a secure connection ({reason}). "
                "Is the tracking server (or the proxy in front of it) running there, and "
                "open to the internet?",
                address=address,
                port=target.port,
                reason=_why(exc),
            ),
        )
    try:
        peer = writer.get_extra_info("peercert") or {}
    finally:
        writer.close()
        await _closed(writer)
    return _validity(target, peer, probe)


def _validity(target: Target, peer: dict[str, object], probe: Probe) -> CheckStep:
    """ "certificate valid until …", or that it ends soon."""
    tr = probe.tr
    not_after = peer.get("notAfter")
    if not isinstance(not_after, str):
        return CheckStep(
            TLS_STEP,
            Outcome.YES,
            tr.t("yes, the certificate is valid for {host}", host=target.host),
        )
    ends = ssl.cert_time_to_seconds(not_after)
    until = datetime.fromtimestamp(ends, UTC).strftime("%Y-%m-%d %H:%M UTC")
    left = timedelta(seconds=ends - probe.clock())
    if left < probe.expiry_warning:
        return CheckStep(
            TLS_STEP,
            Outcome.YES,
            tr.t(
                "yes, but the certificate for {host} ends in {duration} ({until}). Make "
                "sure it is renewed automatically, or recipients' mail clients will stop "
                "loading the pixel.",
                host=target.host,
                duration=_duration(left, tr),
                until=until,
            ),
        )
    return CheckStep(
        TLS_STEP,
        Outcome.YES,
        tr.t(
            "yes, the certificate for {host} is valid until {until}", host=target.host, until=until
        ),
    )


def _certificate_problem(
    target: Target, exc: ssl.SSLCertVerificationError, tr: Language = ENGLISH
) -> str:
    code = exc.verify_code
    fix = tr.t(
        "The server needs a certificate for {host} from a public authority (Caddy and "
        "Let's Encrypt make one automatically).",
        host=target.host,
    )
    if code in _WRONG_NAME:
        return tr.t(
            "no. The server's certificate is not made out to {host}. {fix}",
            host=target.host,
            fix=fix,
        )
    if code in _EXPIRED:
        return tr.t(
            "no. The server's certificate for {host} has expired. {fix}", host=target.host, fix=fix
        )
    if code in _UNTRUSTED:
        return tr.t(
            "no. The server's certificate is not signed by an authority recipients' devices "
            "trust (self-signed, or from a private authority). {fix}",
            fix=fix,
        )
    return tr.t(
        "no. The certificate was refused ({reason}). {fix}", reason=exc.verify_message, fix=fix
    )


async def fetch_pixel(
    target: Target, address: IPAddress, url: str, probe: Probe
) -> tuple[CheckStep, httpx.Response | None]:
    """Step 3: GET the pixel through the public name, pinned to ``address``."""
    tr = probe.tr
    parts = urlsplit(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    pinned = parts._replace(netloc=f"{host}:{target.port}").geturl()
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(
            verify=probe.ssl_context,
            timeout=probe.seconds,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            response = await client.get(
                pinned,
                headers={"Host": parts.netloc},
                extensions={"sni_hostname": target.host},
            )
    except httpx.HTTPError as exc:
        return CheckStep(
            ANSWER_STEP,
            Outcome.NO,
            tr.t(
                "no answer from {host} ({reason}). Is the tracking server running behind "
                "that address?",
                host=target.host,
                reason=_why(exc),
            ),
        ), None
    elapsed_ms = (time.perf_counter() - started) * 1000
    if is_pixel(response):
        return CheckStep(
            ANSWER_STEP,
            Outcome.YES,
            tr.t("the pixel came back in {ms} ms", ms=tr.number(round(elapsed_ms))),
        ), response
    return CheckStep(
        ANSWER_STEP,
        Outcome.NO,
        tr.t(
            "{host} answered {response} instead of the pixel (200 image/gif). Is that "
            "address really your MailBeacon tracking server, and does the proxy in front "
            "of it pass /o/ and /c/ on to it?",
            host=target.host,
            response=response_summary(response),
        ),
    ), response


def is_pixel(response: httpx.Response) -> bool:
    """200, ``image/gif`` and GIF bytes: what a tracking server answers for the pixel."""
    return (
        response.status_code == 200
        and content_type(response) == "image/gif"
        and response.content.startswith(b"GIF")
    )


def content_type(response: httpx.Response) -> str:
    """The media type without parameters."""
    header: str = response.headers.get("content-type", "")
    return header.split(";", maxsplit=1)[0].strip()


def response_summary(response: httpx.Response) -> str:
    """``"404 text/html"``."""
    return f"{response.status_code} {content_type(response) or '(no type)'}"


def not_checked(name: str, because: str, tr: Language = ENGLISH) -> CheckStep:
    """A step that could not run because an earlier one failed (``because`` in ``tr``)."""
    return CheckStep(name, Outcome.NOT_CHECKED, tr.t("not checked ({reason})", reason=because))


def _duration(left: timedelta, tr: Language) -> str:
    hours = max(0, int(left.total_seconds() // 3600))
    if hours < 48:
        return tr.n("{count} hour", "{count} hours", hours)
    return tr.n("{count} day", "{count} days", hours // 24)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _closed(writer: asyncio.StreamWriter) -> None:
    # The handshake is what was tested; a rough close says nothing more.
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
