"""The stream's catch-up: what happened while the agent was away is one summary
(``hello`` … backlog … ``caught_up``), live events after it notify one by one."""

from __future__ import annotations

from pathlib import Path

from mailbeacon.agent.notifications.model import NotificationType
from mailbeacon.agent.notifications.policy import PolicyConfig
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.events import CaughtUp, ServerEvent, StreamHello
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import new_mail, recipient
from tests.integration.server.stream_agent import StreamAgent, record_sent

# A short settle window keeps the test quick; the flood rule stays as shipped.
CONFIG = PolicyConfig(settle_seconds=0.2)


async def test_opens_while_away_are_one_summary_and_live_ones_notify_each(
    server: TrackingServer, tmp_path: Path
) -> None:
    rep = await server.add_user("alice")
    mails = [new_mail(rep) for _ in range(10)]
    with RecordsStore(tmp_path / "records.db", stream_source=server.url) as records:
        for number, mail in enumerate(mails):
            record_sent(records, mail, number)
        agent = StreamAgent(records, rep, CONFIG)
        async with agent.running():  # connected once, nothing to catch up on
            await agent.until(lambda: any(isinstance(m, CaughtUp) for m in agent.messages))
        assert agent.shown == []  # nothing to summarise: nothing shown

        async with recipient() as client:  # eight opens while the agent is away
            for mail in mails[:8]:
                assert (await client.get(mail.pixel())).status_code == 200

        async with agent.running():
            await agent.until(lambda: len(agent.shown) >= 1)
            async with recipient() as client:  # then two live opens, a while apart
                assert (await client.get(mails[8].pixel())).status_code == 200
                await agent.until(lambda: len(agent.shown) >= 2)
                assert (await client.get(mails[9].pixel())).status_code == 200
                await agent.until(lambda: len(agent.shown) >= 3)
        assert agent.stored() == 10

    summary, first, second = agent.shown
    assert summary.type == NotificationType.SUMMARY
    assert summary.title.endswith("and 6 others opened 8 emails")  # names people
    assert summary.body.startswith("8 opens while you were away.")
    assert len(summary.events) == 8
    assert (first.type, first.subject) == ("open", "Proposal 8")
    assert (second.type, second.subject) == ("open", "Proposal 9")
    kinds = [type(m) for m in agent.messages]
    # Each session: hello, its backlog, caught_up, then live events.
    assert kinds == [StreamHello, CaughtUp, StreamHello, *[ServerEvent] * 8, CaughtUp,
                     ServerEvent, ServerEvent]
