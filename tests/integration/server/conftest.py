"""The server's contract runs on both back ends: one fixture, ``sqlite`` and ``postgresql``.

``database`` is a fresh SQLite file or a fresh database on the session's PostgreSQL
cluster (tests/helpers/postgres.py); ``server`` (which overrides the integration
suite's SQLite-only one) is the real tracking server on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailbeacon.server.config import Database, PostgresUrl
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.postgres import postgres_cluster, postgres_url
from tests.helpers.server import running_server

__all__ = ["postgres_cluster", "postgres_url"]

BACK_ENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACK_ENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh, empty database of each back end in turn."""
    if request.param == "sqlite":
        return tmp_path / "server.db"
    url: str = request.getfixturevalue("postgres_url")
    return PostgresUrl(url)


@pytest.fixture
async def server(database: Database) -> AsyncIterator[TrackingServer]:
    """The real tracking server on a free loopback port, on ``database``."""
    async with running_server(database) as running:
        yield running
