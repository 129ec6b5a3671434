"""The Thunderbird autoconfig parser: good files, malformed ones, hostile ones."""

from __future__ import annotations

import pytest

from mailbeacon.agent.account.autoconfig import AutoconfigInvalid, parse, urls
from mailbeacon.agent.account.model import AuthMethod, Security, ServerSetting

EMAIL = "rep@example.org"

GOOD = b"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.org">
    <domain>example.org</domain>
    <displayName>Example Mail</displayName>
    <incomingServer type="pop3">
      <hostname>pop.example.org</hostname><port>995</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname><port>993</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.org</hostname><port>587</port><socketType>STARTTLS</socketType>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


def config(*servers: str) -> bytes:
    body = "".join(servers)
    return (
        f'<clientConfig version="1.1"><emailProvider id="x">{body}</emailProvider></clientConfig>'
    ).encode()


def server(kind: str, tag: str, host: str, port: str, socket_type: str, *auth: str) -> str:
    methods = "".join(f"<authentication>{a}</authentication>" for a in auth)
    return (
        f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket_type}</socketType>{methods}</{tag}>"
    )


def smtp(host: str, port: str, socket_type: str, *auth: str) -> str:
    return server("smtp", "outgoingServer", host, port, socket_type, *auth)


def imap(host: str, port: str, socket_type: str, *auth: str) -> str:
    return server("imap", "incomingServer", host, port, socket_type, *auth)


def test_a_good_file_gives_smtp_imap_and_sign_in() -> None:
    found = parse(GOOD, EMAIL)
    assert found.smtp == ServerSetting("smtp.example.org", 587, Security.STARTTLS)
    assert found.imap == ServerSetting("imap.example.org", 993, Security.TLS)
    assert found.auth == (AuthMethod.OAUTH2, AuthMethod.PASSWORD)


def test_socket_types_map_to_security() -> None:
    for socket_type, security in [
        ("SSL", Security.TLS), ("STARTTLS", Security.STARTTLS), ("plain", Security.NONE),
    ]:  # fmt: skip
        found = parse(config(smtp("smtp.example.org", "25", socket_type)), EMAIL)
        assert found.smtp.security is security


def test_a_protected_server_wins_over_a_plain_one_listed_first() -> None:
    found = parse(
        config(
            smtp("smtp.example.org", "25", "plain", "password-cleartext"),
            smtp("smtp.example.org", "465", "SSL", "password-cleartext"),
        ),
        EMAIL,
    )
    assert found.smtp == ServerSetting("smtp.example.org", 465, Security.TLS)
    assert found.imap is None
    assert found.auth == (AuthMethod.PASSWORD,)


def test_unusable_entries_are_passed_over() -> None:
    found = parse(
        config(
            smtp("bad host!", "465", "SSL"),
            smtp("smtp.example.org", "99999", "SSL"),
            smtp("smtp.example.org", "465", "TLS-1.3-only"),
            smtp("smtp.example.org", "", "SSL"),
            smtp("smtp.good.example.org.", "465", "SSL", "NTLM"),
        ),
        EMAIL,
    )
    assert found.smtp == ServerSetting("smtp.good.example.org", 465, Security.TLS)
    assert found.auth == (AuthMethod.PASSWORD,)  # nothing known listed: the rep's password


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not well-formed"),
        (b"<clientConfig><emailProvider>", "not well-formed"),
        (b"<html><body>It works!</body></html>", "<html>"),
        (b"<clientConfig version='1.1'/>", "emailProvider"),
        (config(imap("imap.example.org", "993", "SSL")), "no usable SMTP server"),
        (config(smtp("smtp.example.org", "http", "SSL")), "no usable SMTP server"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AutoconfigInvalid, match=reason):
        parse(data, EMAIL)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<clientConfig><emailProvider><outgoingServer type="smtp">
<hostname>&lol9;</hostname><port>465</port><socketType>SSL</socketType>
</outgoingServer></emailProvider></clientConfig>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [<!ENTITY host SYSTEM "file:///etc/hostname">]>
<clientConfig><emailProvider><outgoingServer type="smtp">
<hostname>&host;</hostname><port>465</port><socketType>SSL</socketType>
</outgoingServer></emailProvider></clientConfig>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_hostile_xml_is_refused_before_any_expansion(data: bytes) -> None:
    with pytest.raises(AutoconfigInvalid, match="refused unsafe XML"):
        parse(data, EMAIL)


def test_the_two_places_in_thunderbirds_order() -> None:
    first, second = urls("rep+x@example.org", "example.org")
    assert first == (
        "https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=rep%2Bx%40example.org"
    )
    assert second == "https://example.org/.well-known/autoconfig/mail/config-v1.1.xml"
