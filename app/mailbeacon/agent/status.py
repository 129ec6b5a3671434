"""The agent's status: what works, what does not, and which of it matters most.

The tray and ``mailbeacon status`` only *show* this; the rules live here (issue 20,
"a tray that tells the truth"):

* **sending** is ``not_configured`` while no outgoing server is set up (mail waits
  in the outbox, docs/promises.md#no-mail-lost), ``failing`` while the outbox is
  blocked (the upstream is unreachable or refused the login), else ``ok``;
* **tracking** is reachable ``no`` when recipients elsewhere can never load the
  tracking URL (loopback or private: ``core/tracking_domain.py``), ``yes`` or ``no``
  once "Test tracking" tried it over the network, else ``unknown``;
* **stream** is ``connected``, ``offline`` (connecting counts as offline: no hit
  reaches the rep until it connects) or ``disabled``;
* **paused_until** is the end of a notification pause, if one is on.

:func:`headline` picks the worst of those for the tray's icon and status line.

The running agent writes its status to ``<data_dir>/status.json`` (durably, only
when it changes) with its pid; ``mailbeacon status`` reads it and, when that agent
is gone, says what it can from the settings alone (:func:`from_settings`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.durable import atomic_write
from mailbeacon.core.language import ENGLISH, Language, in_language
from mailbeacon.core.tracking_domain import check_tracking_url

STATUS_FILE = "status.json"


class SendingState(StrEnum):
    """Whether mail leaves the outbox."""

    OK = "ok"
    NOT_CONFIGURED = "not_configured"
    FAILING = "failing"


class Reachable(StrEnum):
    """Whether recipients can load the tracking URL."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class StreamLink(StrEnum):
    """Whether the tracking server's events reach the agent."""

    CONNECTED = "connected"
    OFFLINE = "offline"
    DISABLED = "disabled"


class Level(StrEnum):
    """How bad the worst current state is; the tray picks its icon by it."""

    OK = "ok"
    PAUSED = "paused"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Sending:
    """The outbox's side: state, emails waiting, and why in one sentence."""

    state: SendingState
    waiting: int = 0
    detail: str = ""
    server: str = ""


