"""Thunderbird autoconfig: the ``config-v1.1.xml`` a domain publishes, fetched and parsed.

Fetched over HTTPS only, from ``https://autoconfig.<domain>/mail/config-v1.1.xml`` and
then ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`` (Thunderbird's
order). The host name is looked up through discovery's resolver, not the system's,
and the request goes to that address with the name as SNI and ``Host``: the
certificate is still checked against the name. Redirects are not followed and the
body is capped, so a hostile server can hand over at most a small file.

The XML is parsed with defusedxml with DTDs forbidden: an autoconfig file has no
use for one, and entity expansion ("billion laughs") is refused. A file that does
not parse, or names no usable SMTP server, is :class:`AutoconfigInvalid`: discovery
logs it and tries its next step.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
import xml.etree.ElementTree as StdElementTree
from collections.abc import Iterable
from dataclasses import dataclass

import dns.asyncresolver
import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from mailbeacon.agent.account.model import AuthMethod, Security, ServerSetting
from mailbeacon.agent.account.probe import first_address

log = logging.getLogger(__name__)

MAX_BYTES = 256 * 1024  # real files are a few kilobytes
HTTPS_PORT = 443
OWN_TIMEOUT_SHARE = 0.9  # of the step's budget: the step's timeout stays a backstop

_SECURITY = {"SSL": Security.TLS, "STARTTLS": Security.STARTTLS, "plain": Security.NONE}
_AUTH = {
    "OAuth2": AuthMethod.OAUTH2,
    "password-cleartext": AuthMethod.PASSWORD,
    "plain": AuthMethod.PASSWORD,  # the old name of password-cleartext
    "password-encrypted": AuthMethod.PASSWORD,  # CRAM-MD5: still the rep's password
}
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


class AutoconfigInvalid(ValueError):
    """The autoconfig file is not one MailBeacon can use (the message says why)."""


@dataclass(frozen=True, slots=True)
class Autoconfig:
    """What an autoconfig file offers: the SMTP server, the IMAP server, how to sign in."""

    smtp: ServerSetting
    imap: ServerSetting | None
    auth: tuple[AuthMethod, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    server: ServerSetting
    auth: tuple[AuthMethod, ...]


def parse(data: bytes, email: str) -> Autoconfig:
    """The servers in an autoconfig file for ``email``; raises :class:`AutoconfigInvalid`."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise AutoconfigInvalid(f"refused unsafe XML ({type(error).__name__})") from None
    except StdElementTree.ParseError as error:
        raise AutoconfigInvalid(f"not well-formed XML ({error})") from None
    if root.tag != "clientConfig":
        raise AutoconfigInvalid(f"the root element is <{root.tag}>, not <clientConfig>")
    provider = root.find("emailProvider")
    if provider is None:
        raise AutoconfigInvalid("no <emailProvider> element")
    smtp = _best(_entries(provider.findall("outgoingServer[@type='smtp']"), email))
    if smtp is None:
        raise AutoconfigInvalid("no usable SMTP server (outgoingServer type='smtp')")
    imap = _best(_entries(provider.findall("incomingServer[@type='imap']"), email))
    methods = [*smtp.auth, *(imap.auth if imap else ())]
    auth = tuple(m for m in (AuthMethod.OAUTH2, AuthMethod.PASSWORD) if m in methods)
    return Autoconfig(smtp.server, imap.server if imap else None, auth or (AuthMethod.PASSWORD,))


def _entries(elements: Iterable[StdElementTree.Element], email: str) -> list[_Entry]:
    entries = []
    for element in elements:
        entry = _entry(element, email)
        if entry is not None:
            entries.append(entry)
    return entries


def _entry(element: StdElementTree.Element, email: str) -> _Entry | None:
    """One server element, or None when a part is missing or not understood."""
    host = _substitute(_text(element, "hostname"), email).rstrip(".").lower()
    port_text = _text(element, "port")
    security = _SECURITY.get(_text(element, "socketType"))
    if not _HOST_NAME.match(host) or not port_text.isdigit() or security is None:
        return None
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    methods = [_AUTH.get((a.text or "").strip()) for a in element.findall("authentication")]
    auth = tuple(dict.fromkeys(m for m in methods if m is not None))
    return _Entry(ServerSetting(host, port, security), auth)


def _best(entries: list[_Entry]) -> _Entry | None:
    """The first protected server listed; a plain one only when nothing else is."""
    protected = [e for e in entries if e.server.security is not Security.NONE]
    ranked = protected or entries
    return ranked[0] if ranked else None


def _text(element: StdElementTree.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _substitute(value: str, email: str) -> str:
    local, _, domain = email.rpartition("@")
    return (
        value.replace("%EMAILDOMAIN%", domain)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILADDRESS%", email)
    )


def urls(email: str, domain: str) -> tuple[str, str]:
    """The two places a domain publishes its autoconfig file, in the order tried."""
    query = urllib.parse.urlencode({"emailaddress": email})
    return (
        f"https://autoconfig.{domain}/mail/config-v1.1.xml?{query}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    )


class AutoconfigFetcher:
    """Fetches and parses a domain's autoconfig file through an injected HTTP client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        resolver: dns.asyncresolver.Resolver,
        *,
        port: int = HTTPS_PORT,
    ) -> None:
        self._http = http
        self._resolver = resolver
        self._port = port

    async def find(self, email: str, domain: str, budget: float) -> Autoconfig | None:
        """The first usable autoconfig file of ``domain``; None when there is none.

        Each place gets its part of ``budget`` and the HTTP client's own timeouts end
        a request: cancelling httpx in the middle of a TLS handshake can leave its
        socket open.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + budget * OWN_TIMEOUT_SHARE
        places = urls(email, domain)
        for index, url in enumerate(places):
            share = (end - loop.time()) / (len(places) - index)
            if share <= 0:
                return None
            found = await self._one(url, email, share)
            if found is not None:
                return found
        return None

    async def _one(self, url: str, email: str, budget: float) -> Autoconfig | None:
        data = await self._fetch(url, budget)
        if data is None:
            return None
        try:
            return parse(data, email)
        except AutoconfigInvalid as error:
            log.warning("autoconfig file %s skipped: %s", url.split("?", maxsplit=1)[0], error)
            return None

    async def _fetch(self, url: str, budget: float) -> bytes | None:
        """The body at ``url`` (200 only, capped); None when there is none."""
        target = httpx.URL(url)
        loop = asyncio.get_running_loop()
        end = loop.time() + budget
        address = await first_address(self._resolver, target.host, budget)
        left = end - loop.time()
        if address is None or left <= 0:
            log.info("autoconfig: %s has no address", target.host)
            return None
        request = self._http.build_request(
            "GET",
            target.copy_with(host=address, port=self._port),
            headers={"Host": target.host, "Connection": "close"},
            extensions={"sni_hostname": target.host, "timeout": _timeouts(left)},
        )
        try:
            response = await self._http.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code != 200:
                    log.info("autoconfig: %s answered %s", target.host, response.status_code)
                    return None
                return await _capped(response, target.host)
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            log.info("autoconfig: %s unreachable: %s", target.host, error)
            return None


def _timeouts(seconds: float) -> dict[str, float]:
    return {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}


async def _capped(response: httpx.Response, host: str) -> bytes | None:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BYTES:
            log.warning("autoconfig file from %s skipped: over %d bytes", host, MAX_BYTES)
            return None
    return bytes(body)
