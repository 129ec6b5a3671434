"""Discovery end to end: real dnsmasq, real Caddy (tls internal), real SMTP and IMAP servers.

dnsmasq on a loopback port is the only name server (``MAILBEACON_NAMESERVER``); it
says where every test host is, so Caddy on 127.0.0.20:443 answers for
``autoconfig.example.test`` and the probe finds an aiosmtpd sink on 127.0.0.31.
Every source answers once ("preset", "mx", "srv", "autoconfig", "probe"), and the
dead cases answer with DiscoveryFailed within the deadline.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.asyncresolver
import httpx
import pytest

from mailbeacon.agent.account.discovery import DiscoveryFailed, discover, resolver_from_env
from mailbeacon.agent.account.model import Security, ServerSetting, Source
from mailbeacon.agent.account.probe import Ports, Probe
from tests.helpers import dovecot as dv
from tests.helpers.caddy import Caddy, running_caddy
from tests.helpers.certs import self_signed
from tests.helpers.dnsmasq import Nameserver, Srv, Zone, running_dnsmasq, silent_nameserver
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink, TestTLS

pytestmark = pytest.mark.needs_program("dnsmasq")

CADDY = "127.0.0.20"
SMTP_TLS_HOST = "127.0.0.31"
SMTP_STARTTLS_HOST = "127.0.0.32"
SILENT = "127.0.0.41"

ZONE = Zone(
    mx=[
        ("acme-google.test", "aspmx.l.google.com", 1),
        ("acme-google.test", "alt1.aspmx.l.google.com", 5),
        ("acme-ms.test", "acme-ms-test.mail.protection.outlook.com", 0),
        ("srvmail.test", "mx.srvmail.test", 10),  # its own MX: no provider, on to SRV
    ],
    srv=[
        Srv("_submission._tcp.srvmail.test", "mail.srvmail.test", 587, 0, 1),
        Srv("_submissions._tcp.srvmail.test"),  # ".": not offered
        Srv("_imaps._tcp.srvmail.test", "mail.srvmail.test", 993, 0, 1),
        Srv("_imap._tcp.srvmail.test"),
        Srv("_submission._tcp.prio.test", "slow.prio.test", 587, 10, 0),
        Srv("_submissions._tcp.prio.test", "fast.prio.test", 465, 0, 0),
        Srv("_submission._tcp.workspace-srv.test", "smtp.gmail.com", 465, 0, 0),
        Srv("_submission._tcp.dotted.test"),
        Srv("_submissions._tcp.dotted.test"),
        Srv("_imaps._tcp.dotted.test", "imap.dotted.test", 993, 0, 0),
    ],
    hosts={
        "mail.srvmail.test": "127.0.0.10",
        "autoconfig.example.test": CADDY,
        "example.test": CADDY,
        "autoconfig.broken.test": CADDY,
        "broken.test": CADDY,
        "smtp.probe.test": SMTP_TLS_HOST,
        "imap.probe.test": "127.0.0.1",  # Dovecot listens there only
        "smtp.starttls.test": SMTP_STARTTLS_HOST,
        "imap.starttls.test": "127.0.0.1",
        **{f"{name}silent.test": SILENT for name in ("", "autoconfig.", "smtp.", "imap.", "mail.")},
    },
)

AUTOCONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1"><emailProvider id="{domain}">
  <domain>{domain}</domain>
  <incomingServer type="imap"><hostname>{imap}</hostname><port>993</port>
    <socketType>SSL</socketType><authentication>password-cleartext</authentication>
  </incomingServer>
  <outgoingServer type="smtp"><hostname>{smtp}</hostname><port>587</port>
    <socketType>STARTTLS</socketType><authentication>password-cleartext</authentication>
  </outgoingServer>
</emailProvider></clientConfig>
"""

DEADLINE = 3.0
SLACK = 0.75  # scheduling on a shared two-core machine


