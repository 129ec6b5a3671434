"""No pixel in the rep's own Sent folder (issue 9), against a real Dovecot on loopback.

Each test wires the real parts: Sender (rewrite, records) -> an outbox that keeps
the original first (the Sender integration) -> real SMTP to a sink that, like
Gmail, saves what it got into the rep's Sent -> the outbox's on_delivered ->
the cleanup, which logs in to Dovecot and puts Sent right.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from mailbeacon.agent.mailbox.sent_cleanup import SentCleanup, build_sent_cleanup
from mailbeacon.agent.mailbox.sent_copies import Identity
from mailbeacon.agent.mailbox.sent_spool import ORIGINALS_DIR
from mailbeacon.agent.mailbox.sent_status import CleanupConfig, CleanupState, CleanupStatus
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Sender
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem, RetryPolicy
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_mail_url, parse_upstream
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.urls import TrackingUrls
from tests.helpers import dovecot as dv
from tests.helpers.sent import (
    SentSavingSink,
    Stored,
    SwitchableServer,
    fill_maildir,
    has_pixel,
    html_email,
    mailbox,
    plain_email,
)

pytestmark = [
    pytest.mark.needs_program("dovecot"),
]

WAIT = 15.0  # generous bound for what takes well under a second
ENROLLMENT = Enrollment("https://t.example.com", 7, "api-token", b"s" * 32)
IDENTITY = Identity(ENROLLMENT.user_id, ENROLLMENT.signing_key)
FAST = CleanupConfig(
    first_delay=0.0,
    retry_delays=(0.05,),
    search_window=5.0,
    backoff_initial=0.05,
    backoff_max=0.2,
    auth_retry_seconds=0.2,
)
POLICY = RetryPolicy(base=0.01, cap=0.05, jitter=0.1)
FINAL = {
    CleanupState.DONE,
    CleanupState.NOT_FOUND,
    CleanupState.INCOMPLETE,
    CleanupState.READ_ONLY,
    CleanupState.NO_SENT_FOLDER,
    CleanupState.GAVE_UP,
}

# One Dovecot for the module; a user per test, all made up front.
USERS = [f"sent{n}@example.net" for n in range(1, 31)]
_users = iter(USERS)


@pytest.fixture(scope="module")
def server() -> Iterator[dv.Dovecot]:
    with dv.running_dovecot(users=dict.fromkeys(USERS, dv.PASSWORD)) as running:
        yield running


class KeepingOutbox(Outbox):
    """The outbox as the Sender sees it, with the Sender integration of issue 9 in
    front: the original is kept (durably) before the copies are queued."""

    rig: Rig

    async def enqueue_many(self, items: Sequence[OutboxItem]) -> list[str]:
        meta = items[0].meta
        email_id, message_id = int(meta["email_id"]), str(meta["message_id"])
        [email] = [e for e in self.rig.store.emails_for_message_id(message_id)
                   if e.id == email_id]
        cleanup = self.rig.cleanup
        if email.tracked and cleanup is not None:
            await cleanup.keep(self.rig.original, message_id, email.message_key, email_id,
                               len(items))
        return await super().enqueue_many(items)


@dataclass
class Rig:
    server: dv.Dovecot
    user: str
    root: Path
    store: RecordsStore
    sink: SentSavingSink
    settings: Settings = field(default_factory=Settings)
    statuses: list[CleanupStatus] = field(default_factory=list)
    cleanup: SentCleanup | None = None
    outbox: KeepingOutbox | None = None
    sender: Sender | None = None
    original: bytes = b""

    def make_cleanup(
        self, config: CleanupConfig = FAST, port: int | None = None, password: str = dv.PASSWORD
    ) -> SentCleanup:
        url = parse_mail_url(f"imap://{self.user}@127.0.0.1:{port or self.server.port}", "imap")
        return SentCleanup(
            self.root / "data" / ORIGINALS_DIR,
            url,
            lambda: password,
            IDENTITY,
            lambda mid: [e.message_key for e in self.store.emails_for_message_id(mid)],
            on_status=self.statuses.append,
            config=config,
        )

    async def start(self, cleanup: SentCleanup | None = None) -> SentCleanup:
        self.cleanup = cleanup or self.make_cleanup()
        await self.cleanup.start()
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{self.sink.port}"), lambda: None)
        outbox = KeepingOutbox(
            self.root / "outbox",
            upstream,
            on_delivered=self.cleanup.item_delivered,
            on_failed=self.cleanup.item_failed,
            policy=POLICY,
        )
        outbox.rig = self
        self.outbox = outbox
        await outbox.start()
        self.sender = Sender(
            self.store, outbox, TrackingUrls(ENROLLMENT), lambda: self.settings
        )
        return self.cleanup

    async def stop(self) -> None:
        if self.outbox is not None:
            await self.outbox.stop()
        if self.cleanup is not None:
            await self.cleanup.stop()

    async def send(self, message_id: str, to: tuple[str, ...] = ("alicja@example.com",)) -> bytes:
        assert self.sender is not None
        self.original = html_email(message_id, to)
        await self.sender.accept(
            IncomingMessage("rep@example.net", to, self.original, None, None)
        )
        return self.original

    async def finished(self, message_id: str, within: float = WAIT) -> CleanupStatus:
        """The final status of one email's cleanup (its original released)."""
        cleanup = self.cleanup
        assert cleanup is not None

        def final() -> CleanupStatus | None:
            if any(e.message_id == message_id for e in cleanup.pending()):
                return None
            for status in reversed(self.statuses):
                if status.message_id == message_id and status.state in FINAL:
                    return status
            return None

        assert await cleanup.wait_until(lambda: final() is not None, within), self.statuses
        status = final()
        assert status is not None
        return status

    async def sent(self, message_id: str | None = None, name: str = "Sent") -> list[Stored]:
        return await asyncio.to_thread(mailbox, self.server, self.user, name, message_id)

    async def put(self, *messages: bytes, name: str = "Sent") -> None:
        await asyncio.to_thread(self.server.append, *messages, mailbox=name, user=self.user)

    def kept_files(self) -> list[Path]:
        folder = self.root / "data" / ORIGINALS_DIR
        return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
