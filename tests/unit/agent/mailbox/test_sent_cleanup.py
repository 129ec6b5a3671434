"""The Sent-folder cleanup's parts: what is provably ours, the kept originals on disk,
counting delivered copies, folder discovery, and IMAP protocol corners."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.agent.mailbox.folders import SENT, SENT_LEAVES, SENT_NAMES, TRASH, pick
from mailbeacon.agent.mailbox.imap_client import ImapClient
from mailbeacon.agent.mailbox.imap_parse import (
    ListedMailbox,
    Response,
    copyuid,
    imap_date,
    parse_list,
    parse_uid_set,
    uid_set,
)
from mailbeacon.agent.mailbox.sent_cleanup import SentCleanup, build_sent_cleanup
from mailbeacon.agent.mailbox.sent_copies import CopyKind, Identity, classify_copy
from mailbeacon.agent.mailbox.sent_folder import expunge
from mailbeacon.agent.mailbox.sent_spool import ORIGINALS_DIR
from mailbeacon.agent.mailbox.sent_status import CleanupConfig, CleanupState, CleanupStatus
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.outbox_items import DeliveryFailure, ItemState, QueuedItem
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.mail_urls import parse_mail_url
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.rewrite import Plan, rewrite_message
from mailbeacon.core.urls import TrackingUrls
from tests.helpers.sent import ScriptedImap, html_email

ENROLLMENT = Enrollment("https://t.example.com", 7, "api", b"s" * 32)
IDENTITY = Identity(ENROLLMENT.user_id, ENROLLMENT.signing_key)
MID = "<unit@rep.example.net>"
WAIT = 10.0


def tracked_copy(raw: bytes, enrollment: Enrollment = ENROLLMENT, clicks: bool = True) -> tuple[
    bytes, str
]:
    """The copy a recipient gets (pixel, and links unless ``clicks`` is off) and its key."""
    plan = Plan(track=True, clicks=clicks, per_recipient=False)
    result = rewrite_message(raw, ("alicja@example.com",), plan, TrackingUrls(enrollment))
    assert result.tracked
    return result.copies[0].data, result.message_key


# ---------------------------------------------------------------- provably ours


def test_the_tracked_copy_is_provably_ours_and_the_original_is_clean() -> None:
    original = html_email(MID)
    copy, key = tracked_copy(original)
    assert classify_copy(copy, MID, {key}, IDENTITY) is CopyKind.TRACKED
    assert classify_copy(original, MID, {key}, IDENTITY) is CopyKind.CLEAN


def test_a_pixel_signed_with_another_key_is_not_provably_ours() -> None:
    forger = Enrollment(ENROLLMENT.server_url, ENROLLMENT.user_id, "x", b"f" * 32)
    copy, key = tracked_copy(html_email(MID), forger)
    # It names this rep and this email, but no signature of ours: never deleted.
    assert classify_copy(copy, MID, {key}, IDENTITY) is CopyKind.UNPROVEN


def test_another_users_pixel_is_not_ours() -> None:
    other = Enrollment(ENROLLMENT.server_url, 8, "x", ENROLLMENT.signing_key)
    copy, key = tracked_copy(html_email(MID), other)
    assert classify_copy(copy, MID, {key}, IDENTITY) is CopyKind.UNPROVEN


def test_a_quoted_pixel_of_an_earlier_email_makes_no_copy_tracked() -> None:
    earlier, _earlier_key = tracked_copy(html_email("<earlier@rep.example.net>"))
    quoting = earlier.replace(b"<earlier@rep.example.net>", MID.encode())
    assert classify_copy(quoting, MID, {"0" * 24}, IDENTITY) is CopyKind.CLEAN


def test_a_different_message_id_is_another_message() -> None:
    copy, key = tracked_copy(html_email("<unit@rep.example.net>2"))
    assert classify_copy(copy, MID, {key}, IDENTITY) is CopyKind.OTHER
    assert classify_copy(b"Subject: no id\r\n\r\nhi", MID, {key}, IDENTITY) is CopyKind.OTHER


def test_a_message_id_folded_by_the_provider_still_matches() -> None:
    copy, key = tracked_copy(html_email(MID))
    folded = copy.replace(b"Message-ID: " + MID.encode(), b"Message-ID:\r\n " + MID.encode())
    assert classify_copy(folded, MID, {key}, IDENTITY) is CopyKind.TRACKED


def test_a_base64_html_part_is_read_too() -> None:
    copy, key = tracked_copy(html_email(MID))
    head, _, rest = copy.partition(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    html_qp, _, tail = rest.partition(b"\r\n--b1--")
    html = binascii.a2b_qp(html_qp)
    b64 = base64.encodebytes(html).replace(b"\n", b"\r\n")
    reencoded = head + b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--b1--" + tail
    assert b"/o/" not in reencoded  # the pixel is only visible once decoded
    assert classify_copy(reencoded, MID, {key}, IDENTITY) is CopyKind.TRACKED


def test_tracked_links_without_the_pixel_are_not_provably_ours() -> None:
    copy, key = tracked_copy(html_email(MID))
    without_pixel = re.sub(rb"<img[^>]*/o/[^>]*>", b"", copy)
    assert b".gif" not in without_pixel and b"/c/" in without_pixel
    assert classify_copy(without_pixel, MID, {key}, IDENTITY) is CopyKind.UNPROVEN


@given(st.binary(max_size=2000))
def test_damaged_messages_never_raise(junk: bytes) -> None:
    raw = b"Message-ID: " + MID.encode() + b"\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    assert classify_copy(raw + junk, MID, {"0" * 24}, IDENTITY) in set(CopyKind)


# ---------------------------------------------------------------- keeping and counting


def cleanup_at(folder: Path, enabled: Callable[[], bool] = lambda: True,
               config: CleanupConfig | None = None,
               statuses: list[CleanupStatus] | None = None,
               url: str = "imap://rep@127.0.0.1:1", clock: Callable[[], float] | None = None,
               ) -> SentCleanup:
    return SentCleanup(
        folder, parse_mail_url(url, "imap"), lambda: "pw", IDENTITY,
        enabled=enabled, on_status=(statuses if statuses is not None else []).append,
        config=config or CleanupConfig(first_delay=3600),
        **({"clock": clock} if clock else {}),
    )


def item(item_id: str, email_id: int, delivered: tuple[str, ...] = ("a@x",),
         failed: tuple[str, ...] = ()) -> QueuedItem:
    failures = (DeliveryFailure(failed, 550, "no such user", 0.0),) if failed else ()
    return QueuedItem(
        id=item_id, mail_from="rep@example.net", recipients=delivered + failed,
        meta={"email_id": email_id, "message_id": MID}, created=0.0, size=1,
        path=Path("/nonexistent"),
        state=ItemState(delivered_to=delivered, failures=failures),
    )


@pytest.fixture
async def keeper(tmp_path: Path) -> AsyncIterator[SentCleanup]:
    made = cleanup_at(tmp_path / ORIGINALS_DIR)
    await made.start()
    yield made
    await made.stop()


async def test_kept_originals_and_progress_survive_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / ORIGINALS_DIR
    first = cleanup_at(folder)
    await first.start()
    original = html_email(MID, subject="Oferta Q4")
    assert await first.keep(original, MID, "ab" * 12, 41, copies=2)
    await first.item_delivered(item("q1", 41))
    await first.stop()

    second = cleanup_at(folder)
    await second.start()
    [entry] = second.pending()
    assert (entry.email_id, entry.message_id, entry.copies) == (41, MID, 2)
    assert entry.subject == "Oferta Q4" and entry.settled == {"q1": True} and entry.due_at is None
    assert second._spool.read(entry) == original
    await second.item_delivered(item("q2", 41))
    assert entry.due_at is not None and entry.delivered == 2
    await second.stop()


async def test_stopping_right_after_news_never_hangs(tmp_path: Path) -> None:
    # The news wakes the worker; a cancel landing as that wait ends is lost by wait_for.
    cleanup = cleanup_at(tmp_path / ORIGINALS_DIR)
    await cleanup.start()
    await cleanup.keep(html_email(MID), MID, "ab" * 12, 1, copies=2)
    await cleanup.item_delivered(item("q1", 1))
    stopping = asyncio.create_task(cleanup.stop())
    done, _ = await asyncio.wait({stopping}, timeout=WAIT)
    assert stopping in done


async def test_each_copy_counts_once_and_the_last_makes_it_due(keeper: SentCleanup) -> None:
    await keeper.keep(html_email(MID), MID, "ab" * 12, 5, copies=3)
    [entry] = keeper.pending()
    await keeper.item_delivered(item("q1", 5))
    await keeper.item_delivered(item("q1", 5))  # again after a restart: at least once
    await keeper.item_delivered(item("q2", 5))
    assert entry.due_at is None and entry.delivered == 2
    await keeper.item_failed(item("q3", 5, delivered=(), failed=("nobody@x",)))
    assert entry.due_at is not None and entry.delivered == 2


async def test_a_partly_refused_copy_counts_when_delivered(keeper: SentCleanup) -> None:
    await keeper.keep(html_email(MID), MID, "ab" * 12, 6, copies=1)
    partly = item("q1", 6, delivered=("a@x",), failed=("nobody@x",))
    await keeper.item_failed(partly)  # the outbox reports the failure first...
    assert keeper.pending()[0].settled == {}
    await keeper.item_delivered(partly)  # ...then the delivery
    assert keeper.pending()[0].delivered == 1


async def test_a_send_that_reached_nobody_is_released(keeper: SentCleanup, tmp_path: Path) -> None:
    await keeper.keep(html_email(MID), MID, "ab" * 12, 7, copies=1)
    await keeper.item_failed(item("q1", 7, delivered=(), failed=("nobody@x",)))
    assert keeper.pending() == []
    assert list((tmp_path / ORIGINALS_DIR).iterdir()) == []


async def test_news_of_other_sends_is_ignored(keeper: SentCleanup) -> None:
    await keeper.item_delivered(item("q1", 99))
    no_meta = QueuedItem("q2", "a", ("b",), {}, 0.0, 1, Path("/x"))
    await keeper.item_delivered(no_meta)
    assert keeper.pending() == []


async def test_nothing_is_kept_when_the_feature_is_off(tmp_path: Path) -> None:
    off = cleanup_at(tmp_path / ORIGINALS_DIR, enabled=lambda: False)
    assert not await off.keep(html_email(MID), MID, "ab" * 12, 1, copies=1)
    assert not (tmp_path / ORIGINALS_DIR).exists()


@pytest.mark.expect_log("cannot keep the original")
async def test_a_disk_that_refuses_does_not_stop_the_mail(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    cleanup = cleanup_at(blocked / ORIGINALS_DIR)
    assert not await cleanup.keep(html_email(MID), MID, "ab" * 12, 1, copies=1)
    assert cleanup.pending() == []


async def test_forget_drops_a_kept_original(keeper: SentCleanup, tmp_path: Path) -> None:
    await keeper.keep(html_email(MID), MID, "ab" * 12, 8, copies=1)
    await keeper.forget(8)
    assert keeper.pending() == [] and list((tmp_path / ORIGINALS_DIR).iterdir()) == []


@pytest.mark.expect_log("unreadable", "cannot read 2.eml")
async def test_damaged_and_leftover_files_are_cleared_on_start(tmp_path: Path) -> None:
    folder = tmp_path / ORIGINALS_DIR
    first = cleanup_at(folder)
    await first.keep(html_email(MID), MID, "ab" * 12, 1, copies=1)
    (folder / "2.eml").write_bytes(b"garbage without a header line")
    (folder / "3.json").write_text("{}")
    (folder / ".4.eml.x.tmp").write_bytes(b"half written")
    (folder / "1.json").write_text("{not json")

    second = cleanup_at(folder)
    await second.start()
    await second.stop()
    assert [e.email_id for e in second.pending()] == [1]
    assert sorted(p.name for p in folder.iterdir()) == ["1.eml", "1.json"]


async def test_an_original_that_never_left_the_outbox_expires(tmp_path: Path) -> None:
    now = [1000.0]
    cleanup = cleanup_at(tmp_path / ORIGINALS_DIR, clock=lambda: now[0],
                         config=CleanupConfig(expire_after=60.0))
    await cleanup.keep(html_email(MID), MID, "ab" * 12, 1, copies=1)
    now[0] += 61
    await cleanup.start()
    try:
        assert await cleanup.wait_until(lambda: not cleanup.pending(), WAIT)
        assert cleanup.stats.sessions == 0
    finally:
        await cleanup.stop()


async def test_turned_off_after_delivery_the_original_is_released_untouched(
    tmp_path: Path,
) -> None:
    on = [True]
    cleanup = cleanup_at(tmp_path / ORIGINALS_DIR, enabled=lambda: on[0],
                         config=CleanupConfig(first_delay=0))
    await cleanup.keep(html_email(MID), MID, "ab" * 12, 1, copies=1)
    on[0] = False
    await cleanup.start()
    try:
        await cleanup.item_delivered(item("q1", 1))
        assert await cleanup.wait_until(lambda: not cleanup.pending(), WAIT)
        assert cleanup.stats.sessions == 0
    finally:
        await cleanup.stop()


@pytest.mark.expect_log("cannot reach the mail server", "gave up")
async def test_an_unreachable_server_is_given_up_on_after_a_while(tmp_path: Path) -> None:
    closed = ScriptedImap()
    await closed.start()
    await closed.stop()  # its port now refuses connections
    statuses: list[CleanupStatus] = []
    config = CleanupConfig(first_delay=0, backoff_initial=0.01, backoff_max=0.02,
                           give_up_after=0.05)
    cleanup = cleanup_at(tmp_path / ORIGINALS_DIR, config=config, statuses=statuses,
                         url=f"imap://rep@127.0.0.1:{closed.port}")
    await cleanup.start()
    try:
        await cleanup.keep(html_email(MID, subject="Oferta"), MID, "ab" * 12, 1, copies=1)
        await cleanup.item_delivered(item("q1", 1))
        assert await cleanup.wait_until(lambda: not cleanup.pending(), WAIT)
    finally:
        await cleanup.stop()
    states = [s.state for s in statuses]
    assert CleanupState.UNREACHABLE in states and states[-1] is CleanupState.GAVE_UP
    problem = statuses[-1].problem
    assert problem is not None and "gave up" in problem and "“Oferta”" in problem
    assert list((tmp_path / ORIGINALS_DIR).iterdir()) == []


def test_only_states_that_need_the_rep_are_problems() -> None:
    assert CleanupStatus(CleanupState.DONE, "x").problem is None
    assert CleanupStatus(CleanupState.WAITING, "x").problem is None
    problem = CleanupStatus(CleanupState.READ_ONLY, "your Sent folder is read-only").problem
    assert problem == "Sent folder not tidied: your Sent folder is read-only"


# ---------------------------------------------------------------- building from settings


def test_off_without_an_imap_account_or_when_turned_off(tmp_path: Path) -> None:
    secrets = SecretStore("mailbeacon-test", {})
    data = tmp_path / "data"
    (data / ORIGINALS_DIR).mkdir(parents=True)
    (data / ORIGINALS_DIR / "1.eml").write_bytes(b"kept")
    with RecordsStore(tmp_path / "records.db") as store:
        settings = Settings()
        assert build_sent_cleanup(lambda: settings, secrets, data, store, ENROLLMENT) is None
        assert not (data / ORIGINALS_DIR).exists()  # nobody would ever release them

        settings.set("imap.url", "imaps://rep@imap.example.net")
        assert build_sent_cleanup(lambda: settings, secrets, data, store, ENROLLMENT) is not None
        settings.set("sent_cleanup.enabled", "false")
        assert build_sent_cleanup(lambda: settings, secrets, data, store, ENROLLMENT) is None


def test_an_imap_url_without_a_user_is_refused(tmp_path: Path) -> None:
    settings = Settings()
    settings.set("imap.url", "imaps://imap.example.net")
    with RecordsStore(tmp_path / "records.db") as store, pytest.raises(SettingError,
                                                                       match="user name"):
        build_sent_cleanup(lambda: settings, SecretStore("t", {}), tmp_path, store, ENROLLMENT)


# ---------------------------------------------------------------- folders


def box(name: str, *flags: str, delimiter: str = "/") -> ListedMailbox:
    return ListedMailbox(name, delimiter, frozenset(f.upper() for f in flags))


def test_the_special_use_attribute_decides() -> None:
    listed = [box("Sent"), box("Elementy wys&AUI-ane", "\\Sent"), box("INBOX")]
    assert pick(listed, SENT, SENT_NAMES, SENT_LEAVES) == listed[1]


def test_common_names_when_the_server_offers_no_attributes() -> None:
    gmail = [box("INBOX"), box("[Gmail]", "\\Noselect"), box("[Gmail]/Sent Mail"),
             box("[Gmail]/Trash")]
    assert pick(gmail, SENT, SENT_NAMES, SENT_LEAVES) == gmail[2]
    outlook = [box("Inbox"), box("Sent Items"), box("Deleted Items")]
    assert pick(outlook, SENT, SENT_NAMES, SENT_LEAVES) == outlook[1]
    courier = [box("INBOX", delimiter="."), box("INBOX.Archive.Sent", delimiter="."),
               box("INBOX.Sent", delimiter=".")]
    assert pick(courier, SENT, SENT_NAMES, SENT_LEAVES) == courier[2]
    nested = [box("Projects/2019/Sent"), box("Archive/Sent")]
    assert pick(nested, SENT, SENT_NAMES, SENT_LEAVES) == nested[1]  # the shallowest


def test_no_sent_folder_and_no_unselectable_one() -> None:
    assert pick([box("INBOX"), box("Sent", "\\Noselect")], SENT, SENT_NAMES, SENT_LEAVES) is None
    assert pick([box("Bin", "\\Trash")], TRASH, (), ()) is not None


# ---------------------------------------------------------------- IMAP protocol pieces


def test_uid_sets_compact_and_expand() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert parse_uid_set("1:3,7,9:10") == [1, 2, 3, 7, 9, 10]
    assert parse_uid_set("6:4") == [6, 5, 4]
    assert parse_uid_set("1:*") is None and parse_uid_set("x") is None
    assert parse_uid_set("1:4294967295") is None  # not believed


def test_copyuid_maps_old_to_new() -> None:
    answer = [Response(None, b"* OK [COPYUID 99 3:4,8 100:102] Moved"),
              Response("M5", b"M5 OK Done")]
    assert copyuid(answer) == {3: 100, 4: 101, 8: 102}
    assert copyuid([Response("M5", b"M5 OK [COPYUID 99 3:4 100] odd")]) == {}


def test_list_answers() -> None:
    assert parse_list(b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"') == box(
        "Sent Items", "\\HasNoChildren", "\\Sent"
    )
    assert parse_list(b"* LIST () \".\" INBOX.Sent") == box("INBOX.Sent", delimiter=".")
    assert parse_list(b"* LIST (\\Noselect) NIL 2024") == ListedMailbox(
        "2024", None, frozenset({"\\NOSELECT"})
    )
    assert parse_list(b'* LIST () "/" {9}\r\nSent Mail') == box("Sent Mail")
    assert parse_list(b"* LIST garbage") is None


def test_imap_dates() -> None:
    assert imap_date(datetime(2030, 1, 5, 9, 3, 7, tzinfo=UTC)) == "05-Jan-2030 09:03:07 +0000"


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., ScriptedImap]]:
    made: list[ScriptedImap] = []

    def make(**options: object) -> ScriptedImap:
        server = ScriptedImap(**options)  # type: ignore[arg-type]
        made.append(server)
        return server

    yield make
    for server in made:
        await server.stop()


async def connected(server: ScriptedImap) -> ImapClient:
    await server.start()
    client = await ImapClient.connect("127.0.0.1", server.port, "none")
    await client.login("rep", "pw")
    return client


async def test_without_uidplus_only_our_deletions_are_expunged(
    scripted: Callable[..., ScriptedImap],
) -> None:
    server = scripted(answers={"UID SEARCH": ["* SEARCH 5 9"]})
    client = await connected(server)
    try:
        # The rep marked message 9 deleted themselves: a plain EXPUNGE would take it too.
        assert not await expunge(client, [5])
        assert "EXPUNGE" not in server.commands()
        server.answers["UID SEARCH"] = ["* SEARCH 5"]
        assert await expunge(client, [5])
        assert server.commands()[-1] == "EXPUNGE"
    finally:
        await client.close()


async def test_with_uidplus_exactly_ours_are_expunged(
    scripted: Callable[..., ScriptedImap],
) -> None:
    server = scripted(capabilities="IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS")
    client = await connected(server)
    try:
        assert await expunge(client, [5, 6, 7])
        assert server.lines[-1].endswith("UID EXPUNGE 5:7")
    finally:
        await client.close()


async def test_append_sends_the_message_as_a_literal(
    scripted: Callable[..., ScriptedImap],
) -> None:
    server = scripted(codes={"APPEND": "[APPENDUID 1 42]"})
    client = await connected(server)
    try:
        when = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
        uid = await client.append("Sent Items", b"Subject: x\r\n\r\nbody", ("\\Seen",), when)
        assert uid == 42
        assert server.lines[-1].endswith(
            'APPEND "Sent Items" (\\Seen) "01-Jan-2030 09:00:00 +0000" {18}'
        )
        assert server.literals == [b"Subject: x\r\n\r\nbody"]
    finally:
        await client.close()


async def test_select_says_when_the_server_allows_no_changes(
    scripted: Callable[..., ScriptedImap],
) -> None:
    server = scripted(
        answers={"SELECT": ["* OK [UIDVALIDITY 3] ok", "* 4 EXISTS"]},
        codes={"SELECT": "[READ-ONLY]"},
    )
    client = await connected(server)
    try:
        mailbox = await client.select("Sent")
        assert mailbox.read_only and mailbox.exists == 4 and mailbox.uidvalidity == 3
        server.codes["SELECT"] = "[READ-WRITE]"
        assert not (await client.select("Sent")).read_only
    finally:
        await client.close()


@pytest.mark.expect_log("no Sent folder")
async def test_no_message_is_deleted_on_a_server_without_a_sent_folder(
    scripted: Callable[..., ScriptedImap], tmp_path: Path,
) -> None:
    server = scripted(answers={"LIST": ['* LIST () "/" INBOX', '* LIST () "/" Archive']})
    await server.start()
    statuses: list[CleanupStatus] = []
    cleanup = cleanup_at(tmp_path / ORIGINALS_DIR, config=CleanupConfig(first_delay=0),
                         statuses=statuses, url=f"imap://rep@127.0.0.1:{server.port}")
    await cleanup.start()
    try:
        await cleanup.keep(html_email(MID), MID, "ab" * 12, 1, copies=1)
        await cleanup.item_delivered(item("q1", 1))
        assert await cleanup.wait_until(lambda: not cleanup.pending(), WAIT)
    finally:
        await cleanup.stop()
    assert statuses[-1].state is CleanupState.NO_SENT_FOLDER
    assert not {"SELECT", "UID STORE", "EXPUNGE", "APPEND"} & set(server.commands())


@pytest.mark.expect_log("one message per Message-ID")
async def test_a_server_that_merges_copies_by_message_id_loses_nothing(
    scripted: Callable[..., ScriptedImap], tmp_path: Path,
) -> None:
    original = html_email(MID)
    copy, key = tracked_copy(original)
    text = copy.decode()
    head = f"Message-ID: {MID}\r\n\r\n"
    fetch = (
        f"* 1 FETCH (UID 5 FLAGS () RFC822.SIZE {len(copy)} "
        f"BODY[HEADER.FIELDS (MESSAGE-ID)] {{{len(head)}}}\r\n{head} "
        f"BODY[] {{{len(copy)}}}\r\n{text})"
    )
    server = scripted(
        capabilities="IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS MOVE",
        answers={
            "LIST": ['* LIST (\\Sent) "/" Sent'],
            "SELECT": ["* OK [UIDVALIDITY 3] ok", "* 1 EXISTS"],
            "UID SEARCH": ["* SEARCH 5"],
            "UID FETCH": [fetch],
        },
        codes={"APPEND": "[APPENDUID 3 5]"},  # "stored" as the message already there
    )
    await server.start()
    statuses: list[CleanupStatus] = []
    cleanup = cleanup_at(tmp_path / ORIGINALS_DIR, config=CleanupConfig(first_delay=0),
                         statuses=statuses, url=f"imap://rep@127.0.0.1:{server.port}")
    await cleanup.start()
    try:
        await cleanup.keep(original, MID, key, 1, copies=1)
        await cleanup.item_delivered(item("q1", 1))
        assert await cleanup.wait_until(lambda: not cleanup.pending(), WAIT)
    finally:
        await cleanup.stop()
    assert statuses[-1].state is CleanupState.INCOMPLETE
    assert "one message per Message-ID" in (statuses[-1].problem or "")
    assert "APPEND" in server.commands()
    assert "UID STORE" not in server.commands()  # the only copy was not deleted
