"""Isolation and inert text, seen from outside (docs/promises.md: "Isolation", "hostile HTML in
subjects (shown as text, never rendered)").

A rep configures everything through ``mailbeacon config set`` (secrets go to the
keyring), runs the agent with no secret on its command line, sends a tracked email
through the relay to an upstream that requires a login, and the recipient opens it.
Afterwards no file of the profile, no log line of the agent or the server, no command
output and no process command line holds the relay password, the upstream password,
the API token, the signing key or the enrollment key; the relay refuses mail without
the password; and a subject full of HTML and terminal escapes reaches the rep as
plain text.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import time
from pathlib import Path

from mailbeacon.core.enrollment import Enrollment
from tests.e2e.faults import PIXEL
from tests.e2e.harness import (
    Rep,
    ServerProcess,
    recipient_client,
    stopped_at_end,
)
from tests.helpers.agent_process import AgentProcess
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink

RELAY_PASSWORD = "Relay-5ecret-e2e-Zq81"
UPSTREAM_USER = "rep-at-provider"
UPSTREAM_PASSWORD = "Upstream-5ecret-e2e-Wx42"
HOSTILE_SUBJECT = (
    b"<img src=x onerror=alert(1)><script>alert(2)</script> Oferta "
    b"\x1b[2J\x1b]0;pwned\x07 &lt;b&gt;"
)
MIN_OPEN_S = 2.0  # the classifier's "faster than a human" threshold


def _message(subject: bytes) -> bytes:
    return (
        b"From: rep@rep.example\r\nTo: ola@client.example\r\nSubject: " + subject + b"\r\n"
        b"Message-ID: <inert-1@rep.example>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Hi, <a href=\"https://shop.example/o\">the offer</a></p>\r\n"
    )


def _relay_replies(port: int) -> list[int]:
    """MAIL without a login, then a wrong password: both refused."""
    codes = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        codes.append(client.mail("rep@rep.example")[0])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        try:
            client.login("mailbeacon", RELAY_PASSWORD + "x")
        except smtplib.SMTPAuthenticationError as exc:
            codes.append(exc.smtp_code)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        try:
            client.login("someone-else", RELAY_PASSWORD)
        except smtplib.SMTPAuthenticationError as exc:
            codes.append(exc.smtp_code)
    return codes


def _send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login("mailbeacon", RELAY_PASSWORD)
        client.sendmail("rep@rep.example", ["ola@client.example"], _message(HOSTILE_SUBJECT))


async def test_no_secret_in_profile_logs_outputs_or_command_lines(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server")
    await server.astart()
    rep = Rep(tmp_path / "rep", relay_password=RELAY_PASSWORD)
    outputs: list[str] = []
    try:
        user = server.add_user("rep")
        key = user["enrollment_key"]
        enrollment = Enrollment.decode(key)
        for setting, value in (("server.enrollment", key), ("relay.password", RELAY_PASSWORD),
                               ("upstream.user", UPSTREAM_USER),
                               ("upstream.password", UPSTREAM_PASSWORD),
                               ("tracking.settle_seconds", "0")):
            code, out, err = await rep.cli("--log-level", "DEBUG", "config", "set", setting, value)
            assert code == 0, err
            outputs += [out, err]

        with SmtpSink(user=UPSTREAM_USER, password=UPSTREAM_PASSWORD) as sink:
            agent = AgentProcess(  # no secret on the command line: all from the keyring
                rep.profile, rep.keyring,
                "--smtp-listen", f"127.0.0.1:{rep.relay_port}",
                "--upstream", f"smtp://127.0.0.1:{sink.port}",
            )
            async with stopped_at_end(agent):
                assert agent.proc is not None
                proc_file = Path(f"/proc/{agent.proc.pid}/cmdline")
                cmdline = await asyncio.to_thread(proc_file.read_bytes)
                assert await asyncio.to_thread(_relay_replies, rep.relay_port) == [530, 535, 535]

                await asyncio.to_thread(_send, rep.relay_port)
                sent = time.time()
                [delivered] = await sink.until(1, within=30)
                assert sink.handler.failed_logins == 0  # the upstream login came from the keyring
                [pixel] = PIXEL.findall(delivered.data.decode("utf-8", "replace"))
                await asyncio.sleep(max(0.0, sent + MIN_OPEN_S + 0.2 - time.time()))
                async with recipient_client() as viewer:
                    assert (await viewer.get(pixel)).status_code == 200
                opened = await agent.notification(within=10)

                for args in (("config", "list"), ("config", "get", "relay.password"),
                             ("config", "get", "upstream.password"),
                             ("config", "get", "server.enrollment"),
                             ("activity",), ("activity", "--json"),
                             ("record", "ola@client.example"),
                             ("record", "ola@client.example", "--json")):
                    code, out, err = await rep.cli("--log-level", "DEBUG", *args)
                    assert code == 0, err
                    outputs += [out, err]
            agent_log = "".join(agent.stderr_lines)
    finally:
        server.stop()

    # The subject arrives as text: its markup kept as characters, its control
    # characters (terminal escapes) dropped, so no output can be hijacked by it.
    subject = "".join(c for c in HOSTILE_SUBJECT.decode() if c.isprintable())
    assert opened["subject"] == subject and subject in opened["title"]
    activity_text = outputs[outputs.index(next(o for o in outputs if "Oferta" in o))]
    for text in outputs:
        assert "\x1b" not in text and "\x07" not in text, text
    assert "<script>alert(2)</script>" in activity_text  # shown as text, not dropped

    secrets = {
        "relay password": RELAY_PASSWORD.encode(),
        "upstream password": UPSTREAM_PASSWORD.encode(),
        "API token": enrollment.api_token.encode(),
        "signing key (base64)": base64.urlsafe_b64encode(enrollment.signing_key).rstrip(b"="),
        "signing key (hex)": enrollment.signing_key.hex().encode(),
        "enrollment key": key.encode(),
    }
    places: dict[str, bytes] = {
        str(path): path.read_bytes() for path in rep.profile.rglob("*") if path.is_file()
    }
    places["agent log (stderr)"] = agent_log.encode()
    places["server log (stderr)"] = server.log_text().encode()
    places["agent command line"] = cmdline
    for n, text in enumerate(outputs):
        places[f"command output {n}"] = text.encode()
    assert len(places) > 5 and any(p.endswith("config.json") for p in places)
    leaks = [
        f"{name} in {place}"
        for place, content in places.items()
        for name, secret in secrets.items()
        if secret in content
    ]
    assert not leaks, leaks
    stored = rep.keyring.read_bytes()  # where they do live: the keyring
    assert RELAY_PASSWORD.encode() in stored and UPSTREAM_PASSWORD.encode() in stored


async def test_relay_listens_on_loopback_only(tmp_path: Path) -> None:
    """The relay address cannot be set to anything but loopback."""
    rep = Rep(tmp_path / "rep")
    for host in ("0.0.0.0", "10.1.2.3", "::"):
        code, _out, err = await rep.cli("config", "set", "relay.host", host)
        assert code == 2 and err.strip(), (host, err)
    await rep.configure(server__listen="127.0.0.1:0")  # the embedded server: any free port
    code, _out, err = await rep.cli(
        "agent", "--smtp-listen", f"0.0.0.0:{free_port()}", "--upstream", "smtp://127.0.0.1:1",
        "--relay-password", RELAY_PASSWORD,
    )
    assert code != 0 and "loopback" in err.lower(), err


async def test_relay_that_cannot_start_says_why_without_a_traceback(tmp_path: Path) -> None:
    """A second agent on a busy relay port, or a relay on 0.0.0.0: a message, exit 1."""
    rep = Rep(tmp_path / "rep")
    await rep.configure(server__listen="127.0.0.1:0")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for listen in (f"127.0.0.1:{port}", f"0.0.0.0:{free_port()}"):
            code, _out, err = await rep.cli(
                "agent", "--smtp-listen", listen, "--upstream", "smtp://127.0.0.1:1",
                "--relay-password", RELAY_PASSWORD,
            )
            assert code == 1 and err.startswith("mailbeacon agent: "), err
            assert "Traceback" not in err, err
