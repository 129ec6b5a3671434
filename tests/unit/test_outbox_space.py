"""The outbox refuses a message up front when its disk cannot hold it."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from mailbeacon.agent.outbox import SPACE_MARGIN, Outbox
from mailbeacon.agent.runtime import UnconfiguredUpstream


async def test_a_message_larger_than_the_free_space_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "spool", UnconfiguredUpstream())
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OSError) as refused:
        await outbox.ensure_space(free)
    assert refused.value.errno == errno.ENOSPC and "free disk space" in str(refused.value)
    await outbox.ensure_space(1024)  # a small one fits
    assert SPACE_MARGIN > 0
