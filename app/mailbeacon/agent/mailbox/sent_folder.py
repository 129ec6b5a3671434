"""The rep's Sent folder on one connection: what one email's copies are, and changing them.

Looking costs one ``UID SEARCH HEADER Message-ID`` (never a scan), then one FETCH
of the found messages' Message-ID, then one FETCH of the bodies that match; a
message is read once per UIDVALIDITY (the verdict is remembered in the kept
original). Only copies that are provably ours (:mod:`sent_copies`) are ever
deleted, and only exactly those UIDs are expunged: a plain EXPUNGE runs only
when nothing else in Sent is marked deleted. With Gmail a copy goes through
Trash and is purged from there, or it would stay in All Mail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mailbeacon.agent.mailbox.imap_client import ImapClient, Mailbox
from mailbeacon.agent.mailbox.imap_parse import ListedMailbox, quote
from mailbeacon.agent.mailbox.sent_copies import (
    CopyKind,
    Identity,
    classify_copy,
    flagged_deleted,
    message_id_of,
    same_message_id,
)
from mailbeacon.agent.mailbox.sent_spool import KeptOriginal
from mailbeacon.agent.mailbox.sent_status import CleanupConfig
from mailbeacon.core.language import Phrase, mark

HEADER_ITEMS = "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
SEEN = "\\Seen"
DELETED = "(\\Deleted)"


@dataclass(slots=True)
class Found:
    """The UIDs in Sent of one email's copies, by what they are."""

    tracked: list[int] = field(default_factory=list)
    clean: list[int] = field(default_factory=list)
    unproven: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SentFolder:
    """Sent, selected on ``client``; ``trash`` set when copies must leave through it."""

    client: ImapClient
    sent: ListedMailbox
    trash: ListedMailbox | None
    mailbox: Mailbox
    config: CleanupConfig
    identity: Identity
    keys: Callable[[str], set[str]]  # the message keys recorded for a Message-ID

    async def look(self, entry: KeptOriginal) -> Found:
        """Search by header and say what each message found is (each one read only once)."""
        uids = await self.client.uid_search(f"HEADER Message-ID {quote(entry.message_id)}")
        uids = uids[-max(1, self.config.max_candidates) :]
        validity = self.mailbox.uidvalidity
        known = {uid: entry.seen[(validity, uid)] for uid in uids if (validity, uid) in entry.seen}
        fresh = [uid for uid in uids if uid not in known]
        if fresh:
            known.update(await self._classify(entry, fresh))
        found = Found()
        for uid, kind in known.items():
            entry.seen[(validity, uid)] = kind
            if kind is CopyKind.TRACKED:
                found.tracked.append(uid)
            elif kind is CopyKind.CLEAN:
                found.clean.append(uid)
            elif kind is CopyKind.UNPROVEN:
                found.unproven.append(uid)
        return found

    async def _classify(self, entry: KeptOriginal, uids: list[int]) -> dict[int, CopyKind]:
        """Fetch the Message-ID of ``uids``, then the bodies of those that match."""
        heads = await self.client.uid_fetch(uids, HEADER_ITEMS)
        kinds: dict[int, CopyKind] = {}
        small: list[int] = []
        for uid in uids:
            items = heads.get(uid)
            if items is None:
                continue
            size = items.get("RFC822.SIZE")
            if not same_message_id(message_id_of(items), entry.message_id):
                kinds[uid] = CopyKind.OTHER
            elif isinstance(size, int) and size > self.config.max_message_bytes:
                kinds[uid] = CopyKind.UNPROVEN  # too big to look at: never deleted
            else:
                small.append(uid)
        if not small:
            return kinds
        bodies = await self.client.uid_fetch(small, "(UID BODY.PEEK[])", time_limit=300.0)
        keys = {entry.message_key, *self.keys(entry.message_id)}
        for uid in small:
            raw = bodies.get(uid, {}).get("BODY[]")
            if not isinstance(raw, bytes):
                continue
            kind = await asyncio.to_thread(
                classify_copy, raw, entry.message_id, keys, self.identity
            )
            if kind is CopyKind.CLEAN and flagged_deleted(heads[uid]):
                continue  # marked deleted, on its way out: not the copy that stays
            kinds[uid] = kind
        return kinds

    async def append(self, original: bytes, when: datetime) -> int:
        """Put ``original`` into Sent, read, dated ``when``; its new UID (or 0)."""
        uid = await self.client.append(self.sent.name, original, (SEEN,), when)
        return uid or 0

    async def remove(self, uids: list[int], entry: KeptOriginal) -> int:
        """Delete the tracked copies; how many are gone from Sent (else ``entry.note``
        says why not)."""
        if self.trash is not None:
            return await self._to_trash(self.trash, uids, entry)
        await self.client.uid_store(uids, "+FLAGS.SILENT", DELETED)
        if await expunge(self.client, uids):
            return len(uids)
        entry.note = Phrase(
            mark(
                "its copies with a pixel are marked deleted but still in Sent, because other "
                "messages there are marked deleted too and this server cannot remove one alone"
            )
        )
        return 0

    async def _to_trash(self, trash: ListedMailbox, uids: list[int], entry: KeptOriginal) -> int:
        """Gmail: deleting from Sent only takes a label away; moved to Trash the message
        leaves All Mail, and purged from Trash (only what was just moved) it is gone."""
        client = self.client
        if "MOVE" in client.capabilities:
            moved = await client.uid_move(uids, trash.name)
        else:
            moved = await client.uid_copy(uids, trash.name)
            await client.uid_store(uids, "+FLAGS.SILENT", DELETED)
            if not await expunge(client, uids):
                entry.note = Phrase(
                    mark("its copies with a pixel were copied to Trash but are still in Sent")
                )
                return 0
        if moved:
            await client.select(trash.name)
            await client.uid_store(list(moved.values()), "+FLAGS.SILENT", DELETED)
            await expunge(client, list(moved.values()))
            await client.select(self.sent.name)
        return len(uids)

    async def reselect(self) -> None:
        """Select Sent again (after a refused change, for the next email)."""
        await self.client.select(self.sent.name)


async def expunge(client: ImapClient, uids: list[int]) -> bool:
    """Remove exactly ``uids`` (marked \\Deleted); False when that cannot be done alone."""
    if "UIDPLUS" in client.capabilities:
        await client.uid_expunge(uids)
        return True
    # A plain EXPUNGE removes everything marked deleted: only if that is ours alone.
    others = set(await client.uid_search("DELETED")) - set(uids)
    if others:
        return False
    await client.expunge()
    return True
