"""The tracking check says in words when no tracking server answers (the settings
dialog's tests drive it against a real tracking server)."""

from __future__ import annotations

import socket
from pathlib import Path

from mailbeacon.agent.tracking.check import check_tracking
from mailbeacon.core.enrollment import Enrollment
from tests.helpers.server import running_server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_server_that_does_not_answer_is_reported() -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    result = await check_tracking(Enrollment(base, 7, "token", b"k" * 32), seconds=5)
    assert result.ok is False
    assert result.message.startswith(f"The tracking server at {base} did not answer")


async def test_a_private_address_is_never_called_working(tmp_path: Path) -> None:
    async with running_server(tmp_path / "server.db") as server:
        enrollment = await server.add_user("rep")
        result = await check_tracking(enrollment, seconds=5)
    assert result.ok is False
    assert "only seen when the email is read on this computer" in result.message
