"""A throwaway Dovecot IMAP server on a free loopback port (TESTING.md recipe).

It runs from a temporary folder as the ``mail`` user, keeps mail as maildirs,
and knows the users given (``rep@example.net`` / ``secret`` by default). Deliver
test mail with IMAP ``APPEND`` through :meth:`Dovecot.client` (stdlib imaplib,
blocking: call it through ``asyncio.to_thread`` from async tests).

Needs root (it switches to the ``mail`` user) and ``/usr/sbin/dovecot``.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.net import free_port

DOVECOT = "/usr/sbin/dovecot"
USER = "rep@example.net"
PASSWORD = "secret"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/run
log_path = {d}/dovecot.log
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
mail_fsync = never
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
"""


def available() -> bool:
    """True if a throwaway Dovecot can run here (the binary exists and we are root)."""
    return Path(DOVECOT).exists() and hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class Dovecot:
    """A running Dovecot; ``port`` is plain IMAP (also STARTTLS with TLS files given)."""

    root: Path
    port: int
    imaps_port: int = 0
    users: Mapping[str, str] = field(default_factory=lambda: {USER: PASSWORD})
    cert: Path | None = None
    key: Path | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Write the config and start Dovecot; returns once it accepts connections."""
        os.chmod(self.root, 0o755)  # the auth process (user dovecot) must reach it
        (self.root / "run").mkdir(exist_ok=True)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        shutil.chown(mail, "mail", "mail")
        lines = "".join(f"{name}:{{PLAIN}}{pw}\n" for name, pw in self.users.items())
        (self.root / "users").write_text(lines)
        ssl_files = ""
        if self.cert and self.key:
            ssl_files = f"ssl_cert = <{self.cert}\nssl_key = <{self.key}\n"
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(
                d=self.root,
                port=self.port,
                imaps_port=self.imaps_port,
                ssl="yes" if ssl_files else "no",
                ssl_files=ssl_files,
            )
        )
        # It daemonizes; its output goes to log_path, so nothing is piped.
        subprocess.run(
            [DOVECOT, "-c", str(self.root / "dovecot.conf")],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening(timeout)

    def _wait_listening(self, timeout: float) -> None:
        # Listening is not enough: stop() needs master.pid, which may come a moment later.
        deadline = time.monotonic() + timeout
        pid_file = self.root / "run" / "master.pid"
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    if pid_file.exists():
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not start: {self.log()}") from None
            # A bounded retry while the daemon binds; there is nothing to wait on.
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Dovecot and wait until its master process is gone."""
        pid_file = self.root / "run" / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)  # bounded: waiting for another process to exit
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        """Dovecot's log so far."""
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""

    @contextlib.contextmanager
    def client(self, user: str = USER, password: str = PASSWORD) -> Iterator[imaplib.IMAP4]:
        """A logged-in stdlib IMAP client (blocking)."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(user, password)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(self, *messages: bytes, mailbox: str = "INBOX", user: str = USER) -> None:
        """APPEND each message to ``mailbox`` (blocking)."""
        with self.client(user, self.users[user]) as imap:
            for raw in messages:
                typ, data = imap.append(mailbox, None, None, raw)
                if typ != "OK":
                    raise RuntimeError(f"APPEND failed: {data!r}")

    def command(self, name: str, *args: str, user: str = USER) -> None:
        """Run one simple IMAP command (``CREATE``, ``DELETE``...) as ``user``."""
        with self.client(user, self.users[user]) as imap:
            typ, data = imap._simple_command(name, *args)
            if typ != "OK":
                raise RuntimeError(f"{name} failed: {data!r}")


@contextlib.contextmanager
def running_dovecot(
    users: Mapping[str, str] | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[Dovecot]:
    """Start a Dovecot in a fresh folder for the duration of the block, then remove it.

    The folder is made directly in the system temp folder, not in pytest's
    ``tmp_path``: Dovecot's processes run as other users and need every parent
    searchable, and pytest resets its own base folder to 0700 whenever a
    session starts (another test run on the same machine included).
    """
    root = Path(tempfile.mkdtemp(prefix="mailbeacon-dovecot-"))
    server = Dovecot(
        root,
        free_port(),
        imaps_port=free_port() if tls else 0,
        users=dict(users or {USER: PASSWORD}),
        cert=tls[0] if tls else None,
        key=tls[1] if tls else None,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
