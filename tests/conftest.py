"""Shared fixtures. Qt must be told to run offscreen before any QApplication exists."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
import pytest
from keyring.backend import KeyringBackend

from mailbeacon.core.profile import Profile
from tests.helpers.fakes import MemoryKeyring


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``needs_program(name)``: skip where the program is missing, except in CI, where
    .ci/run installs it and a missing one must fail loudly."""
    if os.environ.get("CI") == "true":
        return
    for item in items:
        for marker in item.iter_markers("needs_program"):
            name = str(marker.args[0])
            if shutil.which(name) is None and shutil.which(name, path="/usr/sbin") is None:
                item.add_marker(pytest.mark.skip(reason=f"{name} is not installed"))
