"""The agent assembled: settings, secrets, server link, relay, outbox, stream, notifier.

``run_agent`` is what ``mailbeacon agent`` runs headless and what the tray runs on
its own thread; both hear the agent only through an ``AgentListener``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import httpx

from mailbeacon.agent.account.signin import AgentSignIn
from mailbeacon.agent.followup.loop import FollowUp, local_zone
from mailbeacon.agent.followup.sequences import SequenceRunner
from mailbeacon.agent.followup.store import FollowupError, FollowupStore
from mailbeacon.agent.mailbox.replies import build_reply_watcher
from mailbeacon.agent.mailbox.sent_cleanup import SentCleanup, build_sent_cleanup
from mailbeacon.agent.mailbox.sent_status import CleanupStatus
from mailbeacon.agent.mailbox.watch import ImapStatus, ImapWatcher
from mailbeacon.agent.notifications.geo import CountryLookup
from mailbeacon.agent.notifications.model import (
    AgentListener,
    AgentStatus,
    ConnectionState,
    Notification,
)
from mailbeacon.agent.notifications.policy import Notifier, PolicyConfig
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Sender
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import (
    DeliveryError,
    DeliveryFailure,
    MessageSource,
    QueuedItem,
    SendResult,
    Transport,
)
from mailbeacon.agent.sending.relay import Relay
from mailbeacon.agent.sending.upstream import Credentials, Upstream
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.kinds import networks
from mailbeacon.agent.settings.mail_urls import parse_host_port, parse_upstream
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.status import (
    STATUS_FILE,
    OutageNews,
    OutageWatch,
    StatusInputs,
    StatusReport,
    decide,
    paused_until,
    tracking_url_of,
    write_status,
)
from mailbeacon.agent.tracking.check import TrackingCheck, check_tracking
from mailbeacon.agent.tracking.remote import PlainServerRefused, checked_remote
from mailbeacon.agent.tracking.stream import StreamState, StreamSubscriber
from mailbeacon.agent.tracking.team import TeamSync, TeamUrls
from mailbeacon.agent.tracking.watch import TrackingWatch
from mailbeacon.core import uainfo
from mailbeacon.core.durable import make_private, private_dir
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import ENGLISH, PHRASES, Language, Phrase, mark, said
from mailbeacon.core.profile import Profile
from mailbeacon.core.urls import TrackingUrls

if TYPE_CHECKING:
    from mailbeacon.agent.tracking.embedded import EmbeddedServer

log = logging.getLogger(__name__)

ENV_UPSTREAM_USER = "MAILBEACON_UPSTREAM_USER"
# The parts of the agent that report problems: a part's news replaces its own problem
# and nothing else's (never matched by its English words, which a phrase may not start
# with in every wording).
_START = "start"
_SIGN_IN = "sign-in"
_REPLIES = "replies"
_SENT_CLEANUP = "sent-cleanup"
SIGN_IN_HTTP_SECONDS = 15.0
# The outbox and the pause change without telling anyone: the status is looked at this
# often (cheap; status.json is written only when something changed).
STATUS_POLL_SECONDS = 1.0


class AgentStartError(RuntimeError):
    """The agent cannot start; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """Command-line options that override the settings for one run."""

    enroll: str | None = None
    smtp_listen: str | None = None
    upstream: str | None = None
    relay_password: str | None = None
    imap: str | None = None


NO_UPSTREAM = Phrase(
    mark(
        "No outgoing mail server is set up: mail is queued until you enter your provider's "
        "SMTP server in Settings (Sending), or pass --upstream."
    )
)


class UnconfiguredUpstream:
    """The outbox's transport before the rep has named a mail server: nothing leaves,
    everything waits in the queue (a temporary condition, not a bounce)."""

    async def send(
        self, mail_from: str, recipients: Sequence[str], message: MessageSource
    ) -> SendResult:
        """Always a temporary failure that holds the whole queue."""
        raise DeliveryError(NO_UPSTREAM, connection=True)

    async def close(self) -> None:
        """Nothing to close."""


