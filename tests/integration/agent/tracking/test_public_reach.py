""" "Test tracking" for a public address, end to end: a real name server (dnsmasq), a
real TLS server (Caddy, its own CA) in front of the real tracking server.

The names live only in dnsmasq; addresses on this machine stand for the internet
(the address policy accepts loopback), and the check trusts Caddy's CA (plus one
certificate made for another name) instead of the system's. Each case says, step by
step, what it found: success, a name that does not exist, a name pointing at a
private address, a certificate for another name, a certificate nobody trusts, a
server answering something other than the pixel, and a name server that is silent.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from mailbeacon.agent.account.discovery import resolver_from_env
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.tracking.check import TrackingCheck, check_tracking
from mailbeacon.agent.tracking.reach import Outcome, Probe
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.profile import Profile
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import run_cli
from tests.helpers.caddy import Caddy, Proxy, running_caddy
from tests.helpers.certs import self_signed
from tests.helpers.dnsmasq import Nameserver, Zone, running_dnsmasq, silent_nameserver
from tests.helpers.keyring_file_backend import ENV_FILE, FileKeyring
from tests.helpers.net import free_port

pytestmark = [pytest.mark.needs_program("dnsmasq"), pytest.mark.needs_program("caddy")]

FRONT = "127.0.0.23"  # Caddy: the tracking server's public face
ZONE = Zone(
    hosts={
        "track.example.test": FRONT,
        "wrong.example.test": FRONT,
        "notpixel.example.test": FRONT,
        "private.example.test": "10.0.0.5",
    }
)


@dataclass(frozen=True)
class Front:
    """Caddy's ports, the certificates the check trusts, and the server behind."""

    caddy: Caddy
    port: int  # track. and notpixel. (certificates from Caddy's CA)
    wrong_port: int  # a certificate made out to someone-else.test
    trusted: ssl.SSLContext
    upstream_port: int


