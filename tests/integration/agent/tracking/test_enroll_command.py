"""``mailbeacon enroll LINK`` as a rep runs it (or the desktop entry, for a clicked
link): the key goes to the keyring, the settings to the team's server, and the team's
policy is read from the server before anything is sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mailbeacon.core.enrollment import EnrollmentError, key_from_link
from mailbeacon.server.admin.console import enrollment_link
from mailbeacon.server.stores import open_store
from mailbeacon.server.team import set_policy_item
from mailbeacon.server.tracker import iso_utc
from tests.helpers.agent_process import run_cli
from tests.helpers.server import running_server


def test_a_link_carries_the_key_and_a_bare_key_is_taken_as_it_is() -> None:
    key = "mbk1_abc-_123"
    assert key_from_link(enrollment_link(key)) == key
    assert key_from_link(f"  {key}\n") == key
    with pytest.raises(EnrollmentError, match="no key"):
        key_from_link("mailbeacon://enroll?nothing=1")


async def test_enroll_by_link_stores_the_key_switches_to_the_server_and_reads_the_policy(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.db"
    async with running_server(db) as server:
        key = (await server.add_user("alice")).encode()
        store = open_store(db)
        try:
            set_policy_item(store, "privacy.enabled", "true", True, iso_utc(time.time()))
        finally:
            store.close()
        profile, keyring = tmp_path / "rep", tmp_path / "keyring.json"
        code, out, err = await run_cli(profile, keyring, "enroll", enrollment_link(key))
        assert code == 0, err
        assert "Team policy version 1 applied." in out
    code, out, _err = await run_cli(profile, keyring, "config", "get", "server.mode")
    assert out.strip() == "remote"
    stored = json.loads(next(profile.rglob("team_policy.json")).read_text())
    assert stored["policy"]["items"]["privacy.enabled"] == {"value": "true", "enforced": True}
    code, _out, err = await run_cli(profile, keyring, "enroll", "mailbeacon://enroll?key=x")
    assert code == 2 and "not a MailBeacon enrollment key" in err
