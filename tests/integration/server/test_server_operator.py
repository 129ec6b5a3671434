"""Operator commands on a real database: backup, retention, proxy ranges, truncated IPs."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailbeacon.cli import main
from mailbeacon.core.events import EventType, Revision, ServerEvent, Verdict
from mailbeacon.core.profile import Profile
from mailbeacon.server import commands, operator_commands
from mailbeacon.server.config import Database
from mailbeacon.server.proxy_ranges import APPLE_EGRESS_URL
from mailbeacon.server.sqlite_store import SqliteStore
from mailbeacon.server.store import UNSTORED, NewEvent
from mailbeacon.server.stores import open_store
from mailbeacon.server.tracker import iso_utc
from tests.helpers.server import (
    WAIT,
    db_option,
    new_mail,
    next_event,
    query,
    recipient,
    running_server,
    subscribed,
)

HITS_BEFORE_BACKUP = 40


def _cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--profile", str(tmp_path / "profile"), "server", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _ids(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [int(row[0]) for row in db.execute("SELECT id FROM events ORDER BY id")]


# -- backup ---------------------------------------------------------------------------------


async def test_a_backup_taken_while_hits_are_written_is_a_consistent_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, copy = tmp_path / "server.db", tmp_path / "backups" / "copy.db"
    async with running_server(db) as server:
        alice = await server.add_user("alice")
        answered = 0
        enough = asyncio.Event()
        done = asyncio.Event()

        async def hit_until_done() -> None:
            nonlocal answered
            async with recipient() as client:
                for _ in range(5000):  # bounded; stops once the backup is taken
                    if done.is_set():
                        return
                    response = await client.get(new_mail(alice).pixel())
                    assert response.status_code == 200
                    answered += 1
                    if answered >= HITS_BEFORE_BACKUP:
                        enough.set()

        writers = [asyncio.create_task(hit_until_done()) for _ in range(4)]
        async with asyncio.timeout(6 * WAIT):
            await enough.wait()
        before = answered
        code = await asyncio.to_thread(main, [
            "--profile", str(tmp_path / "p"), "server", "backup", "--db", str(db), str(copy)
        ])
        after = answered
        done.set()
        async with asyncio.timeout(3 * WAIT):
            await asyncio.gather(*writers)
    out = capsys.readouterr().out
    assert code == 0
    assert after > before  # hits kept being answered while the copy was made
    saved = _ids(copy)
    # Every hit answered before the backup started is in it; nothing half-written is.
    assert before <= len(saved) <= after
    assert saved == _ids(db)[: len(saved)]  # exactly a prefix of the ids: one snapshot
    assert f"{len(saved)} events" in out
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]  # no temp files left


async def test_a_backup_serves_as_a_database(tmp_path: Path) -> None:
    db, copy = tmp_path / "server.db", tmp_path / "copy.db"
    async with running_server(db) as server:
        alice = await server.add_user("alice")
        mail = new_mail(alice)
        async with recipient() as client:
            await client.get(mail.pixel())
    assert main(["--profile", str(tmp_path), "server", "backup", "--db", str(db), str(copy)]) == 0
    async with running_server(copy) as restored, subscribed(restored, alice.api_token) as stream:
        assert (await next_event(stream))["message"] == mail.message


def test_a_backup_never_overwrites_and_needs_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, dest = tmp_path / "server.db", tmp_path / "exists.db"
    dest.write_text("precious")
    SqliteStore(db).close()
    code, _, err = _cli(capsys, tmp_path, "backup", "--db", str(db), str(dest))
    assert code == 1 and "already exists" in err
    assert dest.read_text() == "precious"
    missing = tmp_path / "nothing-here.db"
    code, _, err = _cli(capsys, tmp_path, "backup", "--db", str(missing), str(tmp_path / "b.db"))
    assert code == 1 and "no database" in err
    assert not missing.exists()  # a mistyped path is not created
    assert "Traceback" not in err


# -- retention ------------------------------------------------------------------------------


def _aged_event(user_id: int, days: float, ip: str, message: str) -> NewEvent:
    at = iso_utc((datetime.now(UTC) - timedelta(days=days)).timestamp())
    event = ServerEvent(
        UNSTORED, EventType.OPEN, message, None, at, ip, "UA", Verdict.HUMAN, "person", counts=True
    )
    return NewEvent(user_id, event)


def _fill(db: Database) -> dict[str, int]:
    store = open_store(db)
    ids: dict[str, int] = {}
    with store.transaction():
        for name, days, ip in [
            ("ancient", 400, "203.0.113.77"),
            ("old", 40, "2001:db8:1:2::5"),
            ("month", 20, "198.51.100.23"),
            ("week", 10, "::ffff:192.0.2.200"),
            ("new", 1, "192.0.2.9"),
        ]:
            ids[name] = store.insert_event(_aged_event(1, days, ip, name * 3))
        store.revise(1, ids["old"], Revision(ids["ancient"], "bot", "burst"))
        store.revise(1, ids["new"], Revision(ids["week"], "bot", "burst"))
    store.close()
    return ids


def test_retention_deletes_old_events_and_truncates_older_addresses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database: Database
) -> None:
    db = database
    ids = _fill(db)
    code, out, err = _cli(
        capsys, tmp_path, "retention", "--db", db_option(db), "--days", "30",
        "--truncate-ips-days", "7",
    )
    assert code == 0, err
    assert "deleted 2 events older than 30 days" in out
    assert "and 1 revisions" in out
    assert "truncated the IP addresses of 2 events older than 7 days" in out
    rows = dict(query(db, "SELECT id, ip FROM events"))
    revisions = query(db, "SELECT event_id, cause_id FROM revisions")
    assert rows == {
        ids["month"]: "198.51.100.0",
        ids["week"]: "192.0.2.0",
        ids["new"]: "192.0.2.9",  # newer than 7 days: kept whole
    }
    assert revisions == [(ids["week"], ids["new"])]  # the one about a deleted event is gone
    # Running it again changes nothing more; new events still get new ids.
    code, out, _ = _cli(
        capsys, tmp_path, "retention", "--db", db_option(db), "--days", "30",
        "--truncate-ips-days", "7",
    )
    assert "deleted 0 events" in out and "of 0 events" in out
    store = open_store(db)
    with store.transaction():
        assert store.insert_event(_aged_event(1, 0, "192.0.2.1", "x")) > max(ids.values())
    store.close()


def test_retention_without_truncation_keeps_addresses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database: Database
) -> None:
    db = database
    ids = _fill(db)
    code, out, _ = _cli(capsys, tmp_path, "retention", "--db", db_option(db), "--days", "365")
    assert code == 0
    assert "deleted 1 events" in out and "truncated" not in out
    assert query(db, "SELECT ip FROM events WHERE id = ?", (ids["old"],)) == [
        ("2001:db8:1:2::5",)
    ]


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_retention_needs_a_sensible_number_of_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--profile", str(tmp_path), "server", "retention", "--days", days])
    assert exited.value.code == 2
    assert "days" in capsys.readouterr().err


# -- proxy ranges ---------------------------------------------------------------------------

# Apple's list format; 127.0.0.0/24 stands in for a relay network so a loopback
# recipient can come "from Apple's relay".
APPLE_LIST = "127.0.0.0/24,US,US-CA,Cupertino\n" + "".join(
    f"100.{i // 256}.{i % 256}.0/24,US,US-CA,Los Angeles\n" for i in range(1200)
)


class FakeFetch:
    """Stands in for the download (tests never reach the network)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.body


