"""A refused or bounced email in the rep's words, not the mail server's.

A mail server's refusal ("550 5.1.1 <typo@client.exmaple>: Recipient address
rejected: User unknown in virtual mailbox table") tells an operator everything and
a rep nothing. The notification says what it means — the address does not exist,
the mailbox is full, the email was taken for spam — and what to do: clicking it
opens the email's own view, where "Correct the address and resend" fills a new
email (issue 20). The server's own words stay on the event (its reason), shown in
the email's timeline.

Meaning comes from the enhanced status code (RFC 3463, "5.1.1") when there is one,
else from the basic reply code and a few words every server uses.
"""

from __future__ import annotations

import re

from mailbeacon.core.language import ENGLISH, Language, mark

# English source wording (translated where it is shown, by ``refusal_meaning``).
RECIPIENTS = mark("the recipient's mail server")
OURS = mark("your outgoing mail server")
NO_SUCH_ADDRESS = mark("the address does not exist")
# Enhanced status codes, most specific first (a prefix ending in "." is a class);
# {server} is who refused (RECIPIENTS for a bounce, OURS for a refusal in session).
_ENHANCED: tuple[tuple[str, str], ...] = (
    ("5.1.1", NO_SUCH_ADDRESS),
    ("5.1.10", NO_SUCH_ADDRESS),
    ("5.1.2", mark("the recipient's domain does not exist or takes no mail")),
    ("5.1.3", mark("the address is not a valid email address")),
    ("5.1.6", mark("the recipient has moved and left no new address")),
    ("5.2.1", mark("the recipient's mailbox is disabled")),
    ("4.2.2", mark("the recipient's mailbox is full")),
    ("5.2.2", mark("the recipient's mailbox is full")),
    ("5.2.3", mark("the email is too large for {server}")),
    ("5.3.4", mark("the email is too large for {server}")),
    ("5.7.", mark("{server} refused it as spam or by its own rules")),
    ("5.4.", mark("the recipient's mail server could not be reached")),
)
# Meanings where a corrected address is the fix.
_ADDRESS = frozenset(
    {
        NO_SUCH_ADDRESS,
        mark("the recipient's domain does not exist or takes no mail"),
        mark("the address is not a valid email address"),
        mark("the recipient has moved and left no new address"),
    }
)
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|no such user|does not exist|unknown recipient|"
    r"invalid recipient|recipient not found|no mailbox|mailbox unavailable",
    re.IGNORECASE,
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def refusal_meaning(
    reply: str, status: str | None = None, server: str = RECIPIENTS, tr: Language = ENGLISH
) -> str:
    """What a refusal by ``server`` means, in plain words (lower case, no full stop)."""
    return tr.t(_meaning(reply, status), server=tr.t(server))


def _meaning(reply: str, status: str | None) -> str:
    """The English source of the meaning ({server} left to fill)."""
    code = status or _enhanced(reply)
    if code:
        for prefix, meaning in _ENHANCED:
            if code == prefix or (prefix.endswith(".") and code.startswith(prefix)):
                return meaning
    if _NO_SUCH_USER.search(reply):
        return NO_SUCH_ADDRESS
    if reply.startswith("552"):
        return mark("the recipient's mailbox is full or the email is too large")
    return mark("{server} refused it")


def refusal_body(
    reply: str,
    status: str | None = None,
    *,
    server: str = RECIPIENTS,
    in_records: bool = True,
    tr: Language = ENGLISH,
) -> str:
    """The notification's body: what the refusal means, then what to do about it."""
    meaning = refusal_meaning(reply, status, server, tr)
    said = meaning[0].upper() + meaning[1:] + "."
    if not in_records:  # no email of ours to open or resend
        return said
    if _meaning(reply, status) in _ADDRESS:
        return tr.t(
            "{said} Click to see the email, correct the address and send it again.", said=said
        )
    return tr.t("{said} Click to see the email and what the server said.", said=said)


def _enhanced(reply: str) -> str | None:
    found = _STATUS.search(reply)
    return ".".join(found.groups()) if found else None
