"""Reply detection against a real Dovecot on loopback: IDLE, restarts, renumbered
mailboxes, wrong passwords, big mailboxes, broken mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from mailbeacon.agent.mailbox.replies import ReplyRecorder, build_reply_watcher
from mailbeacon.agent.mailbox.watch import (
    ImapState,
    ImapStatus,
    ImapWatcher,
    IncomingMessage,
    WatcherConfig,
    build_watcher,
)
from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.records.model import ActivityFilter, LoggedCopy
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from tests.helpers import dovecot as dv
from tests.helpers.net import free_port
from tests.helpers.records import sent_email
from tests.helpers.replies import bounce, out_of_office, reply, reply_with_attachment, unrelated

pytestmark = [
    pytest.mark.needs_program("dovecot"),
]

WAIT = 10.0  # generous bound for anything that should take well under a second
FAST = WatcherConfig(poll_seconds=600, backoff_initial=0.05, backoff_max=0.2)


# One Dovecot for the module (stopping one takes seconds); each test has its own user,
# all made up front: Dovecot may not notice a users file changed within the same second.
USERS = [f"rep{n}@example.net" for n in range(1, 41)]
_users = iter(USERS)


@pytest.fixture(scope="module")
def server() -> Iterator[dv.Dovecot]:
    with dv.running_dovecot(users=dict.fromkeys(USERS, dv.PASSWORD)) as running:
        yield running


@dataclass
class Rig:
    """The records store, the recorder and what came out of them, for one test."""

    server: dv.Dovecot
    store: RecordsStore
    data_dir: Path
    user: str
    notes: asyncio.Queue[Notification] = field(default_factory=asyncio.Queue)
    handled: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    statuses: asyncio.Queue[ImapStatus] = field(default_factory=asyncio.Queue)
    emitted: list[Notification] = field(default_factory=list)
    watchers: list[ImapWatcher] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.recorder = ReplyRecorder(self.store, lambda: PolicyConfig(settle_seconds=0),
                                      self._emit)

    def _emit(self, note: Notification) -> None:
        self.emitted.append(note)
        self.notes.put_nowait(note)

    async def _handle(self, message: IncomingMessage) -> None:
        try:
            await self.recorder.handle(message)
        finally:
            self.handled.put_nowait(message.uid)

    def watcher(
        self,
        password: str = dv.PASSWORD,
        config: WatcherConfig = FAST,
        port: int | None = None,
    ) -> ImapWatcher:
        watcher = build_watcher(
            f"imap://{self.user}@127.0.0.1:{port or self.server.port}",
            False,
            lambda: password,
            self.data_dir,
            self._handle,
            self.statuses.put_nowait,
            config,
        )
        assert watcher is not None
        self.watchers.append(watcher)
        return watcher

    async def started(self, watcher: ImapWatcher) -> ImapWatcher:
        """Start and wait until it waits for news (caught up, in IDLE or between polls)."""
        watcher.start()
        await asyncio.wait_for(watcher.waiting.wait(), WAIT)
        return watcher

    def sent(self, address: str = "alicja@example.com", log: bool = False) -> tuple[int, str]:
        email = sent_email(address, subject="Oferta Q4", log=log)
        self.store.upsert_contact("alicja@example.com", name="Alicja")
        return self.store.record_sent(email), email.message_id

    async def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        await asyncio.to_thread(self.server.append, *messages, mailbox=mailbox, user=self.user)

    async def command(self, *words: str) -> None:
        await asyncio.to_thread(self.server.command, *words, user=self.user)

    async def next_note(self, within: float = WAIT) -> Notification:
        return await asyncio.wait_for(self.notes.get(), within)

    async def handled_count(self, n: int) -> list[int]:
        return [await asyncio.wait_for(self.handled.get(), WAIT) for _ in range(n)]

    async def status(self, state: ImapState) -> ImapStatus:
        while True:
            status = await asyncio.wait_for(self.statuses.get(), WAIT)
            if status.state is state:
                return status


@pytest.fixture
async def rig(server: dv.Dovecot, tmp_path: Path) -> AsyncIterator[Rig]:
    with RecordsStore(tmp_path / "records.db") as store:
        user = next(_users)
        made = Rig(server, store, tmp_path / "data", user)
        try:
            yield made
        finally:
            for watcher in made.watchers:
                await watcher.stop()


async def test_a_reply_while_idling_notifies_within_two_seconds(rig: Rig) -> None:
    email_id, mid = rig.sent()
    watcher = await rig.started(rig.watcher())
    assert watcher.status.state is ImapState.CONNECTED and watcher.status.push

    loop = asyncio.get_running_loop()
    appended = loop.time()
    await rig.append(reply(mid, message_id="<idle@example.com>"))
    note = await rig.next_note(within=2.0)  # polling is 600 s away: only IDLE can do this
    assert loop.time() - appended < 2.0

    assert note.type == "reply" and note.title == "Alicja replied to “Oferta Q4”"
    assert note.message_id == mid and note.email_id == email_id
    assert note.recipient == "alicja@example.com"
    record = rig.store.contact_record("alicja@example.com")
    assert record is not None
    kinds = [(e.event.type, e.event.inferred) for e in record.timeline if hasattr(e, "event")]
    assert ("reply", False) in kinds and ("open", True) in kinds
    assert record.contact.last_engagement is not None and record.contact.last_reply is not None
    assert rig.store.event_by_local_key("inferred-open:<idle@example.com>") is not None
    assert watcher.stats.headers_fetched == 1 and watcher.stats.bodies_fetched == 0


async def test_an_out_of_office_is_recorded_and_does_not_notify(rig: Rig) -> None:
    _, mid = rig.sent()
    await rig.started(rig.watcher())
    await rig.append(out_of_office(mid, subject="Odpowiedź automatyczna: Oferta Q4", headers=()))
    await rig.handled_count(1)
    assert rig.emitted == []
    [row] = rig.store.activity(filters=ActivityFilter(types=("reply",)))
    assert row.event.verdict == "bot" and row.event.details["auto"] is True
    contact = rig.store.contact("alicja@example.com")
    assert contact is not None and contact.last_engagement is None


async def test_a_bounce_marks_the_contact_bounced(rig: Rig) -> None:
    _, mid = rig.sent("bob@example.com")
    watcher = await rig.started(rig.watcher())
    await rig.append(bounce("bob@example.com", mid))
    note = await rig.next_note()
    assert note.type == "delivery_failed" and note.recipient == "bob@example.com"
    contact = rig.store.contact("bob@example.com")
    assert contact is not None and contact.bounced
    [row] = rig.store.activity(filters=ActivityFilter(types=("delivery_failed",)))
    assert "User unknown" in row.event.reason
    assert watcher.stats.bodies_fetched == 1  # the report's start, to read the recipient


async def test_a_reply_to_a_logged_email_is_logged_with_body_and_attachment(rig: Rig) -> None:
    email_id, mid = rig.sent(log=True)
    rig.store.log_copy(email_id, LoggedCopy(html=None, text="Oferta"))
    watcher = await rig.started(rig.watcher())
    await rig.append(reply_with_attachment(mid, data=b"%PDF-1.4 signed"))
    await rig.next_note()
    [row] = rig.store.activity(filters=ActivityFilter(types=("reply",)))
    [pdf] = row.event.details["logged"]["attachments"]
    assert rig.store.attachment_content(pdf["sha256"]) == b"%PDF-1.4 signed"
    assert watcher.stats.bodies_fetched == 1


async def test_a_restart_repeats_nothing_and_catches_up_once(rig: Rig) -> None:
    _, mid = rig.sent()
    first = await rig.started(rig.watcher())
    await rig.append(reply(mid, message_id="<before@example.com>"))
    await rig.next_note()
    await first.stop()

    await rig.append(reply(mid, message_id="<while-stopped@example.com>"))
    second = await rig.started(rig.watcher())
    note = await rig.next_note()
    assert rig.store.event_by_local_key("reply:<while-stopped@example.com>") is not None
    assert note.at == rig.store.event_by_local_key("reply:<while-stopped@example.com>").at
    assert second.stats.headers_fetched == 1  # only the new one

    await second.stop()
    third = await rig.started(rig.watcher())
    assert third.stats.headers_fetched == 0
    assert len(rig.emitted) == 2
    assert rig.store.count_events(ActivityFilter(types=("reply",))) == 2


async def test_a_big_mailbox_is_not_scanned_on_first_start(rig: Rig) -> None:
    _, mid = rig.sent()
    await rig.append(*(unrelated(number=n) for n in range(2000)))
    await rig.append(reply(mid, message_id="<old@example.com>"))  # before we ever looked
    watcher = await rig.started(rig.watcher())
    assert watcher.stats.header_fetches == 0 and watcher.stats.headers_fetched == 0

    await rig.append(reply(mid, message_id="<new@example.com>"))
    await rig.next_note()
    assert watcher.stats.headers_fetched == 1
    assert rig.store.event_by_local_key("reply:<old@example.com>") is None
    assert rig.store.event_by_local_key("reply:<new@example.com>") is not None


async def test_a_burst_is_fetched_in_bounded_batches(rig: Rig) -> None:
    _, mid = rig.sent()
    config = replace(FAST, batch_size=10)
    watcher = await rig.started(rig.watcher(config=config))
    await rig.append(*(unrelated(number=n) for n in range(35)), reply(mid))
    await rig.next_note()
    assert watcher.stats.headers_fetched == 36
    assert watcher.stats.header_fetches >= 4  # 36 messages, at most 10 per FETCH


@pytest.mark.expect_log("refused the IMAP user name or password")
async def test_a_wrong_password_is_reported_and_harms_nothing_else(rig: Rig) -> None:
    _, mid = rig.sent()
    password = {"value": "wrong"}
    bad = build_watcher(
        f"imap://{rig.user}@127.0.0.1:{rig.server.port}", False, lambda: password["value"],
        rig.data_dir / "other", rig._handle, rig.statuses.put_nowait, FAST,
    )
    assert bad is not None
    rig.watchers.append(bad)
    bad.start()
    status = await rig.status(ImapState.WRONG_PASSWORD)
    assert "refused" in status.detail and "password" in status.detail
    assert status.problem is not None and "not being watched" in status.problem

    good = await rig.started(rig.watcher())  # the rest goes on as usual
    await rig.append(reply(mid))
    await rig.next_note()
    assert good.status.state is ImapState.CONNECTED
    assert bad.status.state is ImapState.WRONG_PASSWORD  # still waiting, not crashed

    password["value"] = dv.PASSWORD  # the rep fixes it in Settings
    bad.retry_now()
    await asyncio.wait_for(bad.waiting.wait(), WAIT)
    assert bad.status.state is ImapState.CONNECTED


@pytest.mark.expect_log("cannot reach the mail server")
async def test_an_unreachable_server_is_reported(rig: Rig) -> None:
    watcher = rig.watcher(port=free_port())
    watcher.start()
    status = await rig.status(ImapState.UNREACHABLE)
    assert "cannot reach the mail server 127.0.0.1" in status.detail


@pytest.mark.expect_log("would receive your password unencrypted")
async def test_plain_imap_to_another_machine_is_refused_before_connecting(
    tmp_path: Path,
) -> None:
    statuses: list[ImapStatus] = []
    seen = asyncio.Event()

    async def handler(_message: IncomingMessage) -> None:
        return None

    def on_status(status: ImapStatus) -> None:
        statuses.append(status)
        if status.state is ImapState.ERROR:
            seen.set()

    watcher = build_watcher("imap://rep@192.0.2.1", False, lambda: "pw", tmp_path, handler,
                            on_status)
    assert watcher is not None
    watcher.start()
    await asyncio.wait_for(seen.wait(), WAIT)
    await watcher.stop()
    assert "unencrypted" in statuses[-2].detail


@pytest.mark.expect_log("UIDVALIDITY")
async def test_a_renumbered_mailbox_repeats_nothing_and_misses_nothing(rig: Rig) -> None:
    _, mid = rig.sent()
    folder = replace(FAST, mailbox="Replies")
    await rig.command("CREATE", "Replies")
    first = await rig.started(rig.watcher(config=folder))
    seen_reply = reply(mid, message_id="<seen@example.com>")
    await rig.append(seen_reply, mailbox="Replies")
    await rig.next_note()
    await first.stop()

    # The mailbox is recreated: new UIDVALIDITY, UIDs start again at 1.
    await rig.command("DELETE", "Replies")
    await rig.command("CREATE", "Replies")
    await rig.append(seen_reply, reply(mid, message_id="<meanwhile@example.com>"),
                     mailbox="Replies")
    second = await rig.started(rig.watcher(config=folder))
    note = await rig.next_note()
    assert second.stats.resets == 1
    assert rig.store.event_by_local_key("reply:<meanwhile@example.com>") is not None
    assert note.at == rig.store.event_by_local_key("reply:<meanwhile@example.com>").at

    await rig.append(reply(mid, message_id="<after@example.com>"), mailbox="Replies")
    await rig.next_note()
    assert [n.type for n in rig.emitted] == ["reply", "reply", "reply"]
    assert rig.store.count_events(ActivityFilter(types=("reply",))) == 3


@pytest.mark.expect_log("UIDVALIDITY")
async def test_a_mailbox_recreated_while_watching_is_followed(rig: Rig) -> None:
    _, mid = rig.sent()
    folder = replace(FAST, mailbox="Live")
    await rig.command("CREATE", "Live")
    watcher = await rig.started(rig.watcher(config=folder))
    await rig.command("DELETE", "Live")
    await rig.command("CREATE", "Live")
    await rig.append(reply(mid, message_id="<live@example.com>"), mailbox="Live")
    await rig.next_note()
    assert watcher.stats.resets == 1
    assert watcher.status.state is ImapState.CONNECTED


async def test_broken_and_absurd_messages_are_handled(rig: Rig) -> None:
    _, mid = rig.sent(log=True)
    email_id = rig.store.emails_for_message_id(mid)[0].id
    rig.store.log_copy(email_id, LoggedCopy(html=None, text="Oferta"))
    watcher = await rig.started(rig.watcher())
    refs = " ".join(f"<r{n}@x>" for n in range(3000))
    broken = [
        b"\xff\xfe\xfd not a header at all\r\n\r\nbody",
        b"From: \xc3\x28 <alicja@example.com>\r\nIn-Reply-To: " + mid.encode()
        + b"\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n--x\r\nContent-Type: text/pl",
        b"From: bob@example.com\r\nSubject: " + b"A" * 20_000 + b"\r\nReferences: "
        + refs.encode() + b" " + mid.encode() + b"\r\n\r\nhello",
        b"Subject: no from\r\nIn-Reply-To: " + mid.encode() + b"\r\n\r\n",
    ]
    await rig.append(*broken)
    await rig.handled_count(len(broken))
    assert watcher.stats.failed == 0
    assert watcher.status.state is ImapState.CONNECTED
    # The damaged reply from Alicja and the absurd one from Bob both count as replies.
    assert rig.store.count_events(ActivityFilter(types=("reply",))) == 2
    assert len(rig.emitted) == 2

    await rig.append(reply(mid, message_id="<fine@example.com>"))
    note = await rig.next_note()
    assert note.type == "reply"


class CuttableProxy:
    """A loopback TCP proxy to the mail server whose connections can be cut (a network drop)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.transport.abort()

    async def stop(self) -> None:
        await self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_dropped_connection_reconnects_and_misses_nothing(rig: Rig) -> None:
    _, mid = rig.sent()
    proxy = CuttableProxy(rig.server.port)
    await proxy.start()
    try:
        watcher = await rig.started(rig.watcher(port=proxy.port))
        await proxy.cut()
        await rig.append(reply(mid, message_id="<during-the-drop@example.com>"))
        note = await rig.next_note()
        assert note.type == "reply"
        assert watcher.stats.sessions == 2
        states = []
        while not rig.statuses.empty():
            states.append(rig.statuses.get_nowait().state)
        assert ImapState.UNREACHABLE not in states  # one drop, at once repaired
        assert states.count(ImapState.CONNECTED) == 2
        await watcher.stop()
    finally:
        await proxy.stop()


