"""What the probe knocks on, in order of preference: implicit TLS first (RFC 8314)."""

from __future__ import annotations

import dns.asyncresolver

from mailbeacon.agent.account.model import Security, ServerSetting
from mailbeacon.agent.account.probe import Probe


def test_the_usual_hosts_and_ports_tls_first() -> None:
    probe = Probe(dns.asyncresolver.Resolver(configure=False))
    assert probe.candidates("example.org") == [
        ("smtp", ServerSetting("smtp.example.org", 465, Security.TLS)),
        ("smtp", ServerSetting("mail.example.org", 465, Security.TLS)),
        ("smtp", ServerSetting("smtp.example.org", 587, Security.STARTTLS)),
        ("smtp", ServerSetting("mail.example.org", 587, Security.STARTTLS)),
        ("imap", ServerSetting("imap.example.org", 993, Security.TLS)),
        ("imap", ServerSetting("mail.example.org", 993, Security.TLS)),
        ("imap", ServerSetting("imap.example.org", 143, Security.STARTTLS)),
        ("imap", ServerSetting("mail.example.org", 143, Security.STARTTLS)),
    ]


def test_ports_given_for_a_test_keep_tls_first() -> None:
    probe = Probe(
        dns.asyncresolver.Resolver(configure=False),
        smtp_ports=((2587, Security.STARTTLS), (2465, Security.TLS)),
        imap_ports=(),
    )
    assert [setting.port for _, setting in probe.candidates("example.org")] == [
        2465, 2465, 2587, 2587,
    ]
