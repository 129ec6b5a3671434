"""The outbox refuses a message up front when its disk cannot hold it."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from mailbeacon.agent.runtime import UnconfiguredUpstream
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import OutboxItem
from mailbeacon.agent.sending.outbox_spool import SPACE_MARGIN


async def test_a_message_larger_than_the_free_space_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "spool", UnconfiguredUpstream())
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OSError) as refused:
        await outbox.ensure_space(free)
    assert refused.value.errno == errno.ENOSPC and "free disk space" in str(refused.value)
    await outbox.ensure_space(1024)  # a small one fits
    assert SPACE_MARGIN > 0


async def test_a_batch_that_cannot_be_queued_whole_leaves_nothing_to_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = Outbox(tmp_path / "spool", UnconfiguredUpstream())
    real_replace = os.replace
    calls: list[str] = []

    def second_rename_fails(src: str | Path, dst: str | Path) -> None:
        calls.append(str(dst))
        if len(calls) == 2:
            raise OSError(errno.EIO, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    items = [OutboxItem("rep@x.example", (f"r{n}@y.example",), b"Subject: s\r\n\r\nx")
             for n in range(3)]
    with pytest.raises(OSError, match="I/O error"):
        await outbox.enqueue_many(items)
    monkeypatch.setattr(os, "replace", real_replace)
    assert list((tmp_path / "spool" / "queue").iterdir()) == []
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []
