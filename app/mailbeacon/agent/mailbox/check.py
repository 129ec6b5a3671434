"""The settings dialog's IMAP "Test connection": try the inbox settings once, say what is wrong.

One short session, the way the reply watcher would start: connect (implicit TLS,
STARTTLS or plain), log in, EXAMINE INBOX (read-only, nothing is changed or
marked read), then note whether the server offers IDLE and where Sent is. Every
failure becomes one sentence the rep can act on (which host and port, and what
to check); the details go to the log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass

from mailbeacon.agent.account.bearer import BearerSource
from mailbeacon.agent.mailbox.folders import find_folders
from mailbeacon.agent.mailbox.imap_client import (
    AuthenticationFailed,
    ConnectionClosed,
    ImapClient,
    ImapError,
)
from mailbeacon.agent.mailbox.session import ImapAccount, imap_session, plain_refused
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.mail_urls import MailServerUrl, parse_mail_url
from mailbeacon.core.language import ENGLISH, Language, in_language, mark, said

log = logging.getLogger(__name__)

MAILBOX = "INBOX"


@dataclass(frozen=True, slots=True)
class ImapCheck:
    """Result of the IMAP "Test connection": ok, and a sentence for the rep."""

    ok: bool
    message: str
    idle: bool = False  # the server offers IDLE (replies are pushed, not polled)
    sent_folder: str | None = None  # the Sent folder found, as the server names it


class _InboxUnavailable(Exception):
    """Logged in, but INBOX could not be opened."""


async def check_imap(
    url: str,
    password: str,
    allow_plain: bool,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 15,  # noqa: ASYNC109 - the dialog's callers pass seconds, not a scope
    bearer: BearerSource | None = None,
    tr: Language = ENGLISH,
) -> ImapCheck:
    """Connect, log in and EXAMINE INBOX once with these (maybe unsaved) settings.

    With ``bearer`` the login is by OAuth access token and ``password`` is not needed.
    The sentence is in ``tr`` (the settings dialog passes the rep's language; the log
    keeps English).
    """
    server = _usable_url(url, password or ("-" if bearer else ""), allow_plain, tr)
    if isinstance(server, ImapCheck):
        return server
    where = f"{server.host}:{server.port}"
    try:
        async with asyncio.timeout(timeout):
            account = ImapAccount(
                server, lambda: password, allow_plain, ssl_context, timeout, bearer=bearer
            )
            return await _probe(account, tr)
    except Exception as exc:  # every failure becomes words for the rep
        message = _explain(exc, server, timeout, tr)
        if _expected(exc):
            log.info("IMAP test of %s failed: %s: %s", where, type(exc).__name__, exc)
        else:
            log.exception("IMAP test of %s failed unexpectedly", where)
        return ImapCheck(False, message)


def _usable_url(
    url: str, password: str, allow_plain: bool, tr: Language
) -> MailServerUrl | ImapCheck:
    """The parsed URL, or why it cannot be tried (nothing is sent anywhere then)."""
    if not url.strip():
        return ImapCheck(
            False, tr.t("Enter the URL of your inbox first, like imaps://you@imap.example.com.")
        )
    try:
        server = parse_mail_url(url, "imap")
    except SettingError as exc:
        return ImapCheck(
            False,
            tr.t("The inbox URL cannot be used: {error}.", error=in_language(said(exc), tr)),
        )
    if not server.user:
        return ImapCheck(
            False,
            tr.t(
                "Put your IMAP user name in the URL, like {scheme}://you@{host}.",
                scheme=server.scheme,
                host=server.host,
            ),
        )
    if plain_refused(server, allow_plain):
        return ImapCheck(
            False,
            tr.t(
                "{host} is not on this computer, so imap:// would send your password "
                "unencrypted; use imaps:// or imap+starttls://, or allow unencrypted imap://.",
                host=server.host,
            ),
        )
    if not password:
        return ImapCheck(
            False, tr.t("No IMAP password is set; type it into the Password field.")
        )
    return server


async def _probe(account: ImapAccount, tr: Language) -> ImapCheck:
    async with imap_session(account) as client:
        try:
            mailbox = await client.examine(MAILBOX)
        except ConnectionClosed:
            raise
        except ImapError as exc:
            raise _InboxUnavailable(str(exc)) from exc
        sent = await _sent_folder(client)
        idle = "IDLE" in client.capabilities
    return ImapCheck(True, _success(account.url, mailbox.exists, idle, sent, tr), idle, sent)


async def _sent_folder(client: ImapClient) -> str | None:
    """Sent's name, or None (a failing LIST only means it was not found)."""
    try:
        folders = await find_folders(client)
    except ConnectionClosed:
        raise
    except ImapError as exc:
        log.info("IMAP test: listing the folders failed: %s", exc)
        return None
    return folders.sent.name if folders.sent is not None else None


