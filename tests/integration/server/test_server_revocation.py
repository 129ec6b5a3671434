"""Removing a rep or rotating their key takes effect on a RUNNING server at once.

Two real processes, as an operator has them: ``mailbeacon server serve`` and the
command (``server remove-user`` / ``server rotate-key``) on the same database; a
connected stream client (the rep's agent) and a recipient on another loopback
address. docs/promises.md#isolation.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.pixel import GIF
from mailbeacon.server.config import Database
from tests.helpers.server import (
    WAIT,
    add_user_process,
    db_option,
    new_mail,
    next_event,
    query,
    recipient,
    served_at,
    serving_process,
)

TARGET = "https://example.com/pricing"


async def _server_command(profile: Path, db: Database, *args: str) -> tuple[int, str, str]:
    """``mailbeacon server ARGS --db DB`` as a child process: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(profile),
        "server", *args, "--db", db_option(db),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(3 * WAIT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _stream(url: str, api_token: str, after: int = 0) -> connect:
    return connect(
        url.replace("http://", "ws://") + f"/v1/stream?after={after}",
        additional_headers={"Authorization": f"Bearer {api_token}"},
        open_timeout=WAIT,
    )


async def _closed_by_server(stream: ClientConnection) -> int | None:
    """Wait until the server closes the stream; its close code."""
    async with asyncio.timeout(WAIT):
        await stream.wait_closed()
    return stream.close_code


def _events_of(db: Database, message: str) -> int:
    return int(query(db, "SELECT count(*) FROM events WHERE message = ?", (message,))[0][0])


async def test_remove_user_closes_streams_refuses_the_token_and_records_nothing(
    tmp_path: Path, database: Database,
) -> None:
    profile, db = tmp_path / "profile", database
    alice_key = await add_user_process(profile, db, "alice")
    bob_key = await add_user_process(profile, db, "bob")
    async with serving_process(profile, db) as (_, url):
        alice, bob = served_at(alice_key, url), served_at(bob_key, url)
        before, after = new_mail(alice), new_mail(alice)
        async with (
            _stream(url, alice.api_token) as alices_agent,
            _stream(url, bob.api_token) as bobs_agent,
            recipient() as client,
        ):
            await client.get(before.pixel())
            assert (await next_event(alices_agent))["message"] == before.message

            code, out, err = await _server_command(profile, db, "remove-user", "alice")
            assert code == 0, err
            assert "removed user 'alice'" in out

            # The running server noticed without a restart: the open stream is closed...
            assert await _closed_by_server(alices_agent) == 1008
            # ...and the token opens no new one.
            with pytest.raises(InvalidStatus) as refused:
                async with _stream(url, alice.api_token):
                    pass
            assert refused.value.response.status_code == 403

            pixel = await client.get(after.pixel())
            click = await client.get(after.click(TARGET))
            claim = await client.get(f"{url}/claim/{_claim_token(alice)}")
            assert pixel.status_code == 200 and pixel.content == GIF
            assert click.status_code == 404 and "location" not in click.headers
            assert claim.status_code == 404 and "set-cookie" not in claim.headers

            # Hits are recorded in arrival order: once Bob's later one is out, Alice's
            # would have been stored before it.
            sentinel = new_mail(bob)
            await client.get(sentinel.pixel())
            assert (await next_event(bobs_agent))["message"] == sentinel.message
    assert _events_of(db, before.message) == 1
    assert _events_of(db, after.message) == 0


def _claim_token(enrollment: Enrollment) -> str:
    return tokens.mint_claim(enrollment.signing_key, enrollment.user_id, int(time.time()))


async def test_rotate_key_refuses_the_old_key_and_token_and_the_new_one_works(
    tmp_path: Path, database: Database,
) -> None:
    profile, db = tmp_path / "profile", database
    old_key = await add_user_process(profile, db, "alice")
    async with serving_process(profile, db) as (_, url):
        old = served_at(old_key, url)
        before = new_mail(old)
        async with _stream(url, old.api_token) as agent, recipient() as client:
            await client.get(before.pixel())
            last_id = (await next_event(agent))["id"]

            code, out, err = await _server_command(profile, db, "rotate-key", "alice", "--json")
            assert code == 0, err
            assert "old enrollment key" in err
            printed = json.loads(out)
            new_key = Enrollment.decode(printed["enrollment_key"])
            assert new_key.user_id == old.user_id  # the same rep, their history kept
            assert new_key.api_token != old.api_token
            assert new_key.signing_key != old.signing_key

            assert await _closed_by_server(agent) == 1008
            with pytest.raises(InvalidStatus) as refused:
                async with _stream(url, old.api_token):
                    pass
            assert refused.value.response.status_code == 403

            new = served_at(new_key, url)
            stale, fresh = new_mail(old), new_mail(new)
            async with _stream(url, new.api_token, after=last_id) as new_agent:
                old_click = await client.get(before.click(TARGET))
                await client.get(stale.pixel())  # minted with the old key: nothing
                new_click = await client.get(fresh.click(TARGET))
                event = await next_event(new_agent)
    assert old_click.status_code == 404
    assert new_click.status_code == 302 and new_click.headers["location"] == TARGET
    assert event["message"] == fresh.message  # (the open a click implies, rule 6)
    assert _events_of(db, stale.message) == 0


async def test_a_rotated_key_stays_refused_after_a_restart(
    tmp_path: Path, database: Database
) -> None:
    profile, db = tmp_path / "profile", database
    old_key = await add_user_process(profile, db, "alice")
    code, out, err = await _server_command(profile, db, "rotate-key", "alice")
    assert code == 0, err
    new_key = Enrollment.decode(out.strip())
    async with serving_process(profile, db) as (_, url), recipient() as client:
        old, new = served_at(old_key, url), served_at(new_key, url)
        assert (await client.get(new_mail(old).click(TARGET))).status_code == 404
        assert (await client.get(new_mail(new).click(TARGET))).status_code == 302
        with pytest.raises(InvalidStatus):
            async with _stream(url, old.api_token):
                pass
        async with _stream(url, new.api_token):
            pass


async def test_the_commands_name_one_user_or_say_why_not(
    tmp_path: Path, database: Database
) -> None:
    profile, db = tmp_path / "profile", database
    first = await add_user_process(profile, db, "sam")
    second = await add_user_process(profile, db, "sam")

    code, _, err = await _server_command(profile, db, "remove-user", "nobody")
    assert code == 1 and "there is no user named 'nobody'" in err
    code, _, err = await _server_command(profile, db, "rotate-key", "sam")
    assert code == 2
    assert f"2 users are named 'sam' (ids {first.user_id}, {second.user_id})" in err
    assert "--id" in err

    code, _, err = await _server_command(
        profile, db, "remove-user", "sam", "--id", str(second.user_id)
    )
    assert code == 0, err
    code, out, err = await _server_command(profile, db, "rotate-key", "sam")
    assert code == 0, err  # only one is left
    assert Enrollment.decode(out.strip()).user_id == first.user_id

    code, _, err = await _server_command(
        profile, tmp_path / "missing.db", "remove-user", "sam"
    )
    assert code == 1 and "there is no database" in err