async def test_the_watcher_built_from_settings_and_secrets_notifies(
    rig: Rig, tmp_path: Path
) -> None:
    _, mid = rig.sent()
    settings = Settings()
    settings.set("imap.url", f"imap://{rig.user}@127.0.0.1:{rig.server.port}")
    secrets = SecretStore("mailbeacon-test", {"MAILBEACON_IMAP_PASSWORD": dv.PASSWORD})
    notes: asyncio.Queue[Notification] = asyncio.Queue()
    watcher = build_reply_watcher(
        lambda: settings, secrets, tmp_path / "data", rig.store, notes.put_nowait
    )
    assert watcher is not None
    rig.watchers.append(watcher)
    await rig.started(watcher)
    await rig.append(reply(mid))
    note = await asyncio.wait_for(notes.get(), WAIT)
    assert note.title == "Alicja replied to “Oferta Q4”"
    assert (tmp_path / "data" / "imap_state.json").exists()

    settings.set("imap.url", "")
    assert build_reply_watcher(lambda: settings, secrets, tmp_path, rig.store, print) is None


async def test_polling_where_idle_is_not_used(rig: Rig) -> None:
    _, mid = rig.sent()
    config = replace(FAST, use_idle=False, poll_seconds=0.2)
    watcher = await rig.started(rig.watcher(config=config))
    assert watcher.status.push is False
    await rig.append(reply(mid))
    await rig.next_note()
    assert watcher.stats.checks >= 2
