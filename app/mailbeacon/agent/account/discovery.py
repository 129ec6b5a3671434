"""Mail-server discovery: from the rep's email address to the servers and how to sign in.

Tried in order, the first answer wins (``Discovered.source`` says which):

1. ``preset``: the domain is a big provider's (``gmail.com``; ``presets.py``);
2. ``mx``: the domain's most preferred MX host is Google's or Microsoft's (a custom
   domain on Google Workspace or Microsoft 365);
3. ``srv``: RFC 6186 / RFC 8314 SRV records (``_submissions``/``_submission``,
   ``_imaps``/``_imap``); a "." target means the service is not offered;
4. ``autoconfig``: the domain's Thunderbird autoconfig file over HTTPS (``autoconfig.py``);
5. ``probe``: the usual host names on the usual ports (``probe.py``).

Each step has its share of ``deadline`` and the whole answers within it, dead name
servers and black-holed hosts included: the rep is waiting in a dialog. Servers
found by SRV, autoconfig or probe that turn out to be a preset's hosts (a domain
pointing at ``imap.gmail.com``) get that provider's sign-in (issuer, scopes).

The resolver (dnspython's, from :func:`resolver_from_env`), the HTTP client and the
probe are injected: tests point them at loopback dnsmasq, Caddy and SMTP servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

from mailbeacon.agent.account import presets
from mailbeacon.agent.account.autoconfig import AutoconfigFetcher
from mailbeacon.agent.account.model import (
    AuthMethod,
    Discovered,
    Security,
    ServerSetting,
    Source,
)
from mailbeacon.agent.account.probe import Probe
from mailbeacon.core.language import ENGLISH, Language, mark

log = logging.getLogger(__name__)

NAMESERVER_ENV = "MAILBEACON_NAMESERVER"
DNS_TIMEOUT = 2.0
DNS_PORT = 53
# Each step's share of the deadline: DNS answers fast or not at all; HTTPS and the
# probe need a TLS handshake or two.
SHARES = {Source.MX: 0.15, Source.SRV: 0.15, Source.AUTOCONFIG: 0.35, Source.PROBE: 0.35}


ENTER_MANUALLY = mark("Enter them under Edit manually.")


class DiscoveryFailed(Exception):
    """Nothing was found; ``str(error)`` is the sentence to show the rep."""


class NameserverInvalid(ValueError):
    """``MAILBEACON_NAMESERVER`` is not ``IP[:PORT]``; the message says so."""


def resolver_from_env(environ: Mapping[str, str]) -> dns.asyncresolver.Resolver:
    """The resolver discovery uses: ``MAILBEACON_NAMESERVER=IP[:PORT]`` when set, else the
    system's. Raises :class:`NameserverInvalid` for a value that is not an address."""
    value = environ.get(NAMESERVER_ENV, "").strip()
    if not value:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            log.warning("no DNS configuration on this system: discovery finds presets only")
            resolver = dns.asyncresolver.Resolver(configure=False)
    else:
        ip, port = _nameserver(value)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [ip]
        resolver.port = port
    resolver.timeout = DNS_TIMEOUT
    resolver.lifetime = DNS_TIMEOUT
    return resolver