@dataclass(frozen=True, slots=True)
class Tracking:
    """The tracking URL recipients load, whether they can, and why."""

    public_url: str
    reachable: Reachable
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Stream:
    """The event stream from the tracking server."""

    state: StreamLink
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Headline:
    """The worst current state in plain words, for the tray's icon and status line."""

    level: Level
    text: str
    others: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything ``mailbeacon status --json`` prints (docs/interfaces.md)."""

    sending: Sending
    tracking: Tracking
    stream: Stream
    paused_until: str | None = None

    def headline(self, tr: Language = ENGLISH) -> Headline:
        """The worst state first (:func:`headline`), in ``tr``'s words (the command
        line keeps English)."""
        return headline(self, tr)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``status --json`` and of ``status.json``."""
        return {
            "sending": {
                "state": self.sending.state.value,
                "waiting": self.sending.waiting,
                "detail": self.sending.detail,
                "server": self.sending.server,
            },
            "tracking": {
                "public_url": self.tracking.public_url,
                "reachable": self.tracking.reachable.value,
                "detail": self.tracking.detail,
            },
            "stream": {"state": self.stream.state.value, "detail": self.stream.detail},
            "paused_until": self.paused_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusReport:
        """The report back from ``to_json`` (KeyError/ValueError on a foreign file)."""
        sending, tracking, stream = data["sending"], data["tracking"], data["stream"]
        return cls(
            Sending(
                SendingState(sending["state"]),
                int(sending.get("waiting", 0)),
                str(sending.get("detail", "")),
                str(sending.get("server", "")),
            ),
            Tracking(
                str(tracking.get("public_url", "")),
                Reachable(tracking["reachable"]),
                str(tracking.get("detail", "")),
            ),
            Stream(StreamLink(stream["state"]), str(stream.get("detail", ""))),
            data.get("paused_until") or None,
        )


def emails(n: int) -> str:
    """``1 email`` / ``3 emails``."""
    return f"{n} email" if n == 1 else f"{n} emails"


def headline(report: StatusReport, tr: Language = ENGLISH) -> Headline:
    """The worst state of ``report`` in plain words, and the other problems after it.

    Worst first: mail that cannot leave (not set up, then failing), then opens that
    can never be seen (tracking unreachable), then opens that are not heard now
    (stream offline), then a pause the rep chose. Never "Connected" while sending
    is not set up or failing.
    """
    found: list[tuple[Level, str]] = []
    sending = report.sending
    n = sending.waiting
    if sending.state == SendingState.NOT_CONFIGURED:
        found.append((Level.ERROR, tr.n(
            "Sending is not set up: {count} email waiting",
            "Sending is not set up: {count} emails waiting", n,
        ) if n else tr.t("Sending is not set up")))
    elif sending.state == SendingState.FAILING:
        found.append((Level.ERROR, tr.n(
            "Sending is failing: {count} email waiting",
            "Sending is failing: {count} emails waiting", n,
        ) if n else tr.t("Sending is failing")))
    if report.tracking.reachable == Reachable.NO:
        found.append((Level.WARNING, tr.t("Tracking is not reachable by recipients")))
    if report.stream.state == StreamLink.OFFLINE:
        found.append((Level.WARNING, tr.t("Event stream offline: opens are not heard now")))
    if report.paused_until:
        until = clock_time(report.paused_until)
        found.append((Level.PAUSED, tr.t("Notifications paused until {time}", time=until)))
    if not found:
        return Headline(Level.OK, tr.t("Sending and tracking work"))
    level, text = found[0]
    return Headline(level, text, tuple(text for _level, text in found[1:]))


def clock_time(at: str) -> str:
    """An ISO time as the rep's local ``HH:MM`` (the text itself if it is not one)."""
    try:
        return datetime.fromisoformat(at).astimezone().strftime("%H:%M")
    except ValueError:
        return at


# ---------------------------------------------------------------- deciding


@dataclass(frozen=True, slots=True)
class StatusInputs:
    """What the running agent knows, from which :func:`decide` makes the report."""

    upstream_url: str
    upstream_configured: bool
    blocked_reason: str | None
    waiting: int
    tracking_url: str
    stream_connected: bool
    stream_detail: str = ""
    stream_enabled: bool = True
    paused_until: str | None = None
    tracking_tested: tuple[bool, str] | None = None  # ("Test tracking" ok?, its sentence)
    sign_in_problem: str | None = None


def decide(inputs: StatusInputs, tr: Language = ENGLISH) -> StatusReport:
    """The report for what the running agent knows, its details worded in ``tr`` (the
    status file and the command line keep English; the tray asks for the rep's)."""
    server = upstream_server(inputs.upstream_url)
    if not inputs.upstream_configured:
        sending = Sending(
            SendingState.NOT_CONFIGURED, inputs.waiting, not_configured_detail(inputs.waiting, tr)
        )
    elif inputs.sign_in_problem or inputs.blocked_reason:
        why = in_language(inputs.sign_in_problem or inputs.blocked_reason or "", tr)
        detail = (
            tr.t("{server} is not taking mail: {reason}", server=server, reason=why)
            if server
            else tr.t("The outgoing mail server is not taking mail: {reason}", reason=why)
        )
        sending = Sending(SendingState.FAILING, inputs.waiting, detail, server)
    else:
        sending = Sending(
            SendingState.OK, inputs.waiting, tr.t("Mail goes out through {server}.", server=server),
            server,
        )  # fmt: skip
    detail = in_language(inputs.stream_detail, tr)
    if not inputs.stream_enabled:
        stream = Stream(StreamLink.DISABLED, detail)
    elif inputs.stream_connected:
        stream = Stream(StreamLink.CONNECTED, detail)
    else:
        stream = Stream(StreamLink.OFFLINE, detail or tr.t("Connecting…"))
    return StatusReport(
        sending,
        tracking_status(inputs.tracking_url, inputs.tracking_tested, tr),
        stream,
        inputs.paused_until,
    )


def not_configured_detail(waiting: int, tr: Language = ENGLISH) -> str:
    """Why nothing is sent before the rep named a mail server."""
    if not waiting:
        return tr.t("No outgoing mail server is set up: set up your email account.")
    return tr.n(
        "No outgoing mail server is set up: set up your email account. {count} email waits "
        "in the outbox.",
        "No outgoing mail server is set up: set up your email account. {count} emails wait "
        "in the outbox.",
        waiting,
    )


def tracking_status(
    url: str, tested: tuple[bool, str] | None = None, tr: Language = ENGLISH
) -> Tracking:
    """Whether recipients can reach ``url``: never "yes" for loopback or private."""
    check = check_tracking_url(url)
    if not check.reachable_by_recipients:
        return Tracking(url, Reachable.NO, check.sentences(tr)[0])
    if tested is not None:
        ok, sentence = tested
        return Tracking(url, Reachable.YES if ok else Reachable.NO, in_language(sentence, tr))
    return Tracking(
        url,
        Reachable.UNKNOWN,
        tr.t(
            "Not checked yet: MailBeacon checks it shortly after it starts (or use Test "
            "tracking in Settings)."
        ),
    )


def upstream_server(url: str) -> str:
    """``host:port`` of the outgoing server URL (empty when none)."""
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    return f"{host}:{port}" if port else host


def tracking_url_of(settings: Settings) -> str:
    """The base URL the agent puts into emails, from the settings alone."""
    server = settings.server
    return tracking_url_from(server.mode, server.url, server.public_url, server.listen)


def tracking_url_from(mode: str, url: str, public_url: str, listen: str) -> str:
    """The base URL in emails from the tracking server's settings (a team's server, or
    this computer's: its public address, else where it listens)."""
    if mode == "remote":
        return url
    return public_url or f"http://{listen}"


def paused_until(settings: Settings, now: float) -> str | None:
    """The pause's end while one is on, else None."""
    current = datetime.fromtimestamp(now, UTC)
    if settings.notifications_paused(current):
        return settings.notify.paused_until
    return None


def from_settings(
    settings: Settings, now: float, waiting: int = 0, tr: Language = ENGLISH
) -> StatusReport:
    """What can be said with no agent running: nothing is sent, nothing is heard."""
    configured = bool(settings.upstream.url)
    server = upstream_server(settings.upstream.url)
    if configured:
        sending = Sending(
            SendingState.FAILING, waiting,
            tr.t("MailBeacon is not running: nothing is sent until it starts."), server,
        )  # fmt: skip
    else:
        sending = Sending(
            SendingState.NOT_CONFIGURED, waiting, not_configured_detail(waiting, tr)
        )
    return StatusReport(
        sending,
        tracking_status(tracking_url_of(settings), tr=tr),
        Stream(StreamLink.OFFLINE, tr.t("MailBeacon is not running.")),
        paused_until(settings, now),
    )


# ---------------------------------------------------------------- the file


def write_status(path: Path, report: StatusReport, pid: int, now: float) -> None:
    """Replace ``path`` durably with ``report``, the agent's pid and the time."""
    data = {**report.to_json(), "agent": {"pid": pid, "written_at": now}}
    atomic_write(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode())


@dataclass(frozen=True, slots=True)
class SavedStatus:
    """What ``status.json`` held, and whether the agent that wrote it still runs."""

    report: StatusReport
    running: bool
    pid: int | None


def read_status(path: Path) -> SavedStatus | None:
    """The saved status (None: no file, or not one of ours)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        report = StatusReport.from_json(data)
        pid = int(data["agent"]["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return SavedStatus(report, pid_alive(pid), pid)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a killed agent leaves its file behind)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, though likely a reused pid
    return True


def current_status(profile_data_dir: Path, settings: Settings,
                   now: float | None = None) -> tuple[StatusReport, bool]:
    """The running agent's status, else the settings' (and whether an agent runs)."""
    saved = read_status(profile_data_dir / STATUS_FILE)
    if saved is not None and saved.running:
        return saved.report, True
    waiting = queued_count(profile_data_dir / "outbox" / "queue")
    return from_settings(settings, time.time() if now is None else now, waiting), False


def queued_count(queue: Path) -> int:
    """Emails in the outbox's queue folder (one ``.eml`` each; the folder is the truth)."""
    try:
        return sum(1 for _ in queue.glob("*.eml"))
    except OSError:
        return 0


# ---------------------------------------------------------------- outages


@dataclass(frozen=True, slots=True)
class OutageNews:
    """What to tell the rep about sending: an outage began, or it ended."""

    began: bool
    server: str
    detail: str
    count: int  # emails waiting when it began; emails delivered when it ended


class OutageWatch:
    """Tells of a sending outage once when it begins and once when it ends.

    An outage is ``failing`` with mail waiting (``not_configured`` is not one: the
    account set-up says so already). It ends when sending works and the mail that
    waited is gone (or after ``settle_seconds`` of working, with mail deferred for
    its own reasons still queued), so "Delivered N waiting emails" is true.
    """

    def __init__(self, settle_seconds: float = 60.0) -> None:
        self._settle = settle_seconds
        self._outage: Sending | None = None
        self._most_waiting = 0
        self._ok_since: float | None = None

    @property
    def in_outage(self) -> bool:
        """Whether an outage was told and not yet its end."""
        return self._outage is not None

    def observe(self, sending: Sending, now: float) -> OutageNews | None:
        """The news after seeing ``sending`` at ``now`` (None: nothing to tell)."""
        if self._outage is None:
            if sending.state == SendingState.FAILING and sending.waiting > 0:
                self._outage, self._most_waiting, self._ok_since = sending, sending.waiting, None
                return OutageNews(True, sending.server, sending.detail, sending.waiting)
            return None
        if sending.state != SendingState.OK:
            self._most_waiting = max(self._most_waiting, sending.waiting)
            self._ok_since = None
            return None
        if self._ok_since is None:
            self._ok_since = now
        if sending.waiting and now - self._ok_since < self._settle:
            return None
        outage, self._outage = self._outage, None
        delivered = max(0, self._most_waiting - sending.waiting)
        return OutageNews(False, outage.server, sending.detail, delivered)