async def rig(server: dv.Dovecot, tmp_path: Path) -> AsyncIterator[Rig]:
    user = next(_users)
    with RecordsStore(tmp_path / "records.db") as store, SentSavingSink(server, user) as sink:
        made = Rig(server, user, tmp_path, store, sink)
        try:
            yield made
        finally:
            await made.stop()


# ---------------------------------------------------------------- the journeys


async def test_one_recipient_sent_holds_the_untracked_original_only(rig: Rig) -> None:
    await rig.start()
    original = await rig.send("<one@rep.example.net>")

    status = await rig.finished("<one@rep.example.net>")

    assert status.state is CleanupState.DONE and status.problem is None
    assert "“Oferta Q4”" in status.detail and "removed 1 copy" in status.detail
    [delivered] = rig.sink.received
    assert has_pixel(delivered.data)  # the recipient got the pixel...
    assert rig.sink.saving.saved == 1  # ...and the provider saved that tracked copy
    [copy] = await rig.sent("<one@rep.example.net>")
    assert not has_pixel(copy.data)
    assert copy.data == original and "\\Seen" in copy.flags
    assert rig.kept_files() == []  # the original was released
    assert rig.cleanup is not None and rig.cleanup.stats.appended == 1


async def test_one_copy_per_recipient_leaves_one_copy(rig: Rig) -> None:
    rig.settings.set("tracking.per_recipient", "true")
    await rig.start()
    to = ("alicja@example.com", "bob@example.com", "celina@example.com")
    await rig.send("<three@rep.example.net>", to)

    status = await rig.finished("<three@rep.example.net>")

    assert status.state is CleanupState.DONE
    assert "removed 3 copies" in status.detail
    assert len(rig.sink.received) == 3 and rig.sink.saving.saved == 3
    [copy] = await rig.sent("<three@rep.example.net>")
    assert not has_pixel(copy.data) and copy.data == rig.original


async def test_a_mail_client_that_saved_its_own_copy_keeps_it(rig: Rig) -> None:
    # A long first delay, as in real life, lets the mail client save its copy first;
    # the test says when that has happened instead of waiting out the delay.
    cleanup = await rig.start(rig.make_cleanup(replace(FAST, first_delay=3600)))
    original = await rig.send("<client@rep.example.net>")
    await rig.put(original)  # the mail client saves its own, untracked copy
    assert await cleanup.wait_until(
        lambda: all(e.due_at is not None for e in cleanup.pending()), WAIT
    )
    assert len(await rig.sent("<client@rep.example.net>")) == 2  # the client's + the tracked
    cleanup.retry_now()

    status = await rig.finished("<client@rep.example.net>")

    assert status.state is CleanupState.DONE
    [copy] = await rig.sent("<client@rep.example.net>")
    assert not has_pixel(copy.data) and copy.data == original
    assert cleanup.stats.appended == 0  # the client's copy is the one that stays