def _nameserver(value: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or ``IPv6`` → ``(ip, port)``."""
    host, port = value, str(DNS_PORT)
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        port = (rest.removeprefix(":") or port) if bracket else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ip, number = str(ipaddress.ip_address(host)), int(port)
    except ValueError:
        ip, number = "", 0
    if not 0 < number < 65536:
        raise NameserverInvalid(
            f"{NAMESERVER_ENV}={value!r} is not a name server address: "
            "set it to IP or IP:PORT (for example 127.0.0.1:5353), or unset it."
        )
    return ip, number


@dataclass(frozen=True, slots=True)
class _Context:
    email: str
    domain: str
    resolver: dns.asyncresolver.Resolver
    autoconfig: AutoconfigFetcher
    probe: Probe


Step = Callable[[_Context, float], Awaitable[Discovered | None]]


async def discover(
    email: str,
    *,
    resolver: dns.asyncresolver.Resolver,
    http: httpx.AsyncClient,
    probe: Probe,
    deadline: float = 10.0,
    tr: Language = ENGLISH,
) -> Discovered:
    """The servers for ``email``; raises :class:`DiscoveryFailed` within ``deadline`` s,
    its sentence in ``tr`` (the command line keeps English)."""
    email, domain = _split(email, tr)
    preset = presets.by_domain(domain)
    if preset is not None:
        return from_preset(email, preset, Source.PRESET)
    context = _Context(email, domain, resolver, AutoconfigFetcher(http, resolver), probe)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    try:
        async with asyncio.timeout(deadline):
            for source, step in _STEPS:
                budget = min(SHARES[source] * deadline, end - loop.time())
                found = await _run(step, source, context, budget)
                if found is not None:
                    log.info("discovery: %s found by %s", domain, source)
                    return found
    except TimeoutError:
        log.info("discovery: %s ran out of time (%.1f s)", domain, deadline)
    # Two sentences: the account window shows the first with a hint of its own.
    found_none = tr.t("No mail servers were found for {domain}.", domain=domain)
    raise DiscoveryFailed(f"{found_none} {tr.t(ENTER_MANUALLY)}")


async def _run(step: Step, source: Source, context: _Context, budget: float) -> Discovered | None:
    """One step within ``budget`` seconds; None when it found nothing or ran out of time."""
    if budget <= 0:
        return None
    try:
        async with asyncio.timeout(budget):
            return await step(context, budget)
    except TimeoutError:
        log.info("discovery: %s step for %s timed out", source, context.domain)
        return None


def _split(email: str, tr: Language) -> tuple[str, str]:
    address = email.strip()
    local, at, domain = address.rpartition("@")
    domain = presets.normalise_host(domain)
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise DiscoveryFailed(
            tr.t(
                "{address} is not an email address: enter it as name@example.org.",
                address=repr(address),
            )
        )
    return address, domain


def from_preset(email: str, preset: presets.Preset, source: Source) -> Discovered:
    """What discovery answers for a built-in provider's address (or its MX)."""
    return Discovered(
        email=email,
        provider=preset.id,
        source=source,
        smtp=preset.smtp,
        imap=preset.imap,
        auth=preset.auth,
        issuer=preset.issuer,
        scopes=preset.scopes,
    )


def _found(
    context: _Context,
    source: Source,
    smtp: ServerSetting,
    imap: ServerSetting | None,
    auth: tuple[AuthMethod, ...] = (AuthMethod.PASSWORD,),
) -> Discovered:
    """Servers found for a custom domain; a preset's own hosts get its sign-in."""
    hosts = [smtp.host, *([imap.host] if imap else [])]
    preset = next((p for p in map(presets.by_host, hosts) if p is not None), None)
    return Discovered(
        email=context.email,
        provider=preset.id if preset else None,
        source=source,
        smtp=smtp,
        imap=imap,
        auth=preset.auth if preset else auth,
        issuer=preset.issuer if preset else None,
        scopes=preset.scopes if preset else (),
    )


async def _by_mx(context: _Context, budget: float) -> Discovered | None:
    try:
        answer = await context.resolver.resolve(context.domain, "MX", lifetime=budget)
    except dns.exception.DNSException as error:
        log.info("discovery: no MX for %s: %s", context.domain, error)
        return None
    records = sorted(answer, key=lambda record: int(record.preference))
    preset = presets.by_mx([str(record.exchange) for record in records])
    return from_preset(context.email, preset, Source.MX) if preset else None


# RFC 6186 services: (name, security when the port is not the other kind's).
_SUBMISSION = (("_submissions", Security.TLS), ("_submission", Security.STARTTLS))
_IMAP = (("_imaps", Security.TLS), ("_imap", Security.STARTTLS))
_IMPLICIT_TLS_PORTS = {465, 993}


async def _by_srv(context: _Context, budget: float) -> Discovered | None:
    smtp, imap = await asyncio.gather(
        _srv_best(context, _SUBMISSION, budget), _srv_best(context, _IMAP, budget)
    )
    return _found(context, Source.SRV, smtp, imap) if smtp else None


async def _srv_best(
    context: _Context, services: tuple[tuple[str, Security], ...], budget: float
) -> ServerSetting | None:
    """The offered server with the lowest priority (then highest weight, then TLS first)."""
    answers = await asyncio.gather(
        *(_srv(context, name, security, budget) for name, security in services)
    )
    offered = [entry for answer in answers for entry in answer]
    offered.sort(key=lambda e: (e[0], -e[1], e[2].security is not Security.TLS))
    return offered[0][2] if offered else None


async def _srv(
    context: _Context, service: str, security: Security, budget: float
) -> list[tuple[int, int, ServerSetting]]:
    name = f"{service}._tcp.{context.domain}"
    try:
        answer = await context.resolver.resolve(name, "SRV", lifetime=budget)
    except dns.exception.DNSException as error:
        log.debug("discovery: no SRV %s: %s", name, error)
        return []
    found = []
    for record in answer:
        target = presets.normalise_host(str(record.target))
        if not target or record.port == 0:
            continue  # "." : this service is decidedly not offered (RFC 2782)
        kind = Security.TLS if record.port in _IMPLICIT_TLS_PORTS else security
        setting = ServerSetting(target, int(record.port), kind)
        found.append((int(record.priority), int(record.weight), setting))
    return found


async def _by_autoconfig(context: _Context, budget: float) -> Discovered | None:
    found = await context.autoconfig.find(context.email, context.domain, budget)
    if found is None:
        return None
    return _found(context, Source.AUTOCONFIG, found.smtp, found.imap, found.auth)


async def _by_probe(context: _Context, budget: float) -> Discovered | None:
    found = await context.probe.find(context.domain, budget)
    return _found(context, Source.PROBE, found.smtp, found.imap) if found else None


_STEPS: tuple[tuple[Source, Step], ...] = (
    (Source.MX, _by_mx),
    (Source.SRV, _by_srv),
    (Source.AUTOCONFIG, _by_autoconfig),
    (Source.PROBE, _by_probe),
)
