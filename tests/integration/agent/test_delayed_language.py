""" "Emails are waiting" in the rep's language (issue 19): with ``app.language = pl``
the agent's notification says why the outgoing server is not taking mail in Polish
(the outgoing server's sentence is worded once, as a phrase), while ``status.json``
keeps English."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path

from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.profile import Profile
from tests.helpers.agent_listener import Listener, relay_runtime
from tests.helpers.agent_process import RELAY_PASSWORD
from tests.helpers.net import free_port


def polish_profile(tmp_path: Path) -> Profile:
    profile = Profile.at(tmp_path / "agent")
    settings = Settings()
    settings.set("server.listen", "127.0.0.1:0")
    settings.set("app.language", "pl")
    settings.save(profile.config_file)
    return profile


def send(port: int) -> None:
    message = EmailMessage()
    message["From"] = "anna.kowalska@mojafirma.pl"
    message["To"] = "odbiorca@klient.example"
    message["Subject"] = "Oferta"
    message.set_content("Dzień dobry.\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.login("mailbeacon", RELAY_PASSWORD)
        client.send_message(message)


async def test_emails_are_waiting_says_why_in_polish(tmp_path: Path) -> None:
    relay_port, upstream_port = free_port(), free_port()
    listener = Listener()
    runtime = relay_runtime(
        polish_profile(tmp_path), relay_port, f"smtp://127.0.0.1:{upstream_port}", listener
    )
    await runtime.start()
    try:
        await asyncio.to_thread(send, relay_port)  # nothing listens upstream: it waits
        await listener.until(
            lambda: any(n.type == "delivery_delayed" for n in listener.notifications)
        )
        [down] = [n for n in listener.notifications if n.type == "delivery_delayed"]
        where = f"127.0.0.1:{upstream_port}"
        assert down.title == f"Wiadomości czekają: {where} nie przyjmuje poczty"
        assert down.body.startswith(
            f"{where} nie przyjmuje poczty: Nie można połączyć się z {where}: połączenie "
            "odrzucone (nic nie nasłuchuje na tym porcie)."
        )
        english = runtime.status_report().sending.detail  # what status.json says
        assert english.startswith(f"{where} is not taking mail: Cannot reach {where}")
    finally:
        await runtime.stop()
