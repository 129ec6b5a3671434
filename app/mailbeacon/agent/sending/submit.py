"""Hand a composed message to the agent's relay over SMTP, as any mail client would.

The compose window goes through the relay, not around it, so its mail takes exactly
the relay's path (control channel, rewrite, record, durable outbox) and works
whether the agent runs in this process or another.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass

from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.core.language import Phrase, mark

TRACK_HEADER = b"X-MailBeacon-Track"
LOG_HEADER = b"X-MailBeacon-Log"
SEND_AT_HEADER = b"X-MailBeacon-Send-At"
REMIND_HEADER = b"X-MailBeacon-Remind"


class SubmitError(RuntimeError):
    """The relay did not take the message; the message says why, for the rep."""


def with_controls(message: IncomingMessage) -> bytes:
    """The message bytes with the per-message control headers in front.

    The headers: docs/interfaces.md#per-message-control-at-the-relay.
    """
    lines = []
    clicks_only = message.track_override is True and message.opens_override is False
    for header, value in ((TRACK_HEADER, message.track_override),
                          (LOG_HEADER, message.log_override)):
        if value is not None:
            word = b"clicks" if header == TRACK_HEADER and clicks_only else (
                b"yes" if value else b"no")  # fmt: skip
            lines.append(header + b": " + word + b"\r\n")
    if message.send_at is not None:
        stamp = message.send_at.isoformat(timespec="seconds").encode("ascii")
        lines.append(SEND_AT_HEADER + b": " + stamp + b"\r\n")
    if message.remind is not None:
        word = str(message.remind).encode("ascii") if message.remind.amount else b"no"
        lines.append(REMIND_HEADER + b": " + word + b"\r\n")
    return b"".join(lines) + message.data


@dataclass(frozen=True, slots=True)
class RelaySubmitter:
    """Submits to the relay at ``host:port`` with the relay login (blocking: call it off
    the UI thread)."""

    host: str
    port: int
    user: str
    password: Callable[[], str | None]
    timeout: float = 60.0

    def __call__(self, message: IncomingMessage) -> str:
        """Send; returns the relay's answer (with its queue id). Raises SubmitError."""
        password = self.password()
        if not password:
            raise SubmitError(
                Phrase(mark("the relay password is not available (keyring locked?)"))
            )
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as client:
                client.login(self.user, password)
                code, reply = client.mail(message.mail_from)
                _check(
                    code,
                    reply,
                    Phrase(
                        mark("the relay refused the sender {address}"), address=message.mail_from
                    ),
                )
                for rcpt in message.recipients:
                    code, reply = client.rcpt(rcpt)
                    _check(code, reply, Phrase(mark("the relay refused {address}"), address=rcpt))
                code, reply = client.data(with_controls(message))
        except smtplib.SMTPAuthenticationError as exc:
            raise SubmitError(Phrase(mark("the relay refused the relay password"))) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SubmitError(
                Phrase(
                    mark("MailBeacon's relay at {where} did not take the message: {error}"),
                    where=f"{self.host}:{self.port}",
                    error=str(exc),
                )
            ) from exc
        return reply.decode(errors="replace")


def _check(code: int, reply: bytes, what: str) -> None:
    if code >= 400:
        raise SubmitError(
            Phrase(mark("{what}: {reply}"), what=what, reply=reply.decode(errors="replace"))
        )
