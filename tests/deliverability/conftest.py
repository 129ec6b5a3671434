"""Session fixtures: the corpus sent once through the relay, each filter started once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.deliverability.filters import Rspamd, SpamAssassin
from tests.deliverability.pipeline import Sent, send_corpus
from tests.deliverability.report import Row, score_sent
from tests.helpers import programs


@pytest.fixture(scope="session")
def sent(tmp_path_factory: pytest.TempPathFactory) -> list[Sent]:
    """Every corpus email as the upstream got it: untracked, tracked, clicks only."""
    return asyncio.run(send_corpus(tmp_path_factory.mktemp("deliverability")))


@pytest.fixture(scope="session")
def sa_rows(sent: list[Sent], tmp_path_factory: pytest.TempPathFactory) -> list[Row]:
    """SpamAssassin's scores of every email, each way."""
    programs.require("spamassassin")
    return score_sent(sent, SpamAssassin(tmp_path_factory.mktemp("sa")), None)


@pytest.fixture(scope="session")
def rspamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rspamd]:
    """One Rspamd daemon for the session."""
    programs.require("rspamd")
    daemon = Rspamd(tmp_path_factory.mktemp("rspamd"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def rspamd_rows(sent: list[Sent], rspamd: Rspamd) -> list[Row]:
    """Rspamd's scores of every email, each way."""
    return score_sent(sent, None, rspamd)