@pytest.fixture(scope="module")
def nameserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nameserver]:
    with running_dnsmasq(ZONE, tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.log") as server:
        yield server


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    work = tmp_path_factory.mktemp("caddy")
    upstream = free_port()
    port, wrong_port = free_port(), free_port()
    (work / "site").mkdir()
    (work / "site" / "index.html").write_text("<p>Our company</p>")
    cert_dir = work / "other"
    cert_dir.mkdir()
    other = self_signed(cert_dir, "someone-else.test", ("someone-else.test",), ())
    sites: dict[str, Path | Proxy] = {
        "track.example.test": Proxy(f"127.0.0.1:{upstream}"),
        "notpixel.example.test": work / "site",
        "": Proxy(f"127.0.0.1:{upstream}", cert=other, port=wrong_port),
    }
    with running_caddy(work / "server", sites, address=FRONT, port=port) as caddy:
        trusted = caddy.context()
        trusted.load_verify_locations(str(other[0]))
        yield Front(caddy, port, wrong_port, trusted, upstream)


@pytest.fixture
async def enrollment(front: Front, tmp_path: Path) -> AsyncIterator[Enrollment]:
    """A user of the real tracking server, which listens where Caddy passes requests."""
    config = ServerConfig(
        db_path=tmp_path / "server.db", host="127.0.0.1", port=front.upstream_port
    )
    server = TrackingServer(config)
    await server.start()
    try:
        yield await server.add_user("rep")
    finally:
        await server.stop()


def probe(nameserver: Nameserver, context: ssl.SSLContext, **options: object) -> Probe:
    resolver = resolver_from_env({"MAILBEACON_NAMESERVER": nameserver.env})
    return Probe(resolver, context, reachable=lambda a: a.is_loopback, seconds=5.0, **options)  # type: ignore[arg-type]


async def check(enrollment: Enrollment, url: str, used: Probe) -> TrackingCheck:
    at = Enrollment(url, enrollment.user_id, enrollment.api_token, enrollment.signing_key)
    return await check_tracking(at, seconds=5.0, probe=used)


def outcomes(result: TrackingCheck) -> list[Outcome]:
    return [step.outcome for step in result.steps]


async def test_a_public_name_that_works_says_what_each_step_found(
    enrollment: Enrollment, front: Front, nameserver: Nameserver
) -> None:
    url = f"https://track.example.test:{front.port}"
    result = await check(
        enrollment, url, probe(nameserver, front.trusted, expiry_warning=timedelta(hours=1))
    )
    assert result.ok is True, result.message
    assert outcomes(result) == [Outcome.YES, Outcome.YES, Outcome.YES]
    lines = result.message.splitlines()
    assert lines[0] == f"Tracking works: recipients can reach {url}."
    assert lines[1] == f"Name resolves: yes ({FRONT})"
    assert lines[2].startswith(
        "Secure connection: yes, the certificate for track.example.test is valid until 20"
    )
    assert lines[2].endswith(" UTC")
    assert lines[3].startswith("Answer: the pixel came back in ") and lines[3].endswith(" ms")
    # Caddy's own certificates last 12 hours: by the default measure, that is soon.
    soon = await check(enrollment, url, probe(nameserver, front.trusted))
    assert soon.ok is True
    assert "yes, but the certificate for track.example.test ends in 1" in soon.message
    assert "renewed automatically" in soon.message


async def test_a_name_that_does_not_exist_is_said_and_nothing_else_is_tried(
    enrollment: Enrollment, front: Front, nameserver: Nameserver
) -> None:
    result = await check(
        enrollment, "https://missing.example.test", probe(nameserver, front.trusted)
    )
    assert result.ok is False
    assert outcomes(result) == [Outcome.NO, Outcome.NOT_CHECKED, Outcome.NOT_CHECKED]
    lines = result.message.splitlines()
    assert lines[0] == "Recipients cannot reach tracking at https://missing.example.test:"
    assert lines[1].startswith("Name resolves: no. missing.example.test does not exist in DNS")
    assert "add an A record for missing.example.test" in lines[1]
    assert lines[2] == ("Secure connection: not checked (the name gave no address to connect to)")


async def test_a_name_pointing_at_a_private_address_is_not_reachable(
    enrollment: Enrollment, front: Front, nameserver: Nameserver
) -> None:
    result = await check(
        enrollment, "https://private.example.test", probe(nameserver, front.trusted)
    )
    assert result.ok is False
    assert result.steps[0].line() == (
        "Name resolves: to 10.0.0.5, which recipients outside your network cannot reach. "
        "Point private.example.test at the tracking server's public address."
    )


async def test_a_certificate_made_out_to_another_name_fails_the_secure_connection(
    enrollment: Enrollment, front: Front, nameserver: Nameserver
) -> None:
    url = f"https://wrong.example.test:{front.wrong_port}"
    result = await check(enrollment, url, probe(nameserver, front.trusted))
    assert result.ok is False
    assert outcomes(result) == [Outcome.YES, Outcome.NO, Outcome.NOT_CHECKED]
    assert (
        result.steps[1]
        .line()
        .startswith(
            "Secure connection: no. The server's certificate is not made out to "
            "wrong.example.test. The server needs a certificate for wrong.example.test"
        )
    )
    assert result.steps[2].line() == (
        "Answer: not checked (there was no secure connection to ask over)"
    )


async def test_a_certificate_nobody_trusts_fails_the_secure_connection(
    enrollment: Enrollment, front: Front, nameserver: Nameserver
) -> None:
    nothing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts no authority at all
    url = f"https://track.example.test:{front.port}"
    result = await check(enrollment, url, probe(nameserver, nothing))
    assert result.ok is False
    assert outcomes(result) == [Outcome.YES, Outcome.NO, Outcome.NOT_CHECKED]
    assert "not signed by an authority recipients' devices trust" in result.steps[1].text


async def test_a_server_answering_something_else_than_the_pixel_is_named(
    enrollment: Enrollment, front: Front, nameserver: Nameserver
) -> None:
    url = f"https://notpixel.example.test:{front.port}"
    result = await check(
        enrollment, url, probe(nameserver, front.trusted, expiry_warning=timedelta(0))
    )
    assert result.ok is False
    assert outcomes(result) == [Outcome.YES, Outcome.YES, Outcome.NO]
    assert result.steps[2].line().startswith("Answer: notpixel.example.test answered 404 ")
    assert "instead of the pixel (200 image/gif)" in result.steps[2].text


async def test_a_silent_name_server_is_could_not_check_not_a_failure_of_the_name(
    enrollment: Enrollment, front: Front
) -> None:
    with silent_nameserver() as dead:
        resolver = resolver_from_env({"MAILBEACON_NAMESERVER": dead.env})
        used = Probe(resolver, front.trusted, reachable=lambda a: a.is_loopback, seconds=1.0)
        result = await check(enrollment, f"https://track.example.test:{front.port}", used)
    assert result.ok is False
    assert outcomes(result) == [Outcome.NOT_CHECKED] * 3
    assert result.message.startswith("Tracking at https://track.example.test:")
    assert "could not be checked: no name server answered for track.example.test" in (
        result.message
    )


async def test_by_default_the_name_is_asked_of_the_configured_name_server_and_this_machine_is_not_the_internet(  # noqa: E501
    enrollment: Enrollment,
    front: Front,
    nameserver: Nameserver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILBEACON_NAMESERVER", nameserver.env)
    at = Enrollment(
        f"https://track.example.test:{front.port}",
        enrollment.user_id,
        enrollment.api_token,
        enrollment.signing_key,
    )
    result = await check_tracking(at, seconds=5.0)
    assert result.ok is False
    assert (
        result.steps[0]
        .line()
        .startswith(
            f"Name resolves: to {FRONT}, which recipients outside your network cannot reach."
        )
    )


# ---------------------------------------------------------------- mailbeacon status


async def test_status_test_tracking_reports_what_the_check_found(
    enrollment: Enrollment,
    front: Front,
    nameserver: Nameserver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``mailbeacon status --test-tracking``: the settings dialog's check for scripts;
    "unknown" becomes "no" with each step's finding (this machine is not the internet
    for the real command), and the text form puts each step on a line of its own."""
    monkeypatch.setenv("MAILBEACON_NAMESERVER", nameserver.env)
    keyring_file = tmp_path / "keyring.json"
    monkeypatch.setenv(ENV_FILE, str(keyring_file))
    root = tmp_path / "profile"
    url = f"https://track.example.test:{front.port}"
    settings = Settings()
    settings.set("server.mode", "remote")
    settings.set("server.url", url)
    settings.save(Profile.at(root).config_file)
    secrets = SecretStore(Profile.at(root).keyring_service, {}, backend=FileKeyring())
    secrets.set_enrollment(
        Enrollment(url, enrollment.user_id, enrollment.api_token, enrollment.signing_key)
    )

    code, out, err = await run_cli(root, keyring_file, "status", "--json")
    assert code in (0, 1), err
    assert json.loads(out)["tracking"]["reachable"] == "unknown"

    code, out, err = await run_cli(root, keyring_file, "status", "--json", "--test-tracking")
    assert code == 1, err
    tracking = json.loads(out)["tracking"]
    assert tracking["public_url"] == url and tracking["reachable"] == "no"
    assert tracking["detail"].splitlines()[:2] == [
        f"Recipients cannot reach tracking at {url}:",
        f"Name resolves: to {FRONT}, which recipients outside your network cannot reach. "
        "Point track.example.test at the tracking server's public address.",
    ]
    code, out, err = await run_cli(root, keyring_file, "status", "--test-tracking")
    assert code == 1, err
    assert f"Tracking: {url} reachable no - Recipients cannot reach tracking at" in out
    assert f"\n  Name resolves: to {FRONT}" in out
