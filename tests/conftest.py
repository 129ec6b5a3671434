"""Shared fixtures and the suite's strictness. Qt runs offscreen, set before any QApplication.

* ``needs_program(name)``: skipped where the program is missing, a failure in CI
  (``tests/helpers/programs.py``).
* ``slow``: a long soak, run only with ``MAILBEACON_SOAK=1``; in CI every other test
  must run: a skipped test outside ``slow`` fails the run.
* A WARNING or ERROR logged under ``mailbeacon.*`` during a test fails it, unless the
  test says it expects one: ``@pytest.mark.expect_log("words in the message", ...)``
  (no arguments: any message).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
import pytest
from keyring.backend import KeyringBackend

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.profile import Profile
from tests.helpers import programs
from tests.helpers.fakes import MemoryKeyring

SOAK_ENV = "MAILBEACON_SOAK"


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Every test gets an empty in-memory keyring, never the rep's real one."""
    previous: KeyringBackend = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    """A fresh profile folder for one test."""
    return Profile.at(tmp_path / "profile")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordsStore]:
    """An empty records store on a real SQLite file (server tests override it with theirs)."""
    with RecordsStore(tmp_path / "records.db") as records:
        yield records


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_unexpected_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test on a WARNING or ERROR from ``mailbeacon.*`` it did not declare."""
    handler = _Collect()
    logger = logging.getLogger("mailbeacon")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    expected = [m.args for m in request.node.iter_markers("expect_log")]
    allow_any = any(not args for args in expected)
    words = [str(word) for args in expected for word in args]
    unexpected = [
        record
        for record in handler.records
        if not allow_any and not any(word in record.getMessage() for word in words)
    ]
    if unexpected:
        lines = "\n".join(
            f"  {r.levelname} {r.name}: {r.getMessage()[:300]}" for r in unexpected[:10]
        )
        pytest.fail(
            f"unexpected log records (declare them with @pytest.mark.expect_log):\n{lines}",
            pytrace=False,
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Programs a test needs, and soaks only when asked for."""
    names = [str(marker.args[0]) for marker in item.iter_markers("needs_program")]
    if names:
        programs.require(*names)
    if item.get_closest_marker("slow") is not None and os.environ.get(SOAK_ENV) != "1":
        pytest.skip(f"soak test: set {SOAK_ENV}=1 to run it")


_skipped_outside_soak: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every skipped test that is not a soak (CI fails on any, below)."""
    if report.skipped and "slow" not in report.keywords:
        _skipped_outside_soak.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every test outside ``slow`` must run: a skip hides a missing program."""
    if programs.in_ci() and _skipped_outside_soak and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which tests were skipped outside ``slow`` when that fails CI."""
    if programs.in_ci() and _skipped_outside_soak:
        terminalreporter.section("skipped outside the soak marker (fails CI)")
        for nodeid in _skipped_outside_soak:
            terminalreporter.write_line(nodeid)