@pytest.fixture(scope="module")
def nameserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nameserver]:
    with running_dnsmasq(ZONE, tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.log") as server:
        yield server


@pytest.fixture
def resolver(nameserver: Nameserver) -> dns.asyncresolver.Resolver:
    return resolver_from_env({"MAILBEACON_NAMESERVER": nameserver.env})


def _site(root: Path, path: str, text: str) -> Path:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def caddy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caddy]:
    work = tmp_path_factory.mktemp("caddy")
    thunderbird_path = "mail/config-v1.1.xml"
    well_known_path = ".well-known/autoconfig/mail/config-v1.1.xml"
    example = _site(
        work / "example",
        thunderbird_path,
        AUTOCONFIG.format(
            domain="example.test", smtp="smtp.%EMAILDOMAIN%", imap="imap.example.test"
        ),
    )
    broken = _site(work / "broken", thunderbird_path, "<clientConfig><emailProvider>")
    broken_apex = _site(
        work / "broken-apex",
        well_known_path,
        AUTOCONFIG.format(domain="broken.test", smtp="out.broken.test", imap="in.broken.test"),
    )
    sites = {
        "autoconfig.example.test": example,
        "example.test": example,
        "autoconfig.broken.test": broken,
        "broken.test": broken_apex,
    }
    with running_caddy(work / "server", sites, address=CADDY) as server:
        yield server


@pytest.fixture
async def http(caddy: Caddy) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=caddy.context(), trust_env=False) as client:
        yield client


