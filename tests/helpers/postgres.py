"""A real PostgreSQL for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

One cluster per test session (it starts in about a second), listening on a free
loopback port with ``trust`` authentication for the user ``mb``; each test gets a
database of its own (:meth:`Cluster.new_database`). As root (CI), the cluster runs as
the ``postgres`` user, since ``initdb`` refuses root. Debian's ``postgresql`` package
brings the binaries under ``/usr/lib/postgresql/VERSION/bin`` (not on PATH);
``packaging/bootstrap.sh test`` installs it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import programs
from tests.helpers.net import free_port

USER = "mb"
START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections
_counter = itertools.count(1)


def bin_dir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``; fails in CI, skips elsewhere, when absent."""
    found = shutil.which("pg_ctl")
    if found:
        # Resolved: a link on PATH may stand alone, without createdb beside it.
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    message = programs.missing_message(["initdb"])
    if programs.in_ci():
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Cluster:
    """A PostgreSQL cluster of the tests' own: start, stop (for outages), databases."""

    bin: Path
    data: Path
    port: int
    host: str = "127.0.0.1"
    _as_postgres: bool = field(default=False, repr=False)

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({result.returncode}): {result.stdout}{result.stderr}"
            )

    def init(self) -> None:
        """``initdb``: a new cluster in ``data`` (trust authentication, user ``mb``)."""
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync"
        )

    def start(self) -> None:
        """Start the server (returns once it accepts connections)."""
        options = (
            f"-k {self.data} -h {self.host} -p {self.port} -c fsync=on "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnects every client, as an outage does)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """The connection URL of one database."""
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}{os.getpid()}_{next(_counter)}"
        self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", USER, name)
        return self.url(name)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A new cluster on a free loopback port, removed afterwards."""
    binaries = bin_dir()
    as_postgres = os.geteuid() == 0
    work = Path(tempfile.mkdtemp(prefix="mailbeacon-pg-"))
    try:
        data = work / "data"
        if as_postgres:
            # initdb refuses root: the folder belongs to postgres, who runs the server.
            shutil.chown(work, "postgres", "postgres")
        cluster = Cluster(binaries, data, free_port(), _as_postgres=as_postgres)
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the whole session (a database per test on top)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """A fresh database for one test, on the session's cluster."""
    return postgres_cluster.new_database()
