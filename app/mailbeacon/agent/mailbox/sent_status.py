"""Where the Sent cleanup stands, its knobs and counts, and what the rep reads about it.

Every sentence the rep may see about an email's Sent folder is written here, so
the wording stays consistent: it names the email (its subject, else its
Message-ID), says what happened to the copy with a pixel, and whether anything
was changed. A state outside ``IDLE``/``WAITING``/``DONE`` is a problem, shown
in the rep's status list (the agent keeps it under the cleanup's name and replaces
it with the cleanup's next news).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mailbeacon.agent.mailbox.imap_client import ClientStats
from mailbeacon.agent.mailbox.sent_spool import KeptOriginal
from mailbeacon.agent.mailbox.session import SessionFailure, Trouble
from mailbeacon.core.backoff import Backoff
from mailbeacon.core.language import PHRASES, Phrase, mark

MiB = 1024 * 1024


class CleanupState(StrEnum):
    """Where the cleanup stands (the last thing that happened)."""

    IDLE = "idle"
    WAITING = "waiting"  # looked; the provider's copy is not (all) there yet
    DONE = "done"  # one email put right (or nothing needed doing)
    NOT_FOUND = "not_found"  # nothing provably ours found: left alone
    INCOMPLETE = "incomplete"  # some tracked copies could not be removed
    READ_ONLY = "read_only"
    NO_SENT_FOLDER = "no_sent_folder"
    UNREACHABLE = "unreachable"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a state name
    ERROR = "error"
    GAVE_UP = "gave_up"


_FINE = frozenset({CleanupState.IDLE, CleanupState.WAITING, CleanupState.DONE})


@dataclass(frozen=True, slots=True)
class CleanupStatus:
    """A state, for one email (``message_id``) or the account, and what it means."""

    state: CleanupState
    detail: str = ""
    message_id: str | None = None

    @property
    def problem(self) -> str | None:
        """A sentence for the rep's status list, or None when all is well."""
        if self.state in _FINE:
            return None
        return Phrase(mark("Sent folder not tidied: {detail}"), detail=self.detail)


@dataclass(frozen=True, slots=True)
class CleanupConfig:
    """Knobs; the defaults are for real providers, tests shorten them."""

    first_delay: float = 5.0  # after delivery: a mail client saves its own copy first
    retry_delays: tuple[float, ...] = (20.0, 30.0, 60.0, 120.0)  # looking again (M365)
    search_window: float = 600.0  # stop looking this long after the first search
    backoff_initial: float = 1.0  # server unreachable: first wait, doubling
    backoff_max: float = 300.0
    auth_retry_seconds: float = 15 * 60.0
    give_up_after: float = 3 * 86400.0  # unreachable this long after delivery: release
    expire_after: float = 8 * 86400.0  # kept, never delivered (the outbox gives up at 5 days)
    connect_seconds: float = 30.0
    max_candidates: int = 50  # messages one search may return that are looked at
    max_message_bytes: int = 64 * MiB  # a larger copy is not fetched (so not deleted)
    trash: str = "auto"  # "auto": move to Trash on Gmail; "always"; "never"
    sent_folder: str | None = None  # the folder's exact name, when discovery is wrong

    @property
    def backoff(self) -> Backoff:
        """Waits after failed attempts: ``backoff_initial`` doubling up to ``backoff_max``."""
        return Backoff(first=self.backoff_initial, cap=self.backoff_max)


@dataclass(slots=True)
class CleanupStats:
    """What the cleanup did and asked of the server (for the operator and for tests)."""

    sessions: int = 0
    passes: int = 0
    removed: int = 0
    appended: int = 0
    imap: ClientStats = field(default_factory=ClientStats)  # shared by every connection

    @property
    def commands(self) -> dict[str, int]:
        """IMAP commands sent, by name (``UID SEARCH``, ``UID FETCH``...)."""
        return self.imap.commands

    @property
    def fetched_messages(self) -> int:
        """Messages the server sent (headers or bodies), over all FETCH commands."""
        return self.imap.fetched_messages


# ---------------------------------------------------------------- wording


def account_trouble(failure: SessionFailure) -> CleanupStatus:
    """The account could not be worked on (every due email waits)."""
    if failure.trouble is Trouble.WRONG_PASSWORD:
        return CleanupStatus(CleanupState.WRONG_PASSWORD, failure.detail)
    if failure.trouble is Trouble.UNREACHABLE:
        return CleanupStatus(
            CleanupState.UNREACHABLE,
            Phrase(mark("{detail}; will try again"), detail=failure.detail),
        )
    if failure.trouble is Trouble.REFUSED:
        return CleanupStatus(
            CleanupState.ERROR,
            Phrase(mark("the mail server said: {detail}"), detail=failure.detail),
        )
    return CleanupStatus(CleanupState.ERROR, failure.detail)


