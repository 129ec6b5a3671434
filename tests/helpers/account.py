"""Fakes for the account flow's UI tests: scripted set-up steps and sample findings.

``ScriptedSteps`` stands in for the agent's ``AccountSetup`` behind the tray's
``AccountRunner`` (the agent's own steps are tested against real DNS, HTTPS, SMTP and
IMAP servers in tests/integration/agent/account/). It answers from a script, records
each request and the thread it ran on, and "saves" only when a set-up succeeds, as
the agent does.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from mailbeacon.agent.account import presets
from mailbeacon.agent.account.discovery import from_preset
from mailbeacon.agent.account.model import AuthMethod, Discovered, Security, ServerSetting, Source
from mailbeacon.agent.account.setup import AccountRequest, AccountResult

SMTP_OK = "Connected to smtps://smtp.mojafirma.pl:465 and logged in."
IMAP_OK = "Connected to imap.mojafirma.pl:993 as anna@mojafirma.pl; INBOX holds 3 messages."


def google(email: str = "anna@gmail.com") -> Discovered:
    """Gmail, found by its built-in preset."""
    return from_preset(email, presets.GOOGLE, Source.PRESET)


def microsoft_by_mx(email: str = "anna@contoso.pl") -> Discovered:
    """A custom domain whose MX points at Microsoft 365."""
    return from_preset(email, presets.MICROSOFT, Source.MX)


def own_servers(email: str = "anna@mojafirma.pl", source: Source = Source.SRV) -> Discovered:
    """A company's own servers (password only), found by ``source``."""
    return Discovered(
        email=email,
        provider=None,
        source=source,
        smtp=ServerSetting("smtp.mojafirma.pl", 465, Security.TLS),
        imap=ServerSetting("imap.mojafirma.pl", 993, Security.TLS),
        auth=(AuthMethod.PASSWORD,),
    )


def success(servers: Discovered, method: AuthMethod = AuthMethod.PASSWORD) -> AccountResult:
    """What the agent answers once both servers let the rep in and it saved."""
    return AccountResult(servers, method, SMTP_OK, IMAP_OK if servers.imap else None)


@dataclass
class ScriptedSteps:
    """The set-up's two steps, answered from a script.

    ``found`` answers ``servers`` (an exception is raised instead); ``results`` answer
    the ``run`` calls in order. ``gate``, when set, holds every step until it is set,
    so a test sees the waiting page. ``threads`` records the thread each step ran on;
``cancelled`` the steps stopped while held.
    """

    found: Discovered | Exception
    results: list[AccountResult | Exception] = field(default_factory=list)
    gate: threading.Event | None = None
    requests: list[tuple[str, AccountRequest]] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    saved: list[AccountResult] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    async def servers(self, request: AccountRequest) -> Discovered:
        """Discovery's scripted answer."""
        await self._enter("servers", request)
        if isinstance(self.found, Exception):
            raise self.found
        return self.found

    async def run(self, request: AccountRequest) -> AccountResult:
        """The next scripted set-up answer; only a success is "saved"."""
        await self._enter("run", request)
        answer = self.results.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.saved.append(answer)
        return answer

    async def _enter(self, step: str, request: AccountRequest) -> None:
        asyncio.get_running_loop()  # a step runs inside an event loop, as the agent's do
        self.threads.append(threading.get_ident())
        self.requests.append((step, request))
        gate = self.gate
        if gate is not None:
            try:
                await asyncio.to_thread(gate.wait, 30)
            except asyncio.CancelledError:
                self.cancelled.append(step)
                raise