async def test_what_mailbeacon_did_not_send_is_left_alone(rig: Rig) -> None:
    cleanup = await rig.start(rig.make_cleanup(replace(FAST, first_delay=3600)))
    own = plain_email("<lunch@rep.example.net>")
    # The header search matches substrings: this one is found, read, and left alone.
    similar = plain_email("<other@rep.example.net>2", subject="Look-alike")
    await rig.put(own, similar)
    original = await rig.send("<other@rep.example.net>")
    [tracked] = await rig.sink.until(1)
    # The rep forwarded the tracked email to themselves (it sits in INBOX), and a later
    # email in Sent quotes it, pixel and all, under a Message-ID of its own.
    await rig.put(tracked.data, name="INBOX")
    quoting = tracked.data.replace(b"<other@rep.example.net>", b"<reply@rep.example.net>")
    await rig.put(quoting)
    assert await cleanup.wait_until(lambda: cleanup.pending()[0].due_at is not None, WAIT)
    cleanup.retry_now()

    status = await rig.finished("<other@rep.example.net>")

    assert status.state is CleanupState.DONE
    everything = await rig.sent()
    by_id = {s.message_id: s for s in everything}
    assert len(everything) == 4
    assert by_id["<lunch@rep.example.net>"].data == own
    assert by_id["<other@rep.example.net>2"].data == similar
    assert by_id["<reply@rep.example.net>"].data == quoting  # has our pixel: not the same email
    assert by_id["<other@rep.example.net>"].data == original
    [inbox] = await rig.sent(name="INBOX")
    assert has_pixel(inbox.data)  # other folders are never touched


@pytest.mark.expect_log("cannot reach the mail server")
async def test_a_mail_server_down_for_a_while_is_tidied_when_it_returns(rig: Rig) -> None:
    switch = SwitchableServer(rig.server.port)  # down: connections are refused
    cleanup = await rig.start(rig.make_cleanup(port=switch.port))
    try:
        await rig.send("<down@rep.example.net>")
        assert await cleanup.wait_until(
            lambda: sum(s.state is CleanupState.UNREACHABLE for s in rig.statuses) >= 3, WAIT
        )
        problem = rig.statuses[-1].problem
        assert problem is not None and "cannot reach the mail server" in problem
        assert len(await rig.sent("<down@rep.example.net>")) == 1  # still the tracked copy
        assert len(rig.kept_files()) == 2  # the original is kept meanwhile

        await switch.up()  # back after "a minute" (backoff shortened for the test)
        status = await rig.finished("<down@rep.example.net>")

        assert status.state is CleanupState.DONE
        [copy] = await rig.sent("<down@rep.example.net>")
        assert not has_pixel(copy.data)
    finally:
        await switch.down()


async def test_a_provider_that_saves_later_is_waited_for(rig: Rig) -> None:
    rig.sink.saving.hold = True  # Microsoft 365: the copy shows up in Sent later
    rig.settings.set("tracking.per_recipient", "true")
    cleanup = await rig.start(rig.make_cleanup(replace(FAST, retry_delays=(0.2,))))
    await rig.send("<later@rep.example.net>", ("alicja@example.com", "bob@example.com"))
    assert await cleanup.wait_until(
        lambda: any(s.state is CleanupState.WAITING for s in rig.statuses), WAIT
    )
    assert await rig.sent("<later@rep.example.net>") == []

    await asyncio.to_thread(rig.sink.saving.release)
    status = await rig.finished("<later@rep.example.net>")

    assert status.state is CleanupState.DONE and "removed 2 copies" in status.detail
    [copy] = await rig.sent("<later@rep.example.net>")
    assert not has_pixel(copy.data)


