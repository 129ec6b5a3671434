"""Fixtures of the tray tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from mailbeacon.tray.assets import IconSet, PanelTheme
from tests.fakes_tray import FakeNotificationServer, private_session_bus


@pytest.fixture
def icons(qapp: QApplication) -> IconSet:
    """The light-panel icon set from the source tree."""
    return IconSet(PanelTheme.LIGHT)


@pytest.fixture
def session_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private session bus that this test's code connects to."""
    with private_session_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address


@pytest.fixture
def notification_server(session_bus: str) -> Iterator[FakeNotificationServer]:
    """A notification service (with body markup) on the private bus."""
    server = FakeNotificationServer()
    yield server
    server.close()