def _success(
    server: MailServerUrl, exists: int, idle: bool, sent: str | None, tr: Language
) -> str:
    where = f"{server.host}:{server.port}"
    connected = tr.n(
        "Connected to {where} as {user}; INBOX holds {count} message.",
        "Connected to {where} as {user}; INBOX holds {count} messages.",
        exists,
        where=where,
        user=server.user,
    )
    waiting = (
        tr.t("It supports IDLE, so replies are noticed as they arrive.")
        if idle
        else tr.t("It does not support IDLE, so MailBeacon checks for replies every minute.")
    )
    folder = (
        tr.t('Sent folder: "{folder}".', folder=sent)
        if sent
        else tr.t("No Sent folder was found, so the extra copies in Sent cannot be removed.")
    )
    return f"{connected} {waiting} {folder}"


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, OSError | TimeoutError | ImapError | _InboxUnavailable | ValueError)


# The first entry whose type fits the failure words it (TLS failures come before these).
_SENTENCES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (AuthenticationFailed,
     mark("{host} refused the user name {user} or its password ({detail}); check both.")),
    (_InboxUnavailable, mark("Logged in to {host}, but INBOX could not be opened ({detail}).")),
    (TimeoutError,
     mark("{where} did not answer within {timeout} seconds; check the host and port, and "
          "that no firewall blocks the way.")),
    (socket.gaierror,
     mark("The mail server {host} was not found; check its name and that this computer is "
          "online.")),
    (ConnectionRefusedError,
     mark("Nothing answers at {where} (connection refused); check the host and port.")),
    (ConnectionClosed,
     mark("{where} closed the connection ({detail}); is it an IMAP server, and does the port "
          "fit the URL?")),
    (ImapError, mark("The mail server at {where} refused: {detail}.")),
    (OSError, mark("Cannot reach {where} ({detail}); check the host and port.")),
    (ValueError, mark("The test could not be sent to {where}: {detail}.")),  # e.g. CR/LF typed
)


def _explain(exc: BaseException, server: MailServerUrl, timeout: float, tr: Language) -> str:
    """One sentence for the rep: what went wrong and what to check."""
    where = f"{server.host}:{server.port}"
    tls = _tls_error(exc)
    if tls is not None and not isinstance(exc, AuthenticationFailed | _InboxUnavailable):
        return _tls_sentence(tls, where, tr)
    for kind, sentence in _SENTENCES:
        if isinstance(exc, kind):
            return tr.t(
                sentence, host=server.host, user=repr(server.user), where=where,
                timeout=tr.number(timeout), detail=_detail(exc),
            )  # fmt: skip
    return tr.t(
        "The test of {where} failed unexpectedly ({error}); see the log.",
        where=where,
        error=type(exc).__name__,
    )


def _tls_sentence(tls: ssl.SSLError, where: str, tr: Language) -> str:
    if isinstance(tls, ssl.SSLCertVerificationError):
        return tr.t(
            "The secure connection to {where} failed: its certificate is not trusted "
            "({reason}); check the host name.",
            where=where,
            reason=tls.verify_message or tls.reason,
        )
    return tr.t(
        "The secure connection to {where} failed ({reason}); check that the port fits the "
        "URL: imaps:// usually 993, imap+starttls:// usually 143.",
        where=where,
        reason=tls.reason or tls,
    )


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind ``exc`` (the client may wrap it as a lost connection)."""
    seen: BaseException | None = exc
    for _depth in range(5):  # bounded: a cause chain is short
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _detail(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return (text or type(exc).__name__)[:200]
