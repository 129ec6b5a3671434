"""Finding the rep's Sent (and Trash) folder on an IMAP account.

The special-use attribute (RFC 6154: ``\\Sent``, ``\\Trash``) decides where the
server offers it; otherwise a short list of names that mail providers and
clients commonly use ("Sent", "Sent Items", "[Gmail]/Sent Mail", ...). One LIST
command, whatever the number of folders. Nothing here changes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailbeacon.agent.mailbox.imap_client import ImapClient
from mailbeacon.agent.mailbox.imap_parse import ListedMailbox

log = logging.getLogger(__name__)

SENT = "\\SENT"
TRASH = "\\TRASH"

# Whole names (lower case), best first, then last path components.
SENT_NAMES = (
    "[gmail]/sent mail",
    "[google mail]/sent mail",
    "sent",
    "sent items",
    "sent messages",
    "sent mail",
    "inbox.sent",
    "inbox/sent",
    "inbox.sent items",
    "inbox.sent messages",
)
SENT_LEAVES = ("sent", "sent items", "sent messages", "sent mail", "gesendet",
               "gesendete objekte", "envoy&AOk-s", "elementy wys&AUI-ane")
TRASH_NAMES = (
    "[gmail]/trash",
    "[google mail]/trash",
    "[gmail]/bin",
    "[google mail]/bin",
    "trash",
    "deleted items",
    "deleted messages",
    "inbox.trash",
    "inbox/trash",
)
TRASH_LEAVES = ("trash", "deleted items", "deleted messages", "bin")


@dataclass(frozen=True, slots=True)
class Folders:
    """The account's Sent and Trash folders (None: not found)."""

    sent: ListedMailbox | None
    trash: ListedMailbox | None


async def find_folders(client: ImapClient, sent_name: str | None = None) -> Folders:
    """Sent and Trash of the logged-in account; ``sent_name`` overrides the search for Sent."""
    listed = await client.list_mailboxes()
    sent = _named(listed, sent_name) if sent_name else pick(listed, SENT, SENT_NAMES, SENT_LEAVES)
    trash = pick(listed, TRASH, TRASH_NAMES, TRASH_LEAVES)
    if trash is not None and sent is not None and trash.name == sent.name:
        trash = None
    log.debug("Sent folder: %s; Trash: %s", sent and sent.name, trash and trash.name)
    return Folders(sent, trash)


def pick(
    listed: Sequence[ListedMailbox],
    attribute: str,
    names: Iterable[str],
    leaves: Iterable[str],
) -> ListedMailbox | None:
    """The mailbox with ``attribute``, else the first of ``names``, else by last component."""
    usable = [m for m in listed if m.selectable]
    marked = [m for m in usable if attribute in m.flags]
    if marked:
        return min(marked, key=_depth)
    by_name = {m.name.lower(): m for m in usable}
    for name in names:
        if name in by_name:
            return by_name[name]
    wanted = {leaf.lower() for leaf in leaves}
    found = [m for m in usable if _leaf(m).lower() in wanted]
    return min(found, key=_depth) if found else None


def _named(listed: Sequence[ListedMailbox], name: str) -> ListedMailbox | None:
    for mailbox in listed:
        if mailbox.name == name and mailbox.selectable:
            return mailbox
    return None


def _leaf(mailbox: ListedMailbox) -> str:
    if not mailbox.delimiter:
        return mailbox.name
    return mailbox.name.rsplit(mailbox.delimiter, 1)[-1]


def _depth(mailbox: ListedMailbox) -> tuple[int, str]:
    """Shallow folders first ("Sent" before "Archive/2019/Sent"), then by name."""
    depth = mailbox.name.count(mailbox.delimiter) if mailbox.delimiter else 0
    return depth, mailbox.name
