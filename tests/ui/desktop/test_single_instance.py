"""One tray per profile: a second launch asks the first to show itself."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from mailbeacon.core.profile import Profile
from mailbeacon.tray.desktop.single_instance import SingleInstance, instance_name


def test_second_instance_on_same_profile_signals_the_first(qtbot: QtBot, profile: Profile) -> None:
    first = SingleInstance(instance_name(profile))
    second = SingleInstance(instance_name(profile))
    try:
        assert first.acquire()
        with qtbot.waitSignal(first.showRequested, timeout=3000):
            assert not second.acquire()
    finally:
        first.close()
        second.close()


def test_other_profiles_run_side_by_side(qtbot: QtBot, tmp_path: Path) -> None:
    one = SingleInstance(instance_name(Profile.at(tmp_path / "one")))
    two = SingleInstance(instance_name(Profile.at(tmp_path / "two")))
    try:
        assert one.name != two.name
        assert one.acquire()
        assert two.acquire()
    finally:
        one.close()
        two.close()


def test_name_is_free_again_after_the_first_quits(qtbot: QtBot, profile: Profile) -> None:
    first = SingleInstance(instance_name(profile))
    assert first.acquire()
    first.close()
    again = SingleInstance(instance_name(profile))
    try:
        assert again.acquire()
    finally:
        again.close()


def test_a_stale_socket_file_from_a_crash_does_not_block_start(
    qtbot: QtBot, profile: Profile, tmp_path: Path
) -> None:
    import socket

    from PySide6.QtCore import QDir

    name = instance_name(profile)
    stale = Path(QDir.tempPath()) / name
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))  # bound, never listening: what a crash leaves behind
    leftover.close()
    guard = SingleInstance(name)
    try:
        assert stale.exists()
        assert guard.acquire()
    finally:
        guard.close()
        stale.unlink(missing_ok=True)