class JsonLinesListener:
    """``--notify jsonl``: each notification as one JSON object per line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    def notification(self, notification: Notification) -> None:
        """Print one line and flush, so a reader sees it at once."""
        out = self._out or sys.stdout  # looked up now: stdout may have been replaced
        out.write(json.dumps(notification.to_json(), ensure_ascii=False) + "\n")
        out.flush()

    def status(self, status: AgentStatus) -> None:
        """Status changes go to the operator's log only."""
        log.info("agent status: %s %s", status.connection, status.detail)


def apply_options(settings: Settings, options: AgentOptions) -> Settings:
    """The settings with this run's command-line overrides."""
    relay, upstream, imap = settings.relay, settings.upstream, settings.imap
    if options.smtp_listen:
        host, port = parse_host_port(options.smtp_listen, allow_zero=True)
        relay = replace(relay, host=host, port=port)
    if options.upstream:
        upstream = replace(upstream, url=options.upstream)
    if options.imap:
        imap = replace(imap, url=options.imap)
    return replace(settings, relay=relay, upstream=upstream, imap=imap)


class AgentRuntime:
    """All the agent's parts, started and stopped together."""

    def __init__(
        self,
        profile: Profile,
        options: AgentOptions,
        listener: AgentListener,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._profile = profile
        self._options = options
        self._listener = listener
        self._environ = dict(os.environ if environ is None else environ)
        self._clock = clock
        self.settings = apply_options(Settings.load_or_default(profile.config_file), options)
        self._settings_stamp = self._config_stamp()
        self.secrets = SecretStore(profile.keyring_service, self._environ)
        # The team's policy (agent/tracking/team.py): in force over the rep's settings.
        self.team = TeamSync(profile.config_dir, profile.config_file, clock)
        self._server: EmbeddedServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.relay: Relay | None = None
        self.outbox: Outbox | None = None
        self.records: RecordsStore | None = None
        self.notifier: Notifier | None = None
        self.imap: ImapWatcher | None = None
        self.sent_cleanup: SentCleanup | None = None
        self.sign_in: AgentSignIn | None = None
        self.followup: FollowUp | None = None
        self.followup_store: FollowupStore | None = None
        self._http: httpx.AsyncClient | None = None
        self.enrollment: Enrollment | None = None
        self._connection = ConnectionState.CONNECTING
        self._detail = ""
        self._problems: list[tuple[str, str]] = []  # (part, problem), oldest first
        self._report: StatusReport | None = None  # in English: the status file
        self._shown: StatusReport | None = None  # the same in the rep's language: the tray
        self._status_wake = asyncio.Event()
        self._outage = OutageWatch()
        # The last "Test tracking" of the tracking URL: (worked?, its sentence).
        self.tracking_tested: tuple[bool, str] | None = None
        self._language: tuple[str, Language] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start everything; raises AgentStartError with a message for the rep."""
        private_dir(self._profile.data_dir)
        make_private(self._profile.data_dir, 0o700)  # an older installation's 0755
        self.enrollment = await self._enrollment()
        # Before anything that sends: the server's policy now (the stored one if it
        # does not answer; the stream brings it again at every connection).
        self.team.connect(self.enrollment.server_url, self.enrollment.api_token)
        await self.team.fetch()
        self.records = RecordsStore.for_profile(
            self._profile, stream_source=self.enrollment.server_url
        )
        self.notifier = Notifier(
            self.records,
            lambda: PolicyConfig.from_settings(self.current_settings()),
            self._listener.notification,
            clock=self._clock,
            describe_client=lambda ua: uainfo.label(uainfo.describe(ua), self.language()),
            device_family=uainfo.device_family,
            country_of=CountryLookup().country_of,
            language=self.language,
        )
        self._start_sign_in()
        self._start_reply_watcher()
        # Before the outbox: a restarted outbox reports deliveries the cleanup must count.
        await self._start_sent_cleanup()
        self.outbox = Outbox(
            self._profile.data_dir / "outbox",
            self._upstream(),
            on_delivered=self._on_delivered,
            on_failed=self._on_failed,
        )
        await self.outbox.start()
        sender = Sender(
            self.records, self.outbox, self._urls(self.enrollment),
            self.current_settings, self._clock, keeper=self.sent_cleanup,
            policy=lambda: self.team.policy, on_tracked=self.team.tracked,
        )
        self.followup = await self._followup(sender)
        relay = self.settings.relay
        self.relay = Relay(
            self.followup.accept,
            self._relay_password(),
            user=relay.user,
            host=relay.host,
            port=relay.port,
            max_message_bytes=relay.max_message_bytes,
        )
        await self.relay.start()
        stream = StreamSubscriber(
            self.enrollment.server_url,
            self.enrollment.api_token,
            self.records.last_stream_id,
            self.notifier.handle,
            on_state=self._on_stream_state,
            on_policy=self.team.apply,
        )
        # The user-agent parser compiles its rules on first use (~0.1 s): not on a hit.
        await asyncio.to_thread(uainfo.describe, "Mozilla/5.0 (warm-up)")
        self._tasks.append(asyncio.create_task(stream.run(), name="stream"))
        self._tasks.append(
            asyncio.create_task(self.team.report_loop(self.records), name="team-report")
        )
        self._tasks.append(asyncio.create_task(self._tracking_watch().run(), name="reach"))
        self._publish()
        self._tasks.append(asyncio.create_task(self._keep_status(), name="status"))

    async def stop(self) -> None:
        """Stop the relay first (no new mail), then the stream, outbox and server."""
        if self.relay is not None:
            await self.relay.stop()
        await self.team.stop()
        if self.followup is not None:
            await self.followup.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.notifier is not None:
            self.notifier.flush_pending()
        if self.imap is not None:
            await self.imap.stop()
        if self.outbox is not None:
            await self.outbox.stop()
        if self.sent_cleanup is not None:
            await self.sent_cleanup.stop()
        if self._server is not None:
            await self._server.stop()
        if self.sign_in is not None:
            await self.sign_in.close()
        if self._http is not None:
            await self._http.aclose()
        if self.records is not None:
            self.records.close()
        if self.followup_store is not None:
            self.followup_store.close()

    def current_settings(self) -> Settings:
        """The settings as saved now: notification switches, pause, privacy and the
        Track/Log defaults apply at once; relay and server changes need a restart."""
        stamp = self._config_stamp()
        if stamp != self._settings_stamp:
            self._settings_stamp = stamp
            fresh = Settings.load_or_default(self._profile.config_file)
            self.settings = apply_options(fresh, self._options)
        return self.team.settings(self.settings)

    def language(self) -> Language:
        """The rep's language for notifications (``app.language``, else the system's
        locale): a saved change applies to the next notification, no restart."""
        setting = self.current_settings().app.language
        if self._language is None or self._language[0] != setting:
            self._language = (setting, Language.load(setting, self._environ))
        return self._language[1]

    def _config_stamp(self) -> tuple[int, int] | None:
        try:
            info = self._profile.config_file.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    # ------------------------------------------------------------ parts

    async def _enrollment(self) -> Enrollment:
        try:
            return await self._chosen_enrollment()
        except PlainServerRefused as exc:
            raise AgentStartError(said(exc)) from None

    async def _chosen_enrollment(self) -> Enrollment:
        if self._options.enroll:
            enrollment = checked_remote(Enrollment.decode(self._options.enroll), self.settings)
            self._remember(enrollment)
            return enrollment
        if self.settings.server.mode == "remote":
            stored = self._stored_enrollment()
            if stored is None:
                raise AgentStartError(
                    Phrase(
                        mark(
                            "No enrollment key is stored for the remote tracking server: paste "
                            "the key from `mailbeacon server add-user` into Settings, or pass "
                            "--enroll."
                        )
                    )
                )
            return checked_remote(stored, self.settings)
        return await self._embedded()

    async def _embedded(self) -> Enrollment:
        db_path = self._profile.data_dir / "server.db"
        try:
            return await self._start_embedded(db_path)
        except sqlite3.DatabaseError as exc:
            raise AgentStartError(
                Phrase(
                    mark(
                        "The embedded tracking server's database {path} is damaged ({error}). "
                        "Restore it from a backup, or move it aside to start afresh (opens of "
                        "mail sent before are then not recognised)."
                    ),
                    path=str(db_path),
                    error=str(exc),
                )
            ) from exc

    async def _start_embedded(self, db_path: Path) -> Enrollment:
        # Imported here: only the embedded default runs the server in this process.
        from mailbeacon.agent.tracking.embedded import (  # noqa: PLC0415
            EmbeddedOptions,
            EmbeddedServer,
            server_secret,
        )

        host, port = parse_host_port(self.settings.server.listen, allow_zero=True)
        secret = await asyncio.to_thread(server_secret, self.secrets, db_path)
        server = EmbeddedServer(
            EmbeddedOptions(
                db_path=db_path,
                secret=secret,
                host=host,
                port=port,
                public_url=self.settings.server.public_url or None,
                truncate_ips=self.settings.privacy.truncate_ip,
                trusted_proxies=networks(self.settings.server.trusted_proxies),
                self_address_minutes=self.settings.tracking.self_window_minutes,
                click_token_max_days=self.settings.tracking.click_token_max_days,
            )
        )
        await server.start()
        self._server = server
        return await server.enroll(self._stored_enrollment(), self._remember)

    def _stored_enrollment(self) -> Enrollment | None:
        try:
            return self.secrets.enrollment()
        except SecretStoreUnavailable as exc:
            self._problem(said(exc))
            return None

    def _remember(self, enrollment: Enrollment) -> None:
        try:
            self.secrets.set_enrollment(enrollment)
        except SecretStoreUnavailable as exc:
            self._problem(
                Phrase(mark("The enrollment is used for this run only: {error}"), error=said(exc))
            )

    def _relay_password(self) -> str:
        if self._options.relay_password:
            return self._options.relay_password
        try:
            return self.secrets.ensure_relay_password()
        except SecretStoreUnavailable as exc:
            raise AgentStartError(
                Phrase(mark("{error} (or pass --relay-password)"), error=said(exc))
            ) from exc

    def _upstream(self) -> Transport:
        upstream = self.settings.upstream
        if not upstream.url:
            self._problem(NO_UPSTREAM)
            return UnconfiguredUpstream()
        url = parse_upstream(upstream.url, allow_plain=upstream.allow_plain)

        def credentials() -> Credentials | None:
            user = url.user or upstream.user or self._environ.get(ENV_UPSTREAM_USER, "")
            if not user:
                return None
            try:
                password = self.secrets.get(Secret.UPSTREAM_PASSWORD)
            except SecretStoreUnavailable as exc:
                self._problem(said(exc))
                return None
            return Credentials(user, password or "")

        def signed_in() -> Credentials | None:
            assert self.sign_in is not None
            return Credentials(self.sign_in.user, bearer=self.sign_in)

        return Upstream(url, signed_in if self.sign_in is not None else credentials)

    async def _followup(self, sender: Sender) -> FollowUp:
        """Send later, reminders and sequences (agent/followup), over the same sender."""
        assert self.records is not None
        try:
            self.followup_store = FollowupStore.in_dir(self._profile.data_dir)
        except FollowupError as exc:
            raise AgentStartError(said(exc)) from exc
        sequences = SequenceRunner(
            self.followup_store, self.records, sender.accept_recorded, self.current_settings,
            self._clock, local_zone, templates=self._profile.config_dir / "templates.json",
            tracking_allowed=lambda _email: self.team.policy.tracking_allowed,
        )
        followup = FollowUp(
            self.followup_store, self.records, sender.accept_recorded, self._notify_local,
            self.current_settings, self._clock, sequences=sequences, language=self.language,
        )
        await followup.start()
        return followup

    def _urls(self, enrollment: Enrollment) -> TrackingUrls:
        """The minter of tracking URLs: on a team's server, on the team's tracking
        domain when its policy names one."""
        if self.settings.server.mode != "remote" and not self._options.enroll:
            return TrackingUrls(enrollment, self._clock)

        def domain() -> str:
            return self.team.policy.value("server.public_url")

        return TeamUrls(enrollment, self._clock, domain)

    def _start_sign_in(self) -> None:
        """With ``account.auth = oauth2``: one token source for SMTP and IMAP."""
        if self.settings.account.auth != "oauth2":
            return
        self._http = httpx.AsyncClient(timeout=SIGN_IN_HTTP_SECONDS)
        self.sign_in = AgentSignIn(
            self.current_settings(),  # the team's issuer and client ID when it sets them
            self.secrets,
            self._http,
            on_required=self._on_sign_in_required,
            on_restored=self._on_signed_in_again,
        )

    def _on_sign_in_required(self, why: str) -> None:
        self._clear_problems(_SIGN_IN)
        self._problem(why, _SIGN_IN)  # says "Sign in again …" itself (account/)
        if self.notifier is not None:
            self.notifier.sign_in_required(why)

    def _on_signed_in_again(self) -> None:
        self._clear_problems(_SIGN_IN)
        if self.outbox is not None:
            self.outbox.retry_now()
        self._publish()

    def _start_reply_watcher(self) -> None:
        assert self.records is not None
        try:
            self.imap = build_reply_watcher(
                self.current_settings, self.secrets, self._profile.data_dir, self.records,
                self._notify_local, self._on_imap_status, clock=self._clock,
                bearer=self.sign_in, language=self.language,
            )
        except SettingError as exc:
            self._problem(
                Phrase(mark("Replies are not watched: {error}"), error=said(exc)), _REPLIES
            )
        if self.imap is not None:
            self.imap.start()

    async def _start_sent_cleanup(self) -> None:
        assert self.records is not None and self.enrollment is not None
        try:
            self.sent_cleanup = build_sent_cleanup(
                self.current_settings, self.secrets, self._profile.data_dir, self.records,
                self.enrollment, self._on_cleanup_status, clock=self._clock,
                bearer=self.sign_in,
            )
        except SettingError as exc:
            self._problem(
                Phrase(mark("Sent folder not tidied: {detail}"), detail=said(exc)),
                _SENT_CLEANUP,
            )
        if self.sent_cleanup is not None:
            await self.sent_cleanup.start()

    def _on_cleanup_status(self, status: CleanupStatus) -> None:
        self._clear_problems(_SENT_CLEANUP)
        if status.problem is not None:
            self._problem(status.problem, _SENT_CLEANUP)
        self._publish()

    async def _on_delivered(self, item: QueuedItem) -> None:
        if self.sent_cleanup is not None:
            await self.sent_cleanup.item_delivered(item)

    def _notify_local(self, notification: Notification) -> None:
        if self.notifier is not None:
            self.notifier.deliver(notification)

    def _on_imap_status(self, status: ImapStatus) -> None:
        self._clear_problems(_REPLIES)
        if status.problem is not None:
            self._problem(status.problem, _REPLIES)
        self._publish()

    async def _on_failed(self, item: QueuedItem, failure: DeliveryFailure) -> None:
        if self.sent_cleanup is not None:
            await self.sent_cleanup.item_failed(item, failure)
        if self.notifier is None:
            return
        email_id = item.meta.get("email_id")
        self.notifier.delivery_failed(
            f"{item.id}:{','.join(failure.recipients)}",
            int(email_id) if email_id is not None else None,
            failure.recipients,
            failure.reply,
        )

    # ------------------------------------------------------------ status

    def _on_stream_state(self, state: StreamState, detail: str) -> None:
        self._connection = {
            StreamState.CONNECTED: ConnectionState.CONNECTED,
            StreamState.CONNECTING: ConnectionState.CONNECTING,
        }.get(state, ConnectionState.OFFLINE)
        self._detail = detail
        self._publish()

    def _problem(self, text: str, part: str = _START) -> None:
        log.warning("%s", text)
        if (part, text) not in self._problems:
            self._problems.append((part, text))

    def _clear_problems(self, part: str) -> None:
        self._problems = [(p, text) for p, text in self._problems if p != part]

    def _problem_texts(self) -> tuple[str, ...]:
        return tuple(text for _part, text in self._problems)

    def status(self) -> AgentStatus:
        """Where the agent stands now."""
        return AgentStatus(
            connection=self._connection,
            detail=self._detail,
            server_url=self.enrollment.server_url if self.enrollment else "",
            relay_host=self.relay.host if self.relay else "",
            relay_port=self.relay.port if self.relay else 0,
            relay_user=self.settings.relay.user,
            problems=self._problem_texts(),
            report=self._shown,
        )

    def status_report(self, tr: Language = ENGLISH) -> StatusReport:
        """What works and what does not, decided now (agent/status.py), worded in ``tr``
        (English for the status file; the rep's language for the tray)."""
        return decide(self._status_inputs(), tr)

    def _status_inputs(self) -> StatusInputs:
        settings = self.current_settings()
        outbox = self.outbox
        sign_in = next((text for part, text in self._problems if part == _SIGN_IN), None)
        tracking_url = (
            self.enrollment.server_url if self.enrollment else tracking_url_of(settings)
        )
        return StatusInputs(
            upstream_url=self.settings.upstream.url,
            upstream_configured=NO_UPSTREAM not in self._problem_texts(),
            blocked_reason=outbox.blocked_reason if outbox else None,
            waiting=len(outbox.pending()) if outbox else 0,
            tracking_url=tracking_url,
            stream_connected=self._connection == ConnectionState.CONNECTED,
            stream_detail=self._detail,
            paused_until=paused_until(settings, self._clock()),
            tracking_tested=self.tracking_tested,
            sign_in_problem=sign_in,
        )

    def _tracking_watch(self) -> TrackingWatch:
        """The agent's own "Test tracking" of a public address (agent/tracking/watch.py)."""
        assert self.enrollment is not None
        enrollment = self.enrollment
        sender_domain = self.settings.account.email.rpartition("@")[2] or None

        def tested(result: TrackingCheck) -> None:
            self.tracking_tested = (result.ok, result.message)
            self._status_wake.set()

        return TrackingWatch(
            enrollment.server_url,
            # English in the status file, the rep's language in the tray (agent/status.py).
            lambda: check_tracking(enrollment, sender_domain=sender_domain, tr=PHRASES),
            tested,
        )

    def _publish(self) -> None:
        inputs = self._status_inputs()  # gathered once, worded twice
        self._report = decide(inputs)
        self._shown = decide(inputs, self.language())
        self._tell_outage(self._outage.observe(self._report.sending, self._clock()))
        self._listener.status(self.status())
        self._status_wake.set()

    def _tell_outage(self, news: OutageNews | None) -> None:
        if news is None or self.notifier is None:
            return
        if news.began:
            # Decided on the English report; told in the rep's words (the tray's report).
            shown = self._shown.sending.detail if self._shown is not None else news.detail
            self.notifier.delivery_delayed(news.server, shown, news.count)
        else:
            self.notifier.delivery_resumed(news.server, news.count)

    async def _keep_status(self) -> None:
        """Publish the status when it changes and keep ``status.json`` in step with it."""
        path = self._profile.data_dir / STATUS_FILE
        written: StatusReport | None = None
        try:
            while True:
                if self.status_report() != self._report:
                    self._publish()
                if self._report != written:
                    written = self._report
                    assert written is not None
                    try:
                        await asyncio.to_thread(
                            write_status, path, written, os.getpid(), self._clock()
                        )
                    except OSError as exc:
                        log.warning("cannot write the agent's status to %s: %s", path, exc)
                self._status_wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STATUS_POLL_SECONDS):
                        await self._status_wake.wait()
        finally:
            # A stopped agent says nothing: `mailbeacon status` then reads the settings.
            with contextlib.suppress(OSError):
                path.unlink()


async def run_agent(
    profile: Profile,
    options: AgentOptions,
    listener: AgentListener,
    stop: asyncio.Event,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Run the agent until ``stop`` is set."""
    runtime = AgentRuntime(profile, options, listener, environ)
    try:
        await runtime.start()
        await stop.wait()
    finally:
        await runtime.stop()
