"""A throwaway mail host that checks OAuth tokens for real: Dovecot IMAP + SUBMISSION.

Dovecot serves IMAP and SUBMISSION (RFC 6409) on free loopback ports and relays
submitted mail to an aiosmtpd sink (:class:`tests.helpers.smtp.SmtpSink`). It
knows two kinds of users:

* password users, in a passwd-file (mechanisms PLAIN and LOGIN only);
* token users: anyone the OpenID provider (:mod:`tests.helpers.oidc`) issued an
  access token to, checked at its introspection endpoint on every login
  (``passdb oauth2``, mechanisms XOAUTH2 and OAUTHBEARER only).

    with running_provider() as provider, running_mailhost(provider) as host:
        host.imap_port, host.submission_port, host.sink.until(1), host.log()

Each passdb names its mechanisms: without that Dovecot would also take a token
as a PLAIN password, or a password as a token. Runs as root (Dovecot switches
to the ``mail`` user); the pieces shared with :mod:`tests.helpers.dovecot` are
imported from there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.dovecot import DOVECOT, Dovecot
from tests.helpers.net import free_port
from tests.helpers.oidc import Provider
from tests.helpers.smtp import SmtpSink

PASSWORD_USER = "pat@example.test"
PASSWORD = "pat-pw"

# Why each line is there (each cost time once):
# * the auth penalty and failure delay are off: tests fail logins on purpose and
#   the next login must not wait;
# * auth_cache_size = 0: a cached answer would keep a revoked token working;
# * base_dir is {d}/run so Dovecot.stop() finds master.pid where it looks.
_CONFIG = """\
instance_name = mb-{imap}
protocols = imap submission
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
hostname = mail.example.test
postmaster_address = postmaster@example.test
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login {tokens}
auth_cache_size = 0
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%u/Maildir
mail_fsync = never
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
default_login_user = dovenull
default_internal_user = dovecot
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {d}/users
}}
passdb {{
  driver = oauth2
  mechanisms = {tokens}
  args = {d}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service submission-login {{
  chroot =
  inet_listener submission {{
    address = 127.0.0.1
    port = {submission}
  }}
}}
submission_relay_host = 127.0.0.1
submission_relay_port = {sink}
submission_relay_ssl = no
submission_relay_trusted = no
"""

_OAUTH2 = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = email
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


@dataclass
class MailHost(Dovecot):
    """A running Dovecot with IMAP on ``port`` (also ``imap_port``) and SUBMISSION."""

    submission_port: int = 0
    introspection_url: str = ""
    token_mechanisms: tuple[str, ...] = ("xoauth2", "oauthbearer")
    sink: SmtpSink = field(default_factory=SmtpSink)

    @property
    def imap_port(self) -> int:
        """The plain IMAP port."""
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Dovecot, and end the sessions its master leaves running.

        A SUBMISSION session outlives its master (seen with Dovecot 2.3): a client
        logged in before keeps sending. A mail server that restarts ends them.
        """
        super().stop(timeout)
        prefix = f"dovecot-mb-{self.port}/"
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                continue
            if command.startswith(prefix):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)

    def start(self, timeout: float = 10.0) -> None:
        """Write the config and start Dovecot; returns once IMAP accepts connections."""
        self.root.chmod(0o755)  # the auth process (user dovecot) must reach it
        for folder in ("run", "state", "mail"):
            (self.root / folder).mkdir(exist_ok=True)
        shutil.chown(self.root / "mail", "mail", "mail")
        lines = "".join(f"{name}:{{PLAIN}}{pw}\n" for name, pw in self.users.items())
        (self.root / "users").write_text(lines)
        (self.root / "oauth2.conf.ext").write_text(_OAUTH2.format(url=self.introspection_url))
        config = _CONFIG.format(
            d=self.root,
            imap=self.port,
            submission=self.submission_port,
            sink=self.sink.port,
            tokens=" ".join(self.token_mechanisms),
        )
        (self.root / "dovecot.conf").write_text(config)
        # It daemonizes; its output goes to log_path, so nothing is piped.
        subprocess.run(
            [DOVECOT, "-c", str(self.root / "dovecot.conf")],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening(timeout)
        self._wait_pid_file(timeout)

    def _wait_pid_file(self, timeout: float) -> None:
        """Dovecot may listen before it writes master.pid; stop() needs that file, or
        the daemon outlives the test."""
        deadline = time.monotonic() + timeout
        while not (self.root / "run" / "master.pid").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot wrote no master.pid: {self.log()}")
            time.sleep(0.01)  # bounded: waiting for another process to write a file


def _relay_sink() -> SmtpSink:
    """A sink that does not offer AUTH.

    Dovecot passes ``AUTH=<user>`` in MAIL FROM to a relay that offers AUTH, and
    aiosmtpd refuses that parameter (555). SmtpSink offers AUTH only over TLS
    when ``starttls`` is set; with no certificate given there is no TLS, so no
    AUTH (and STARTTLS is not required either).
    """
    return SmtpSink(starttls=True)


@contextlib.contextmanager
def running_mailhost(
    provider: Provider,
    users: Mapping[str, str] | None = None,
    token_mechanisms: tuple[str, ...] = ("xoauth2", "oauthbearer"),
) -> Iterator[MailHost]:
    """Start a sink and a Dovecot checking tokens at ``provider``; stop both at the end.

    ``users`` are the password users (default ``pat@example.test`` / ``pat-pw``);
    ``token_mechanisms`` the token logins offered (lower case, as Dovecot spells them).
    The folder is in the system temp folder for the reason
    :func:`tests.helpers.dovecot.running_dovecot` gives.
    """
    root = Path(tempfile.mkdtemp(prefix="mailbeacon-mailhost-"))
    with _relay_sink() as sink:
        host = MailHost(
            root,
            free_port(),
            users=dict(users or {PASSWORD_USER: PASSWORD}),
            submission_port=free_port(),
            introspection_url=provider.introspection_url,
            token_mechanisms=token_mechanisms,
            sink=sink,
        )
        try:
            host.start()
            yield host
        finally:
            host.stop()
            shutil.rmtree(root, ignore_errors=True)
