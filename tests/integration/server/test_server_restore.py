"""A restored backup loses no event for the agents (docs/promises.md, "No event lost or
doubled"): the restored database is a new generation whose ids are above every id
handed out before, so agents resuming after their last id get what comes next.

Real ``mailbeacon server serve`` and ``server backup`` processes, real agents."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.tracking.stream import StreamState
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.events import StreamHello
from tests.helpers.net import free_port
from tests.helpers.server import (
    WAIT,
    add_user_process,
    new_mail,
    recipient,
    served_at,
    serving_process,
)
from tests.integration.server.stream_agent import StreamAgent

CONFIG = PolicyConfig(settle_seconds=0)


async def _opens(rep: Enrollment, count: int) -> None:
    async with recipient() as client:
        for _ in range(count):
            assert (await client.get(new_mail(rep).pixel())).status_code == 200


async def _backup(profile: Path, db: Path, dest: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(profile),
        "server", "backup", "--db", str(db), str(dest),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(3 * WAIT):
        assert await process.wait() == 0


def _restore(backup: Path, db: Path) -> None:
    """What an operator does: the server stopped, the backup put in the database's place."""
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db)


async def test_after_a_restore_new_events_reach_connected_and_returning_agents_once(
    tmp_path: Path,
) -> None:
    profile, db, copy = tmp_path / "p", tmp_path / "server.db", tmp_path / "backup.db"
    enrolled = await add_user_process(profile, db)
    listen = f"127.0.0.1:{free_port()}"
    with (RecordsStore(tmp_path / "a.db", stream_source="s") as records_a,
          RecordsStore(tmp_path / "b.db", stream_source="s") as records_b):
        async with serving_process(profile, db, "--listen", listen) as (process, url):
            rep = served_at(enrolled, url)
            stays = StreamAgent(records_a, rep, CONFIG)  # connected throughout
            returns = StreamAgent(records_b, rep, CONFIG)  # away during the restore
            async with stays.running():
                async with returns.running():
                    await _opens(rep, 3)
                    await stays.until(lambda: stays.stored() == 3)
                    await _backup(profile, db, copy)
                    await _opens(rep, 3)  # not in the backup; both agents have them
                    await stays.until(lambda: stays.stored() == 6)
                    await returns.until(lambda: returns.stored() == 6)
                process.terminate()
                await process.wait()
                _restore(copy, db)
                connected = stays.states.count(StreamState.CONNECTED)
                async with serving_process(profile, db, "--listen", listen):
                    await stays.until(
                        lambda: stays.states.count(StreamState.CONNECTED) > connected
                    )
                    async with returns.running():
                        await _opens(rep, 2)
                        await stays.until(lambda: stays.stored() == 8)
                        await returns.until(lambda: returns.stored() == 8)
        stored = {
            agent: [e.event.server_id for e in agent.records.activity(limit=None)]
            for agent in (stays, returns)
        }
    for agent, ids in stored.items():
        hellos = [m for m in agent.messages if isinstance(m, StreamHello)]
        assert {h.db for h in hellos} == {hellos[0].db}  # the same database …
        assert hellos[0].generation == 1
        assert hellos[-1].generation == 2  # … restored: a new generation
        assert len(ids) == len(set(ids)) == 8  # none lost, none twice
        assert min(i for i in ids if i > hellos[-1].floor) > max(
            i for i in ids if i <= hellos[-1].floor
        )
