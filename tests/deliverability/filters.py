"""The two spam filters, run for real on this machine and on loopback only.

* **SpamAssassin** (Debian ``spamassassin``, 4.0.1): one ``spamassassin -L`` run
  per message (``--mbox`` batches came back out of order). A test-local site
  config (the ``.pre`` files from ``/etc/spamassassin`` and our own
  ``local.cf``) turns off Bayes and its
  autolearning, DNS blocklists, Razor and Pyzor and tells it DNS is unavailable;
  ``-L`` keeps it local. Rules and scores come from an added header
  (``_TESTSSCORES_``), so no text report is parsed.
* **Rspamd** (Debian ``rspamd``, 3.4): the daemon in the foreground with the
  packaged config, our ``local.d``/``override.d`` on top (``LOCAL_CONFDIR``): one
  normal worker on a loopback port, DNS sent to a closed loopback port (so nothing
  leaves the machine), and every module that needs DNS, Redis or a download turned
  off. Messages are scored with its HTTP ``/checkv2`` API.

What stays on is what looks at the message itself: HTML and MIME structure,
headers, URLs (phishing: link text against target), images, parts that differ.
Those are the rules tracking could trip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

from tests.helpers.net import free_port

_SA_LOCAL_CF = """\
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
use_razor2 0
use_pyzor 0
add_header all Tests _TESTSSCORES(,)_
add_header all Score _SCORE_
"""

# Modules that need DNS, Redis or a download (or sign): off for a local, repeatable score.
_RSPAMD_OFF = (
    "rbl", "fuzzy_check", "spf", "dkim", "dmarc", "asn", "rspamd_update", "whitelist",
    "mx_check", "neural", "ratelimit", "greylist", "replies", "history_redis",
    "url_reputation", "reputation", "clickhouse", "metric_exporter", "dcc", "elastic",
    "emails", "multimap", "mid", "mime_types", "dkim_signing", "arc", "hfilter",
)


@dataclass(frozen=True)
class Score:
    """A filter's verdict on one message: total score and each rule with its score."""

    total: float
    rules: dict[str, float] = field(default_factory=dict)
    # Rspamd only: what each symbol matched (URLs, domains), to see whether a rule
    # fired on a tracking URL.
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)


class SpamAssassin:
    """Scores batches of messages with ``spamassassin -L`` and a test-local config."""

    def __init__(self, workdir: Path) -> None:
        self.site = workdir / "sa-site"
        self.site.mkdir(parents=True, exist_ok=True)
        for pre in Path("/etc/spamassassin").glob("*.pre"):
            shutil.copy(pre, self.site / pre.name)
        (self.site / "local.cf").write_text(_SA_LOCAL_CF)
        self.prefs = workdir / "sa-user_prefs"
        self.prefs.write_text("")
        self.home = workdir / "sa-home"
        self.home.mkdir(exist_ok=True)

    def score_many(self, messages: list[bytes]) -> list[Score]:
        """Scores of ``messages``, in order; two ``spamassassin`` runs at a time (about a
        second each: rules are compiled at package install, ``sa-compile``)."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(self.score, messages))

    def score(self, message: bytes) -> Score:
        """One ``spamassassin -L`` run over one message."""
        done = subprocess.run(
            ["spamassassin", "-L", "-p", str(self.prefs), f"--siteconfigpath={self.site}"],
            input=message, capture_output=True, check=True, timeout=120,
            env={**os.environ, "HOME": str(self.home)},
        )
        return _sa_score(done.stdout)


def _sa_score(message: bytes) -> Score:
    headers = BytesHeaderParser().parsebytes(message)
    tests = "".join(str(headers.get("X-Spam-Tests", "")).split())
    rules: dict[str, float] = {}
    for item in filter(None, tests.split(",")):
        name, _eq, value = item.partition("=")
        rules[name] = float(value)
    return Score(float(str(headers["X-Spam-Score"]).strip()), rules)


class Rspamd:
    """One ``rspamd -f`` daemon for the whole session, on loopback ports."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "rspamd"
        self.port = free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        for sub in ("local.d", "override.d", "run", "db", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        closed = free_port()  # nothing listens there: every DNS query fails at once
        self._write("local.d/options.inc",
                    f'dns {{ nameserver = ["127.0.0.1:{closed}"]; timeout = 0.1s; '
                    "retransmits = 0; }\nlocal_addrs = [];\n")
        self._write("local.d/logging.inc",
                    f'type = "file";\nfilename = "{self.root}/log/rspamd.log";\n'
                    'level = "notice";\n')
        self._write("override.d/worker-normal.inc",
                    f'bind_socket = "127.0.0.1:{self.port}";\ncount = 1;\n')
        self._write("override.d/worker-controller.inc",
                    f'bind_socket = "127.0.0.1:{self.controller_port}";\ncount = 1;\n')
        self._write("override.d/worker-proxy.inc", "enabled = false;\n")
        self._write("override.d/worker-fuzzy.inc", "enabled = false;\n")
        for module in _RSPAMD_OFF:
            self._write(f"local.d/{module}.conf", "enabled = false;\n")
        self._write("local.d/phishing.conf",
                    "openphish_enabled = false;\nphishtank_enabled = false;\n")

    def _write(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def start(self, timeout: float = 90.0) -> None:
        """Start the daemon and wait until its worker answers ``/ping``."""
        command = [
            "rspamd", "-f", "-c", "/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={self.root}", f"--var=RUNDIR={self.root}/run",
            f"--var=DBDIR={self.root}/db", f"--var=LOGDIR={self.root}/log",
        ]
        if os.geteuid() == 0:
            command.append("--insecure")  # it refuses root otherwise; files are ours anyway
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"rspamd exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as r:
                    if r.read().strip() == b"pong":
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rspamd did not start: {self.log()[-2000:]}") from None
            # A bounded retry while the daemon loads its rules; there is nothing to wait on.
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the daemon (SIGTERM) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """The daemon's log so far."""
        path = self.root / "log" / "rspamd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def score(self, message: bytes, mail_from: str, rcpt: str) -> Score:
        """Score one message as if it came from the rep's provider's outgoing server."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/checkv2",
            data=message,
            headers={
                "From": mail_from, "Rcpt": rcpt, "IP": "192.0.2.25",
                "Hostname": "smtp.acme-sales.com", "Helo": "smtp.acme-sales.com",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            result = json.load(response)
        symbols = result.get("symbols", {})
        return Score(
            float(result["score"]),
            {name: float(s.get("score", 0.0)) for name, s in symbols.items()},
            {name: tuple(s.get("options", ())) for name, s in symbols.items()},
        )
