"""Fixtures of the tray tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from mailbeacon.tray.assets import IconSet, PanelTheme
from tests.helpers.tray import FakeNotificationServer, private_session_bus

# The offscreen platform plugin has no window manager and no system tray: it cannot
# hand on a window's size limits (set by every top-level layout), raise a window or
# grab the keyboard (a completion popup), and QSystemTrayIcon finds no tray signal to
# connect to; Qt says so. Limits of the test platform, not bugs of ours (under Xvfb,
# tests/ui/test_tray_xvfb.py, they are silent). Every other Qt warning still fails
# the test (qt_log_level_fail).
OFFSCREEN_LIMITS = (
    r"^This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)"
    r"|^QObject::connect: No such signal QPlatformNativeInterface::systemTrayWindowChanged"
)
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let the tray tests' windows be shown offscreen (see OFFSCREEN_LIMITS)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS))


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