@pytest.mark.expect_log("no copy of")
async def test_a_message_id_changed_by_the_provider_is_left_alone(rig: Rig) -> None:
    rig.sink.saving.new_message_id = True
    cleanup = await rig.start(rig.make_cleanup(replace(FAST, search_window=0.3)))
    await rig.send("<renamed@rep.example.net>")

    status = await rig.finished("<renamed@rep.example.net>")

    assert status.state is CleanupState.NOT_FOUND
    assert status.problem is not None and "changed its Message-ID" in status.problem
    assert "nothing was changed" in status.problem
    [saved] = await rig.sent()
    assert saved.message_id == "<provider-1@outlook.example>" and has_pixel(saved.data)
    assert cleanup.stats.appended == 0 and cleanup.stats.removed == 0
    assert rig.kept_files() == []


@pytest.mark.expect_log("read-only")
async def test_a_read_only_sent_folder_changes_nothing_and_says_so(rig: Rig) -> None:
    cleanup = await rig.start(rig.make_cleanup(replace(FAST, first_delay=3600)))
    await rig.send("<readonly@rep.example.net>")
    assert await cleanup.wait_until(lambda: cleanup.pending()[0].due_at is not None, WAIT)
    sent_dir = rig.server.root / "mail" / rig.user / ".Sent"
    folders = (sent_dir, *(sent_dir / d for d in ("cur", "new", "tmp")))
    modes = {path: path.stat().st_mode for path in folders}
    try:
        for path in modes:
            os.chmod(path, 0o555)  # Dovecot then opens Sent [READ-ONLY]
        cleanup.retry_now()
        status = await rig.finished("<readonly@rep.example.net>")
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)

    assert status.state is CleanupState.READ_ONLY
    assert status.problem is not None and "read-only" in status.problem
    [saved] = await rig.sent()
    assert has_pixel(saved.data)  # nothing deleted, nothing added
    assert cleanup.stats.appended == 0 and "UID STORE" not in cleanup.stats.commands
    assert rig.kept_files() == []


async def test_a_big_sent_folder_is_searched_not_scanned(rig: Rig) -> None:
    # 3,000 messages stand in for 50,000: what counts is that none is fetched in vain.
    cleanup = await rig.start()
    filler = [plain_email(f"<old-{n}@rep.example.net>", subject=f"Old {n}") for n in range(3000)]
    await rig.put(filler[0])
    await asyncio.to_thread(fill_maildir, rig.server, rig.user, "Sent", filler[1:])
    assert len(await rig.sent("<old-2999@rep.example.net>")) == 1  # Dovecot sees them
    await rig.send("<needle@rep.example.net>")

    status = await rig.finished("<needle@rep.example.net>", within=60)

    assert status.state is CleanupState.DONE
    commands = cleanup.stats.commands
    assert commands.get("UID SEARCH") == 1  # one header search, no scan
    assert commands.get("UID FETCH") == 2  # the Message-ID of the one found, then its body
    assert cleanup.stats.fetched_messages == 2
    assert not any(name in commands for name in ("FETCH", "SEARCH", "EXPUNGE"))
    [copy] = await rig.sent("<needle@rep.example.net>")
    assert not has_pixel(copy.data)


async def test_gmail_style_moves_tracked_copies_to_trash_and_purges_them(rig: Rig) -> None:
    await asyncio.to_thread(rig.server.command, "CREATE", "Trash", user=rig.user)
    await rig.put(plain_email("<binned@rep.example.net>"), name="Trash")  # the rep's own
    rig.settings.set("tracking.per_recipient", "true")
    await rig.start(rig.make_cleanup(replace(FAST, trash="always")))
    await rig.send("<gmail@rep.example.net>", ("alicja@example.com", "bob@example.com"))

    status = await rig.finished("<gmail@rep.example.net>")

    assert status.state is CleanupState.DONE
    [copy] = await rig.sent("<gmail@rep.example.net>")
    assert not has_pixel(copy.data)
    [trash] = await rig.sent(name="Trash")  # our copies were purged, the rep's stayed
    assert trash.message_id == "<binned@rep.example.net>"


