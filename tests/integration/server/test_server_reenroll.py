"""The embedded server keeps the rep's user when its address changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer


async def test_a_new_public_url_keeps_the_same_user_and_keys(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    async with TrackingServer(ServerConfig(db_path=db)) as first:
        old = await first.add_user("rep")
    config = ServerConfig(db_path=db, public_url="https://t.example.com")
    async with TrackingServer(config) as second:
        kept = await second.reenroll(old)
        assert kept == replace(old, server_url="https://t.example.com")
        assert await second.reenroll(replace(old, api_token="not-the-token")) is None
        assert await second.reenroll(replace(old, signing_key=b"x" * 32)) is None


async def test_another_servers_enrollment_is_not_taken_over(tmp_path: Path) -> None:
    async with TrackingServer(ServerConfig(db_path=tmp_path / "a.db")) as a:
        theirs = await a.add_user("rep")
    async with TrackingServer(ServerConfig(db_path=tmp_path / "b.db")) as b:
        await b.add_user("someone")  # user id 1 exists here too, with another token
        assert await b.reenroll(theirs) is None