def test_refresh_fetches_apples_published_list_into_the_data_dir(profile: Profile) -> None:
    args = argparse.Namespace(dest=None, url=APPLE_EGRESS_URL)
    fetch = FakeFetch(APPLE_LIST.encode())
    assert operator_commands._refresh(args, profile, fetch=fetch) == 0
    assert fetch.urls == ["https://mask-api.icloud.com/egress-ip-ranges.csv"]
    assert operator_commands.default_apple_ranges(profile).read_text() == APPLE_LIST


async def test_serve_uses_the_refreshed_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "mirror.csv"
    source.write_text(APPLE_LIST)
    dest = tmp_path / "ranges.csv"
    code, out, err = _cli(
        capsys, tmp_path, "refresh-proxy-ranges", "--url", source.as_uri(), "--dest", str(dest)
    )
    assert code == 0, err
    assert "wrote 1201 Apple relay address ranges" in out
    async with running_server(tmp_path / "server.db", apple_ranges=dest) as server:
        alice = await server.add_user("alice")
        async with subscribed(server, alice.api_token) as stream, recipient() as client:
            await client.get(new_mail(alice).pixel())
            event = await next_event(stream)
    assert (event["verdict"], event["via"]) == ("human", "iCloud Private Relay")


def test_a_failed_refresh_keeps_the_previous_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ranges.csv"
    dest.write_text(APPLE_LIST)
    short = tmp_path / "error-page.html"
    short.write_text("<html>Service unavailable</html>")
    code, _, err = _cli(
        capsys, tmp_path, "refresh-proxy-ranges", "--url", short.as_uri(), "--dest", str(dest)
    )
    assert code == 1 and "kept the previous list" in err
    assert dest.read_text() == APPLE_LIST


# -- truncated addresses (rule 8) -----------------------------------------------------------


async def test_truncate_ips_stores_the_network_but_judges_the_full_address(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path / "server.db", truncate_ips=True) as server:
        alice = await server.add_user("alice")
        own, theirs = new_mail(alice), new_mail(alice)
        # The rep's agent streams from 127.0.0.5; a hit from there is the rep's own.
        async with (
            subscribed(server, alice.api_token, local_address="127.0.0.5") as stream,
            recipient("127.0.0.5") as rep,
            recipient("127.0.0.9") as contact,
        ):
            await rep.get(own.pixel())
            first = await next_event(stream)
            await contact.get(theirs.pixel())
            second = await next_event(stream)
    assert (first["verdict"], first["ip"]) == ("self", "127.0.0.0")  # judged on 127.0.0.5
    assert (second["verdict"], second["ip"]) == ("human", "127.0.0.0")
    with sqlite3.connect(tmp_path / "server.db") as check:
        assert {row[0] for row in check.execute("SELECT ip FROM events")} == {"127.0.0.0"}


def test_serve_options_reach_the_config(tmp_path: Path, profile: Profile) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    commands.register(sub)
    plain = commands.serve_config(parser.parse_args(["server", "serve"]), profile)
    assert plain.truncate_ips is False
    assert plain.apple_ranges == profile.data_dir / "apple-egress-ip-ranges.csv"
    tuned = commands.serve_config(
        parser.parse_args(
            ["server", "serve", "--truncate-ips", "--proxy-ranges", str(tmp_path / "r.csv")]
        ),
        profile,
    )
    assert tuned.truncate_ips is True
    assert tuned.apple_ranges == tmp_path / "r.csv"


def test_backup_on_postgresql_names_pg_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    code, _, err = _cli(capsys, tmp_path, "backup", "--db", postgres_url, str(tmp_path / "b.dump"))
    assert code == 2
    assert f"pg_dump --format=custom --file={tmp_path / 'b.dump'} {postgres_url}" in err
    assert "pg_restore" in err
