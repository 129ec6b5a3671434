"""Durable files: all or nothing, no temp file left behind, folders really synced."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.core import durable


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_the_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "settings.json"
    durable.atomic_write(path, b"old")
    durable.atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]
    assert _mode(path) == 0o600  # private unless asked otherwise


def test_atomic_write_takes_chunks_in_order_and_a_mode(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    data = b"0123456789"
    durable.atomic_write(path, [data[:3], memoryview(data)[3:7], data[7:]], 0o644)
    assert path.read_bytes() == data
    assert _mode(path) == 0o644


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    durable.atomic_write(path, b"old")

    def chunks() -> Iterator[bytes]:
        yield b"half"
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        durable.atomic_write(path, chunks())
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_temp_file_can_live_in_another_folder(tmp_path: Path) -> None:
    spool, target = tmp_path / "tmp", tmp_path / "queue"
    target.mkdir()
    durable.atomic_write(target / "1.json", b"{}", tmp_dir=spool)
    assert (target / "1.json").read_bytes() == b"{}"
    assert list(spool.iterdir()) == []


def test_replacing_renames_only_a_block_that_finished(tmp_path: Path) -> None:
    dest = tmp_path / "backup.db"
    with pytest.raises(RuntimeError), durable.replacing(dest, suffix=".partial") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".partial")
        tmp.write_bytes(b"half a copy")
        raise RuntimeError("copy failed")
    assert list(tmp_path.iterdir()) == []
    with durable.replacing(dest) as tmp:
        tmp.write_bytes(b"the copy")
    assert dest.read_bytes() == b"the copy"
    assert list(tmp_path.iterdir()) == [dest]


def test_write_new_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "1.eml"
    durable.write_new(path, (b"header\n", b"body"))
    assert path.read_bytes() == b"header\nbody"
    assert _mode(path) == 0o600
    with pytest.raises(FileExistsError):
        durable.write_new(path, b"again")
    assert path.read_bytes() == b"header\nbody"


def test_move_syncs_both_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = tmp_path / "queue" / "1.eml", tmp_path / "sent" / "1.eml"
    source.parent.mkdir()
    target.parent.mkdir()
    source.write_bytes(b"x")
    synced: list[Path] = []
    monkeypatch.setattr(durable, "fsync_dir", lambda folder, strict=False: synced.append(folder))
    durable.move(source, target, strict=True)
    assert target.read_bytes() == b"x" and not source.exists()
    assert synced == [target.parent, source.parent]  # the new name first


def test_a_folder_fsync_failure_is_ignored_unless_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_fd: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "fsync", refuse)
    durable.fsync_dir(tmp_path)
    with pytest.raises(OSError, match="Invalid argument"):
        durable.fsync_dir(tmp_path, strict=True)
    durable.fsync_dir(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        durable.fsync_dir(tmp_path / "missing", strict=True)


def test_fsync_file_syncs_what_another_writer_wrote(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"pages")
    durable.fsync_file(path)
    with pytest.raises(FileNotFoundError):
        durable.fsync_file(tmp_path / "missing")
