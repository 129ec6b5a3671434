"""A three-step sequence through the real ``mailbeacon agent``, the real command line,
Dovecot as the rep's inbox and an aiosmtpd upstream (issue 17, the proof): three contacts
enrolled from a CSV; one replies after step 1 (leaves), one bounces (leaves), one gets an
out-of-office (which does not count) and every step as a threaded reply; the agent is
restarted between steps."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers import dovecot, replies
from tests.helpers.agent_process import AgentProcess, agent_with_imap, run_cli
from tests.helpers.net import free_port
from tests.helpers.smtp import ReceivedEnvelope, SmtpSink

SEQUENCE = """
name = "q2-follow-up"
from = "Anna Kowalska <rep@example.net>"
[[step]]
delay = "0s"
subject = "Oferta dla {company}"
html = "<p>Dzień dobry {first_name}, oto oferta na {product}.</p>"
[[step]]
delay = "8s"
html = "<p>Czy oferta dotarła?</p>"
[[step]]
delay = "8s"
text = "Ostatnia wiadomość w tej sprawie."
"""
CSV = (
    "email,name,company,product\n"
    "alicja@client.example,Alicja Nowak,Nowak SA,dźwigi\n"
    "piotr@client.example,Piotr Lis,Lis sp. j.,koparki\n"
    "ewa@client.example,Ewa Zielińska,Zieleń,ładowarki\n"
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def _parsed(got: list[ReceivedEnvelope], address: str) -> list[EmailMessage]:
    out = []
    for envelope in got:
        if envelope.rcpt_tos == (address,):
            message = email.message_from_bytes(envelope.data, policy=default_policy)
            assert isinstance(message, EmailMessage)
            out.append(message)
    return out


async def _status(profile: Path, keyring: Path) -> dict[str, object]:
    code, out, err = await run_cli(profile, keyring, "sequence", "status", "q2-follow-up", "--json")
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


@pytest.mark.needs_program("dovecot")
async def test_a_sequence_stops_for_a_reply_and_a_bounce_and_threads_every_step(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = (await server.add_user("rep")).encode()
    relay_port = free_port()
    profile, keyring = tmp_path / "agent", tmp_path / "keyring.json"
    (tmp_path / "q2.toml").write_text(SEQUENCE, encoding="utf-8")
    (tmp_path / "contacts.csv").write_text(CSV, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("email,name,company\nx@client.example,X,\n", encoding="utf-8")
    with dovecot.running_dovecot() as imap:

        def agent() -> AgentProcess:
            return agent_with_imap(
                tmp_path, enrollment, relay_port, sink.port, imap.port,
                dovecot.USER, dovecot.PASSWORD,
            )  # fmt: skip

        running = await agent().start()
        try:
            await running.wait_log("first look at", within=15)
            code, out, err = await run_cli(profile, keyring, "sequence", "create",
                                           str(tmp_path / "q2.toml"))  # fmt: skip
            assert code == 0, err
            assert "3 steps" in out
            # A missing field is caught before anything is sent, naming the row.
            code, _, err = await run_cli(profile, keyring, "sequence", "enroll", "q2-follow-up",
                                         "--csv", str(bad))  # fmt: skip
            assert code == 2 and "line 2 (x@client.example): no value for {company}" in err
            contacts_csv = str(tmp_path / "contacts.csv")
            code, out, err = await run_cli(
                profile, keyring, "sequence", "enroll", "q2-follow-up", "--csv", contacts_csv
            )
            assert code == 0 and "Enrolled 3" in out, err
            got = await sink.until(3, within=15)
            assert not [g for g in got if g.rcpt_tos == ("x@client.example",)]
            [alicja] = _parsed(got, "alicja@client.example")
            [piotr] = _parsed(got, "piotr@client.example")
            [ewa1] = _parsed(got, "ewa@client.example")
            assert ewa1["Subject"] == "Oferta dla Zieleń"
            assert "Dzień dobry Ewa, oto oferta na ładowarki." in str(
                ewa1.get_body(("html",)).get_content()  # type: ignore[union-attr]
            )
            await asyncio.to_thread(
                imap.append,
                replies.reply(alicja["Message-ID"], "Alicja Nowak <alicja@client.example>",
                              subject="Re: Oferta dla Nowak SA"),
                replies.bounce("piotr@client.example", piotr["Message-ID"]),
                replies.out_of_office(ewa1["Message-ID"], "ewa@client.example"),
            )  # fmt: skip
            seen = {(await running.notification(within=10))["type"] for _ in range(2)}
            assert seen == {"reply", "delivery_failed"}
        finally:
            await running.stop()
        running = await agent().start()  # the restart between steps
        try:
            got = await sink.until(4, within=20)
            assert [g.rcpt_tos for g in got[3:]] == [("ewa@client.example",)], "".join(
                running.stderr_lines
            )
            ewa2 = _parsed(got, "ewa@client.example")[1]
            assert ewa2["Subject"] == "Re: Oferta dla Zieleń"
            assert ewa2["In-Reply-To"] == ewa1["Message-ID"]
            status = await _status(profile, keyring)
            contacts = {c["email"]: c for c in status["contacts"]}  # type: ignore[attr-defined]
            assert status["state"] == "active" and status["steps"] == 3
            assert contacts["alicja@client.example"]["state"] == "replied"
            assert contacts["piotr@client.example"]["state"] == "bounced"
            assert contacts["ewa@client.example"]["sent"] == 2
            assert contacts["ewa@client.example"]["next_at"].endswith("Z")
            got = await sink.until(5, within=20)
        finally:
            await running.stop()
    ewa3 = _parsed(got, "ewa@client.example")[2]
    assert ewa3["In-Reply-To"] == ewa2["Message-ID"]
    assert ewa3["References"].split() == [ewa1["Message-ID"], ewa2["Message-ID"]]
    assert len(sink.handler.received) == 5
    assert all(b"X-MailBeacon" not in g.data for g in sink.handler.received)
    final = await _status(profile, keyring)
    assert [(c["email"], c["sent"], c["state"], c["next_at"]) for c in final["contacts"]] == [  # type: ignore[attr-defined]
        ("alicja@client.example", 1, "replied", None),
        ("piotr@client.example", 1, "bounced", None),
        ("ewa@client.example", 3, "finished", None),
    ]


async def test_pause_resume_and_remove_from_the_command_line(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = (await server.add_user("rep")).encode()
    relay_port = free_port()
    profile, keyring = tmp_path / "agent", tmp_path / "keyring.json"
    by_address = SEQUENCE.replace('"8s"', '"2s"').replace("{product}", "{company}")
    (tmp_path / "q2.toml").write_text(by_address, encoding="utf-8")
    running = await AgentProcess(
        profile, keyring, "--enroll", enrollment, "--smtp-listen", f"127.0.0.1:{relay_port}",
        "--upstream", f"smtp://127.0.0.1:{sink.port}", "--relay-password", "relay-secret",
    ).start()  # fmt: skip
    try:
        created = await run_cli(profile, keyring, "sequence", "create", str(tmp_path / "q2.toml"))
        assert created[0] == 0
        assert (await run_cli(profile, keyring, "sequence", "pause", "q2-follow-up"))[0] == 0
        code, _out, err = await run_cli(
            profile, keyring, "sequence", "enroll", "q2-follow-up", "a@client.example",
            "b@client.example",
        )  # fmt: skip
        assert code == 2 and "{company}" in err  # nothing known about them: refused whole
        await run_cli(profile, keyring, "contact", "a@client.example", "--name", "Ala Kot",
                      "--company", "Kot SA")  # fmt: skip
        await run_cli(profile, keyring, "contact", "b@client.example", "--name", "Bo Lis",
                      "--company", "Lis SA")  # fmt: skip
        code, _out, err = await run_cli(
            profile, keyring, "sequence", "enroll", "q2-follow-up", "a@client.example",
            "b@client.example",
        )  # fmt: skip
        assert code == 0, err
        await running.wait_log("outbox: 0 message(s) waiting")
        status = await _status(profile, keyring)
        assert status["state"] == "paused"
        assert sink.handler.received == []
        assert (await run_cli(profile, keyring, "sequence", "resume", "q2-follow-up"))[0] == 0
        await sink.until(2, within=10)
        code, _out, _ = await run_cli(profile, keyring, "sequence", "remove", "q2-follow-up",
                                     "a@client.example")  # fmt: skip
        assert code == 0
        got = await sink.until(4, within=20)
    finally:
        await running.stop()
    assert [g.rcpt_tos[0] for g in got[2:]] == ["b@client.example", "b@client.example"]
    final = await _status(profile, keyring)
    assert [c["state"] for c in final["contacts"]] == ["removed", "finished"]  # type: ignore[attr-defined]
