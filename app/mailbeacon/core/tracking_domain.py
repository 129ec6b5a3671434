"""Whether a tracking URL can work and helps deliverability: the checks, in plain words.

Recipients load the pixel and follow tracked links from the tracking URL (the
embedded server's ``server.public_url``, or a team's). A loopback or private
address only this computer or network can reach means no open is ever seen from
outside; an IP literal costs every email spam-filter points (SpamAssassin
``NORMAL_HTTP_TO_IP``, Rspamd ``HTTP_TO_IP``); plain http is readable on the way;
a domain that is not a subdomain of the sender's own brings a new domain's
reputation into every email (docs/rules.md, "The tracking domain"). Pure: no DNS,
no network; the reachability check over the network lives in the agent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from mailbeacon.core.language import ENGLISH, Language, mark


class DomainProblem(StrEnum):
    """One thing wrong with a tracking URL, worst first."""

    INVALID = "invalid"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    IP_LITERAL = "ip_literal"
    PLAIN_HTTP = "plain_http"
    NOT_SUBDOMAIN = "not_subdomain"


# Problems that stop recipients elsewhere from reaching the server at all.
UNREACHABLE = frozenset({DomainProblem.INVALID, DomainProblem.LOOPBACK, DomainProblem.PRIVATE})

_SENTENCES = {
    DomainProblem.INVALID: mark("{url} is not a web address recipients could load."),
    DomainProblem.LOOPBACK: mark(
        "{host} is this computer: opens and clicks are only seen when the email is "
        "read on this computer, never by your recipients."
    ),
    DomainProblem.PRIVATE: mark(
        "{host} is a private network address: recipients outside that network can "
        "never reach it, so their opens and clicks are not seen."
    ),
    DomainProblem.IP_LITERAL: mark(
        "{host} is a bare IP address: spam filters add points to every email with "
        "links to one. Use a name such as track.yourcompany.com."
    ),
    DomainProblem.PLAIN_HTTP: mark(
        "{url} is not https: links and opens travel unencrypted, and some mail "
        "clients warn about or block them."
    ),
    DomainProblem.NOT_SUBDOMAIN: mark(
        "{host} is not part of your own domain {sender}: every tracked email brings "
        "that domain's reputation with it. A subdomain such as track.{sender} is "
        "safer with spam filters."
    ),
}


@dataclass(frozen=True, slots=True)
class DomainCheck:
    """What is wrong with one tracking URL (nothing: ``problems`` is empty)."""

    url: str
    host: str
    problems: tuple[DomainProblem, ...]
    sender_domain: str | None = None

    @property
    def reachable_by_recipients(self) -> bool:
        """False when recipients elsewhere cannot reach it at all."""
        return not UNREACHABLE.intersection(self.problems)

    def sentences(self, tr: Language = ENGLISH) -> list[str]:
        """One plain sentence per problem, worst first, in ``tr`` (English: the
        command line)."""
        return [
            tr.t(_SENTENCES[problem], url=self.url, host=self.host, sender=self.sender_domain)
            for problem in self.problems
        ]


def check_tracking_url(url: str, sender_domain: str | None = None) -> DomainCheck:
    """The problems of ``url`` as a tracking URL for mail from ``sender_domain``."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return DomainCheck(url, host, (DomainProblem.INVALID,), sender_domain)
    problems: list[DomainProblem] = []
    address = _address(host)
    if host == "localhost" or host.endswith(".localhost") or (address and address.is_loopback):
        problems.append(DomainProblem.LOOPBACK)
    elif address is not None and not address.is_global:
        problems.append(DomainProblem.PRIVATE)
    if address is not None:
        problems.append(DomainProblem.IP_LITERAL)
    if parts.scheme == "http":
        problems.append(DomainProblem.PLAIN_HTTP)
    sender = (sender_domain or "").lower().strip(".")
    ours = DomainProblem.LOOPBACK in problems or _within(host, sender)
    if address is None and sender and not ours:
        problems.append(DomainProblem.NOT_SUBDOMAIN)
    return DomainCheck(url, host, tuple(problems), sender_domain)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _within(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)
