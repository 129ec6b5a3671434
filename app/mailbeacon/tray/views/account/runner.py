"""Runs the account set-up's async steps off the UI thread and reports back by signals.

The steps themselves are the agent's (``agent.account.setup.AccountSetup``): finding
the servers, then signing in, trying both servers and saving. They are coroutines;
each call runs on a worker thread in an asyncio loop of its own (``threads.Worker``),
so the window keeps painting while DNS, HTTPS, the browser sign-in or a slow mail
server take their time. Results come back on the UI thread as signals; an expected
failure (nothing found, a refused password, no keyring) arrives as the one sentence
the agent wrote for the rep.

``AccountSteps`` is what the runner calls: ``ProfileSteps`` (the real thing for one
profile) or, in tests, a scripted fake handed to the constructor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import httpx
from PySide6.QtCore import QObject, Signal

from mailbeacon.agent.account import discovery
from mailbeacon.agent.account.discovery import DiscoveryFailed, NameserverInvalid
from mailbeacon.agent.account.model import Discovered
from mailbeacon.agent.account.probe import Probe
from mailbeacon.agent.account.setup import AccountRequest, AccountResult, AccountSetup, SetupError
from mailbeacon.agent.settings.secrets import SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import ConfigError, Settings
from mailbeacon.core.language import ENGLISH, Language, in_language, said
from mailbeacon.core.profile import Profile
from mailbeacon.tray.threads.workers import Job, Worker

log = logging.getLogger(__name__)

HTTP_SECONDS = 10.0
# The failures whose message is already a sentence for the rep.
SAID_FOR_THE_REP = (
    DiscoveryFailed,
    NameserverInvalid,
    SetupError,
    SecretStoreUnavailable,
    ConfigError,
)


class AccountSteps(Protocol):
    """The two async steps of the set-up (``AccountSetup.servers`` and ``.run``)."""

    def servers(self, request: AccountRequest) -> Awaitable[Discovered]:
        """Find the servers for ``request.email`` (or take the rep's own)."""
        ...

    def run(self, request: AccountRequest) -> Awaitable[AccountResult]:
        """Sign in, try both servers for real, save; raises ``SetupError`` with a sentence."""
        ...


class ProfileSteps:
    """The real steps for one profile: its settings file and keyring, real DNS and HTTPS.

    Everything, the settings file and the keyring included, is read inside the step,
    on the worker thread: the UI thread never waits for a disk or a keyring."""

    def __init__(
        self,
        profile: Profile,
        environ: Mapping[str, str] | None = None,
        opener: Callable[[str], bool] | None = None,
        language: Language = ENGLISH,
    ) -> None:
        """``opener`` shows the sign-in page (default: the system browser); the agent's
        sentences for the rep are in ``language``."""
        self._profile = profile
        self._language = language
        self._environ = dict(os.environ if environ is None else environ)
        self._opener = opener

    async def servers(self, request: AccountRequest) -> Discovered:
        """The servers discovery finds for the address (``AccountSetup.servers``)."""
        async with httpx.AsyncClient(timeout=HTTP_SECONDS) as http:
            return await self._setup(http).servers(request)

    async def run(self, request: AccountRequest) -> AccountResult:
        """The whole set-up (``AccountSetup.run``): nothing is saved unless both servers agree."""
        async with httpx.AsyncClient(timeout=HTTP_SECONDS) as http:
            return await self._setup(http).run(request)

    def _setup(self, http: httpx.AsyncClient) -> AccountSetup:
        config = self._profile.config_file
        environ = self._environ
        language = self._language

        async def find(email: str) -> Discovered:
            # As ``mailbeacon account discover`` does (agent/account/commands.py).
            resolver = discovery.resolver_from_env(environ)
            return await discovery.discover(
                email, resolver=resolver, http=http, probe=Probe(resolver), tr=language
            )

        return AccountSetup(
            Settings.load_or_default(config),
            SecretStore(self._profile.keyring_service, environ),
            http,
            find,
            opener=self._opener,
            save=lambda kept: kept.save(config),
            tr=language,
        )


class AccountRunner(QObject):
    """Calls the steps on a worker thread; one call at a time.

    Signals (always on the UI thread): ``found(Discovered)`` or ``notFound(sentence)``
    after :meth:`find`; ``succeeded(AccountResult)`` or ``failed(sentence)`` after
    :meth:`set_up`; ``busyChanged(bool)``.
    """

    found = Signal(object)
    notFound = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str)
    busyChanged = Signal(bool)

    def __init__(
        self,
        steps: AccountSteps,
        worker: Worker | None = None,
        parent: QObject | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        """``tr`` words a failure the agent did not word itself."""
        super().__init__(parent)
        self._steps = steps
        self._tr = tr
        # One thread: a set-up never overtakes the look-up it follows.
        self._worker = worker or Worker(1, self)
        self._job: Job[object] | None = None
        self._stop: threading.Event | None = None

    @property
    def busy(self) -> bool:
        """True while a step runs (and has not been cancelled)."""
        return self._job is not None

    def find(self, request: AccountRequest) -> None:
        """Look up the servers for ``request.email``."""
        steps = self._steps
        self._start(lambda: steps.servers(request), self.found.emit, self.notFound.emit)

    def set_up(self, request: AccountRequest) -> None:
        """Sign in, try both servers and save."""
        steps = self._steps
        self._start(lambda: steps.run(request), self.succeeded.emit, self.failed.emit)

    def cancel(self) -> None:
        """Stop the running step and forget its answer.

        The step is cancelled at its next wait (a browser sign-in stops waiting for the
        browser), so a sign-in finished after "Cancel" saves nothing. The agent saves
        without waiting on anything, so a step is never stopped half-saved."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        if self._job is not None:
            self._job.cancel()
            self._set_job(None)

    def close(self) -> None:
        """Cancel and drop every outstanding answer (the window is going away)."""
        self.cancel()
        self._worker.cancel_all()

    def _start(
        self,
        call: Callable[[], Awaitable[object]],
        ok: Callable[[object], None],
        said: Callable[[str], None],
    ) -> None:
        self.cancel()
        stop = self._stop = threading.Event()

        def done(value: object) -> None:
            self._set_job(None)
            ok(value)

        def error(exc: BaseException) -> None:
            self._set_job(None)
            said(sentence_for(exc, self._tr))

        self._set_job(self._worker.submit(lambda: _until_stopped(call, stop), done, error))

    def _set_job(self, job: Job[object] | None) -> None:
        was = self.busy
        self._job = job
        if was != self.busy:
            self.busyChanged.emit(self.busy)


async def _until_stopped(call: Callable[[], Awaitable[object]], stop: threading.Event) -> object:
    """Run the step until it ends or ``stop`` is set (then it is cancelled)."""
    step = asyncio.ensure_future(call())
    stopped = asyncio.ensure_future(asyncio.to_thread(stop.wait))
    try:
        await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()  # the waiting thread returns, whoever finished first
    await stopped
    if not step.done():
        step.cancel()
        await asyncio.gather(step, return_exceptions=True)
        return None  # the job was cancelled too: this answer is never delivered
    return step.result()


def sentence_for(error: BaseException, tr: Language = ENGLISH) -> str:
    """What to tell the rep about a step that failed."""
    if isinstance(error, SAID_FOR_THE_REP):
        return in_language(said(error), tr)  # the agent's phrases in the rep's language
    # Not one of the agent's worded failures: a bug or an odd environment; keep the trace.
    log.error("account set-up failed unexpectedly", exc_info=error)
    return tr.t("MailBeacon could not finish this step: {error}", error=error)