def _about(entry: KeptOriginal, state: CleanupState, detail: str) -> CleanupStatus:
    return CleanupStatus(state, detail, entry.message_id)


def no_sent_folder(entry: KeptOriginal, host: str) -> CleanupStatus:
    """The account has no folder that looks like Sent."""
    return _about(
        entry,
        CleanupState.NO_SENT_FOLDER,
        Phrase(
            mark(
                "no Sent folder was found on {host}, so the copy of {email} with a pixel may "
                "still be in your sent mail"
            ),
            host=host,
            email=entry.label,
        ),
    )


def gave_up(entry: KeptOriginal, days: float, why: str) -> CleanupStatus:
    """The server could not be worked with for ``days`` after delivery."""
    return _about(
        entry,
        CleanupState.GAVE_UP,
        Phrase(
            mark(
                "gave up after {days} days on putting {email} right in Sent ({reason}); the "
                "copy with a pixel may still be there"
            ),
            days=f"{days:g}",
            email=entry.label,
            reason=why,
        ),
    )


def change_refused(entry: KeptOriginal, exc: Exception) -> CleanupStatus:
    """The server refused a change for this email alone (it is tried again later)."""
    return _about(
        entry,
        CleanupState.ERROR,
        Phrase(
            mark("the mail server refused a change for {email}: {reply}"),
            email=entry.label,
            reply=str(exc),
        ),
    )


def unsearchable(entry: KeptOriginal) -> CleanupStatus:
    """The Message-ID cannot be put into a search."""
    return _about(
        entry,
        CleanupState.NOT_FOUND,
        Phrase(
            mark("the Message-ID of {email} cannot be searched for; nothing was changed"),
            email=entry.label,
        ),
    )


def read_only(entry: KeptOriginal) -> CleanupStatus:
    """Sent cannot be changed."""
    return _about(
        entry,
        CleanupState.READ_ONLY,
        Phrase(
            mark(
                "your Sent folder is read-only, so the copy of {email} with a pixel stays there "
                "(opening it may count as an open); nothing was changed"
            ),
            email=entry.label,
        ),
    )


def merged(entry: KeptOriginal) -> CleanupStatus:
    """The server took the appended original for the tracked copy (one per Message-ID)."""
    return _about(
        entry,
        CleanupState.INCOMPLETE,
        Phrase(
            mark(
                "the mail server keeps one message per Message-ID, so the copy of {email} with "
                "a pixel could not be replaced; it was left alone"
            ),
            email=entry.label,
        ),
    )


def waiting(entry: KeptOriginal) -> CleanupStatus:
    """Not all delivered copies were found yet: looking again later."""
    return _about(
        entry,
        CleanupState.WAITING,
        PHRASES.n(
            "{done} of {count} copy of {email} put right so far; looking again for the "
            "provider's copy",
            "{done} of {count} copies of {email} put right so far; looking again for the "
            "provider's copy",
            entry.delivered,
            done=entry.removed,
            email=entry.label,
        ),
    )


def outcome(entry: KeptOriginal, complete: bool) -> CleanupStatus:
    """How the email's cleanup ended, after its last search."""
    if entry.note:
        note = Phrase(mark("{email}: {note}"), email=entry.label, note=entry.note)
        return _about(entry, CleanupState.INCOMPLETE, note)
    if complete or (entry.clean_seen and not entry.unproven):
        what = (
            PHRASES.n(
                "{email}: removed {count} copy with a pixel; the untracked email is in Sent",
                "{email}: removed {count} copies with a pixel; the untracked email is in Sent",
                entry.removed,
                email=entry.label,
            )
            if entry.removed
            else Phrase(mark("{email}: nothing with a pixel was in Sent"), email=entry.label)
        )
        return _about(entry, CleanupState.DONE, what)
    if entry.unproven:
        return _about(
            entry,
            CleanupState.NOT_FOUND,
            Phrase(
                mark(
                    "copies of {email} in Sent carry tracking that MailBeacon cannot prove is "
                    "yours; they were left alone"
                ),
                email=entry.label,
            ),
        )
    return _about(
        entry,
        CleanupState.NOT_FOUND,
        Phrase(
            mark(
                "no copy of {email} with your pixel was found in Sent (the provider may have "
                "changed its Message-ID); nothing was changed"
            ),
            email=entry.label,
        ),
    )