async def test_an_original_owed_when_the_agent_died_is_put_in_after_a_restart(
    rig: Rig,
) -> None:
    # Gmail order: tracked copies out first, then the original in. The agent died in
    # between: the tracked copy is gone, the original not yet in, and that is on disk.
    slow = replace(FAST, first_delay=3600, trash="always", search_window=0.3)
    await asyncio.to_thread(rig.server.command, "CREATE", "Trash", user=rig.user)
    first = await rig.start(rig.make_cleanup(slow))
    await rig.send("<owed@rep.example.net>")
    assert await first.wait_until(lambda: first.pending()[0].due_at is not None, WAIT)
    await rig.stop()
    await asyncio.to_thread(_expunge_all, rig.server, rig.user, "Sent")
    progress = rig.root / "data" / ORIGINALS_DIR / f"{first.pending()[0].email_id}.json"
    progress.write_text(progress.read_text().replace('"append_owed": false',
                                                     '"append_owed": true'))

    second = await rig.start(rig.make_cleanup(slow))
    second.retry_now()
    status = await rig.finished("<owed@rep.example.net>")

    assert status.state is CleanupState.DONE
    [copy] = await rig.sent("<owed@rep.example.net>")
    assert copy.data == rig.original and second.stats.appended == 1


def _expunge_all(server: dv.Dovecot, user: str, name: str) -> None:
    with server.client(user, server.users[user]) as imap:
        imap.select(name)
        imap.store("1:*", "+FLAGS", "(\\Deleted)")
        imap.expunge()


async def test_kept_originals_survive_a_restart(rig: Rig) -> None:
    slow = replace(FAST, first_delay=3600)
    first = await rig.start(rig.make_cleanup(slow))
    await rig.send("<restart@rep.example.net>")
    assert await first.wait_until(lambda: first.pending()[0].due_at is not None, WAIT)
    await rig.stop()

    second = rig.make_cleanup(slow)
    await second.start()
    rig.cleanup = second
    [entry] = second.pending()
    assert entry.message_id == "<restart@rep.example.net>" and entry.delivered == 1
    second.retry_now()

    status = await rig.finished("<restart@rep.example.net>")
    assert status.state is CleanupState.DONE
    [copy] = await rig.sent("<restart@rep.example.net>")
    assert copy.data == rig.original


async def test_untracked_and_undelivered_sends_keep_nothing(rig: Rig) -> None:
    cleanup = await rig.start()
    rig.settings.set("defaults.track", "false")
    await rig.send("<untracked@rep.example.net>")
    assert rig.kept_files() == []
    rig.settings.set("defaults.track", "true")
    rig.sink.refuse("nobody@example.com", "550 5.1.1 No such user")
    await rig.send("<bounced@rep.example.net>", ("nobody@example.com",))
    assert await cleanup.wait_until(lambda: not cleanup.pending(), WAIT)
    assert rig.kept_files() == []
    assert cleanup.stats.sessions == 0  # nothing was in Sent to put right


async def test_built_from_settings_and_secrets(rig: Rig) -> None:
    settings = Settings()
    settings.set("imap.url", f"imap://{rig.user}@127.0.0.1:{rig.server.port}")
    secrets = SecretStore("mailbeacon-test", {"MAILBEACON_IMAP_PASSWORD": dv.PASSWORD})
    built = build_sent_cleanup(
        lambda: settings, secrets, rig.root / "data", rig.store, ENROLLMENT,
        rig.statuses.append, config=FAST,
    )
    assert built is not None
    await rig.start(built)
    await rig.send("<built@rep.example.net>")

    status = await rig.finished("<built@rep.example.net>")

    assert status.state is CleanupState.DONE
    [copy] = await rig.sent("<built@rep.example.net>")
    assert not has_pixel(copy.data)

    settings.set("sent_cleanup.enabled", "false")
    assert build_sent_cleanup(
        lambda: settings, secrets, rig.root / "data", rig.store, ENROLLMENT
    ) is None


# Last: Dovecot then slows every login from 127.0.0.1 for a while (auth penalty).
@pytest.mark.expect_log("refused the IMAP user name or password")
async def test_a_wrong_password_changes_nothing_and_says_so(rig: Rig) -> None:
    once = replace(FAST, auth_retry_seconds=3600)
    cleanup = await rig.start(rig.make_cleanup(once, password="wrong"))
    await rig.send("<password@rep.example.net>")
    assert await cleanup.wait_until(
        lambda: any(s.state is CleanupState.WRONG_PASSWORD for s in rig.statuses), WAIT
    )
    problem = cleanup.status.problem
    assert problem is not None and "password" in problem
    [saved] = await rig.sent()
    assert has_pixel(saved.data)
    assert len(cleanup.pending()) == 1  # kept for when the password is fixed
