"""Fixtures of the tray tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from mailbeacon.tray.assets import IconSet, PanelTheme
from tests.helpers.tray import FakeNotificationServer, private_session_bus


@pytest.fixture(autouse=True)
def collect_on_the_test_thread() -> Iterator[None]:
    """As the app does (tray.gc_guard): no cycle collection on worker threads, where
    freeing a Qt object crashes; collect here, on the test's (UI) thread."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if was_enabled:
        gc.enable()


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