@pytest.fixture
async def plain_http() -> AsyncIterator[httpx.AsyncClient]:
    """For tests that never reach Caddy."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def closed_ports() -> Ports:
    """Probe ports where nothing listens (refused at once)."""
    return ((free_port(), Security.TLS), (free_port(), Security.STARTTLS))


async def test_a_providers_domain_answers_from_the_preset_without_the_network(
    plain_http: httpx.AsyncClient,
) -> None:
    with silent_nameserver() as dead:
        resolver = resolver_from_env({"MAILBEACON_NAMESERVER": dead.env})
        found = await discover(
            "Rep@GMail.com", resolver=resolver, http=plain_http, probe=Probe(resolver)
        )
    assert found.to_json() == {
        "email": "Rep@GMail.com",
        "provider": "google",
        "source": "preset",
        "smtp": {"host": "smtp.gmail.com", "port": 465, "security": "tls"},
        "imap": {"host": "imap.gmail.com", "port": 993, "security": "tls"},
        "auth": ["oauth2", "password"],
        "issuer": "https://accounts.google.com",
    }


@pytest.mark.parametrize(
    ("email", "provider", "smtp"),
    [
        ("rep@acme-google.test", "google", ServerSetting("smtp.gmail.com", 465, Security.TLS)),
        (
            "rep@acme-ms.test",
            "microsoft",
            ServerSetting("smtp.office365.com", 587, Security.STARTTLS),
        ),
    ],
)
async def test_a_custom_domain_hosted_by_google_or_microsoft_answers_from_mx(
    email: str,
    provider: str,
    smtp: ServerSetting,
    resolver: dns.asyncresolver.Resolver,
    plain_http: httpx.AsyncClient,
) -> None:
    found = await discover(email, resolver=resolver, http=plain_http, probe=Probe(resolver))
    assert (found.source, found.provider, found.smtp) == (Source.MX, provider, smtp)
    assert found.issuer is not None
    assert found.scopes


async def test_srv_records_answer_and_a_dot_target_is_not_offered(
    resolver: dns.asyncresolver.Resolver, plain_http: httpx.AsyncClient
) -> None:
    found = await discover(
        "rep@srvmail.test", resolver=resolver, http=plain_http, probe=Probe(resolver)
    )
    assert found.to_json() == {
        "email": "rep@srvmail.test",
        "provider": None,
        "source": "srv",
        "smtp": {"host": "mail.srvmail.test", "port": 587, "security": "starttls"},
        "imap": {"host": "mail.srvmail.test", "port": 993, "security": "tls"},
        "auth": ["password"],
        "issuer": None,
    }


async def test_srv_priority_decides_and_a_providers_host_brings_its_sign_in(
    resolver: dns.asyncresolver.Resolver, plain_http: httpx.AsyncClient
) -> None:
    probe = Probe(resolver)
    found = await discover("rep@prio.test", resolver=resolver, http=plain_http, probe=probe)
    assert found.smtp == ServerSetting("fast.prio.test", 465, Security.TLS)
    assert found.imap is None
    hosted = await discover(
        "rep@workspace-srv.test", resolver=resolver, http=plain_http, probe=probe
    )
    assert (hosted.source, hosted.provider) == (Source.SRV, "google")
    assert hosted.issuer == "https://accounts.google.com"


async def test_srv_with_submission_not_offered_finds_nothing(
    resolver: dns.asyncresolver.Resolver, plain_http: httpx.AsyncClient
) -> None:
    probe = Probe(resolver, smtp_ports=closed_ports(), imap_ports=closed_ports())
    with pytest.raises(DiscoveryFailed) as failed:
        await discover("rep@dotted.test", resolver=resolver, http=plain_http, probe=probe)
    assert str(failed.value) == (
        "No mail servers were found for dotted.test. Enter them under Edit manually."
    )


@pytest.mark.needs_program("caddy")
async def test_autoconfig_over_https_answers_with_the_name_pinned_to_caddys_ca(
    resolver: dns.asyncresolver.Resolver, http: httpx.AsyncClient
) -> None:
    found = await discover("rep@example.test", resolver=resolver, http=http, probe=Probe(resolver))
    assert found.to_json() == {
        "email": "rep@example.test",
        "provider": None,
        "source": "autoconfig",
        "smtp": {"host": "smtp.example.test", "port": 587, "security": "starttls"},
        "imap": {"host": "imap.example.test", "port": 993, "security": "tls"},
        "auth": ["password"],
        "issuer": None,
    }


@pytest.mark.needs_program("caddy")
async def test_autoconfig_from_a_server_not_trusted_is_not_used(
    caddy: Caddy, resolver: dns.asyncresolver.Resolver, plain_http: httpx.AsyncClient
) -> None:
    probe = Probe(resolver, smtp_ports=closed_ports(), imap_ports=closed_ports())
    with pytest.raises(DiscoveryFailed):
        await discover("rep@example.test", resolver=resolver, http=plain_http, probe=probe)


@pytest.mark.needs_program("caddy")
@pytest.mark.expect_log("autoconfig file https://autoconfig.broken.test/mail/config-v1.1.xml")
async def test_a_malformed_autoconfig_file_is_skipped_and_the_well_known_one_used(
    resolver: dns.asyncresolver.Resolver, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    found = await discover("rep@broken.test", resolver=resolver, http=http, probe=Probe(resolver))
    assert found.source is Source.AUTOCONFIG
    assert found.smtp == ServerSetting("out.broken.test", 587, Security.STARTTLS)
    assert found.imap == ServerSetting("in.broken.test", 993, Security.TLS)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "autoconfig file https://autoconfig.broken.test/mail/config-v1.1.xml skipped: "
        "not well-formed XML (no element found: line 1, column 29)"
    ]


@pytest.fixture(scope="module")
def probe_tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    names = ("smtp.probe.test", "imap.probe.test", "smtp.starttls.test", "imap.starttls.test")
    cert, key = self_signed(tmp_path_factory.mktemp("probe-tls"), "probe.test", names, ())
    return TestTLS(cert, key)


@pytest.fixture(scope="module")
def imap_server(probe_tls: TestTLS) -> Iterator[dv.Dovecot]:
    with dv.running_dovecot(tls=(probe_tls.cert, probe_tls.key)) as running:
        yield running


@pytest.mark.needs_program("dovecot")
async def test_the_probe_finds_implicit_tls_smtp_and_imap(
    resolver: dns.asyncresolver.Resolver,
    plain_http: httpx.AsyncClient,
    probe_tls: TestTLS,
    imap_server: dv.Dovecot,
) -> None:
    with SmtpSink(host=SMTP_TLS_HOST, tls=probe_tls, implicit_tls=True) as sink:
        probe = Probe(
            resolver,
            ssl_context=probe_tls.client_context(),
            smtp_ports=((free_port(), Security.STARTTLS), (sink.port, Security.TLS)),
            imap_ports=(
                (imap_server.imaps_port, Security.TLS),
                (imap_server.port, Security.STARTTLS),
            ),
        )
        found = await discover("rep@probe.test", resolver=resolver, http=plain_http, probe=probe)
    assert found.source is Source.PROBE
    assert found.smtp == ServerSetting("smtp.probe.test", sink.port, Security.TLS)
    assert found.imap == ServerSetting("imap.probe.test", imap_server.imaps_port, Security.TLS)
    assert found.provider is None


@pytest.mark.needs_program("dovecot")
async def test_the_probe_upgrades_starttls_ports_when_no_tls_port_answers(
    resolver: dns.asyncresolver.Resolver,
    plain_http: httpx.AsyncClient,
    probe_tls: TestTLS,
    imap_server: dv.Dovecot,
) -> None:
    with SmtpSink(host=SMTP_STARTTLS_HOST, tls=probe_tls, starttls=True) as sink:
        probe = Probe(
            resolver,
            ssl_context=probe_tls.client_context(),
            smtp_ports=((free_port(), Security.TLS), (sink.port, Security.STARTTLS)),
            imap_ports=((free_port(), Security.TLS), (imap_server.port, Security.STARTTLS)),
        )
        found = await discover(
            "rep@starttls.test", resolver=resolver, http=plain_http, probe=probe
        )
    assert found.source is Source.PROBE
    assert found.smtp == ServerSetting("smtp.starttls.test", sink.port, Security.STARTTLS)
    assert found.imap == ServerSetting("imap.starttls.test", imap_server.port, Security.STARTTLS)


@pytest.mark.needs_program("openssl")
async def test_the_probe_refuses_a_certificate_not_trusted(
    resolver: dns.asyncresolver.Resolver, plain_http: httpx.AsyncClient, probe_tls: TestTLS
) -> None:
    with SmtpSink(host=SMTP_TLS_HOST, tls=probe_tls, implicit_tls=True) as sink:
        # The system's trust store: the test certificate is no real mail server's.
        probe = Probe(
            resolver, smtp_ports=((sink.port, Security.TLS),), imap_ports=closed_ports()
        )
        with pytest.raises(DiscoveryFailed):
            await discover("rep@probe.test", resolver=resolver, http=plain_http, probe=probe)


async def test_a_dead_name_server_still_answers_within_the_deadline(
    plain_http: httpx.AsyncClient,
) -> None:
    with silent_nameserver() as dead:
        resolver = resolver_from_env({"MAILBEACON_NAMESERVER": dead.env})
        probe = Probe(resolver)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DiscoveryFailed, match=r"No mail servers were found for acme\.test"):
            await discover(
                "rep@acme.test", resolver=resolver, http=plain_http, probe=probe,
                deadline=DEADLINE,
            )  # fmt: skip
        elapsed = loop.time() - started
    assert elapsed < DEADLINE + SLACK


@pytest.fixture
def silent_listeners() -> Iterator[tuple[Ports, Ports]]:
    """Ports on SILENT (443 and the probe's) that take connections and never say a word."""
    sockets = []
    try:
        for port in (443, 0, 0, 0, 0):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind((SILENT, port))
            sock.listen(16)
        smtp, starttls, imap, imap_starttls = (s.getsockname()[1] for s in sockets[1:])
        yield (
            ((smtp, Security.TLS), (starttls, Security.STARTTLS)),
            ((imap, Security.TLS), (imap_starttls, Security.STARTTLS)),
        )
    finally:
        for sock in sockets:
            sock.close()


async def test_servers_that_never_answer_still_answer_within_the_deadline(
    resolver: dns.asyncresolver.Resolver,
    plain_http: httpx.AsyncClient,
    silent_listeners: tuple[Ports, Ports],
) -> None:
    smtp_ports, imap_ports = silent_listeners
    probe = Probe(resolver, smtp_ports=smtp_ports, imap_ports=imap_ports, connect_timeout=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DiscoveryFailed, match=r"silent\.test"):
        await discover(
            "rep@silent.test", resolver=resolver, http=plain_http, probe=probe, deadline=DEADLINE
        )
    assert loop.time() - started < DEADLINE + SLACK


async def test_an_address_without_a_domain_says_how_to_write_one(
    resolver: dns.asyncresolver.Resolver, plain_http: httpx.AsyncClient
) -> None:
    with pytest.raises(DiscoveryFailed, match=r"enter it as name@example\.org"):
        await discover("rep", resolver=resolver, http=plain_http, probe=Probe(resolver))
