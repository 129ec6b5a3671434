"""What the integration tests share: a running tracking server with its reps, TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers import certs
from tests.helpers.server import running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TrackingServer]:
    """The real tracking server on a free loopback port, over a fresh SQLite file."""
    async with running_server(tmp_path / "server.db") as running:
        yield running


@pytest.fixture
async def alice(server: TrackingServer) -> Enrollment:
    """A rep enrolled on ``server``."""
    return await server.add_user("alice")


@pytest.fixture
async def bob(server: TrackingServer) -> Enrollment:
    """Another rep on the same server (isolation tests)."""
    return await server.add_user("bob")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: ``(cert.pem, key.pem)``."""
    return certs.self_signed(tmp_path_factory.mktemp("tls"))
