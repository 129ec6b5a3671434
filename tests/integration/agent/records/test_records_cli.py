"""The real ``mailbeacon`` command, run as a subprocess: config, contact, record, activity.

Subprocesses use a file keyring (tests/helpers/keyring_file_backend.py), never the real one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailbeacon.agent.records.model import Recipient
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.profile import Profile
from tests.helpers import paths
from tests.helpers.keyring_file_backend import ENV_FILE
from tests.helpers.records import event, sent_email

REPO = paths.REPO


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class Cli:
    root: Path
    keyring_file: Path
    backend: str = "tests.helpers.keyring_file_backend.FileKeyring"

    @property
    def profile(self) -> Profile:
        return Profile.at(self.root)

    def __call__(self, *args: str, stdin: str = "", root: Path | None = None) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBEACON_")}
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "app")]),
            PYTHON_KEYRING_BACKEND=self.backend,
            **{ENV_FILE: str(self.keyring_file)},
        )
        done = subprocess.run(
            [sys.executable, "-m", "mailbeacon", "--profile", str(root or self.root), *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def keyring(self) -> dict[str, str]:
        if not self.keyring_file.exists():
            return {}
        data: dict[str, str] = json.loads(self.keyring_file.read_text())
        return data


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "profile", tmp_path / "keyring.json")


def profile_files_text(cli: Cli) -> str:
    files = [p for p in cli.root.rglob("*") if p.is_file()] if cli.root.exists() else []
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in files)


def test_config_set_then_get(cli: Cli) -> None:
    assert cli("config", "get", "relay.port").out.strip() == "2525"
    done = cli("config", "set", "relay.port", "2600")
    assert done.code == 0, done.err
    assert cli("config", "get", "relay.port").out.strip() == "2600"
    cli("config", "set", "privacy.enabled", "yes")
    got = cli("config", "get", "privacy.enabled", "--json").json()
    assert got == {"key": "privacy.enabled", "value": True}
    saved = json.loads(cli.profile.config_file.read_text())
    assert saved["relay"]["port"] == 2600 and saved["privacy"]["enabled"] is True
    listing = cli("config", "list", "--json").json()
    assert isinstance(listing, dict) and listing["tracking.clicks"] is True


def test_config_refuses_bad_values_and_unknown_keys_with_reasons(cli: Cli) -> None:
    cli("config", "set", "relay.port", "2600")
    before = cli.profile.config_file.read_bytes()
    bad = cli("config", "set", "relay.port", "99999")
    assert bad.code == 2
    assert "relay.port" in bad.err and "65535" in bad.err
    assert "Traceback" not in bad.err
    unknown = cli("config", "get", "relay.prot")
    assert unknown.code == 2 and "relay.port" in unknown.err
    plain = cli("config", "set", "upstream.url", "smtp://mail.example.com")
    assert plain.code == 2 and "upstream.allow_plain" in plain.err
    assert cli.profile.config_file.read_bytes() == before


def test_a_damaged_config_file_is_named_and_left_alone(cli: Cli) -> None:
    cli.profile.config_dir.mkdir(parents=True)
    cli.profile.config_file.write_text("{broken")
    done = cli("config", "get", "relay.port")
    assert done.code == 1
    assert str(cli.profile.config_file) in done.err and "not valid JSON" in done.err
    assert cli("config", "set", "relay.port", "2600").code == 1
    assert cli.profile.config_file.read_text() == "{broken"


def test_secrets_go_to_the_keyring_and_are_never_printed(cli: Cli) -> None:
    assert cli("config", "get", "upstream.password").out.strip() == "not set"
    done = cli("config", "set", "upstream.password", "s3cret-Upstream")
    assert done.code == 0, done.err
    piped = cli("config", "set", "imap.password", "-", stdin="s3cret-Imap\n")
    assert piped.code == 0, piped.err
    service = cli.profile.keyring_service
    assert cli.keyring()[f"{service}\x00upstream_password"] == "s3cret-Upstream"
    assert cli.keyring()[f"{service}\x00imap_password"] == "s3cret-Imap"
    shown = cli("config", "get", "upstream.password")
    assert shown.out.strip() == "set"
    assert cli("config", "get", "imap.password", "--json").json() == {
        "key": "imap.password", "secret": True, "set": True,
    }
    listing = cli("config", "list")
    for output in (done, piped, shown, listing):
        assert "s3cret" not in output.out + output.err
    assert "s3cret" not in profile_files_text(cli)


def test_without_a_keyring_secrets_are_refused_clearly(cli: Cli) -> None:
    cli.backend = "keyring.backends.fail.Keyring"
    done = cli("config", "set", "relay.password", "pw-never-on-disk")
    assert done.code == 1
    assert "keyring is unavailable" in done.err and "Traceback" not in done.err
    assert "pw-never-on-disk" not in profile_files_text(cli)
    assert cli("config", "get", "relay.password").code == 1


def test_enrollment_key_switches_to_the_remote_server(cli: Cli) -> None:
    key = Enrollment("https://track.example.com", 4, "api-tok", b"\x02" * 32).encode()
    done = cli("config", "set", "server.enrollment", key)
    assert done.code == 0, done.err
    assert cli("config", "get", "server.mode").out.strip() == "remote"
    assert cli("config", "get", "server.url").out.strip() == "https://track.example.com"
    assert cli("config", "get", "server.enrollment").out.strip() == "set"
    assert "api-tok" not in profile_files_text(cli)
    bad = cli("config", "set", "server.enrollment", "mbk1_nonsense")
    assert bad.code == 2 and "enrollment key" in bad.err


def test_profiles_do_not_share_settings_or_secrets(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    cli("config", "set", "defaults.log", "true")
    cli("config", "set", "relay.password", "pw")
    assert cli("config", "get", "defaults.log", root=other).out.strip() == "false"
    assert cli("config", "get", "relay.password", root=other).out.strip() == "not set"


def test_contact_lawful_basis_name_and_company(cli: Cli) -> None:
    done = cli("contact", "Alice@Example.com", "--lawful-basis", "consent",
               "--name", "Alice", "--company", "Acme", "--json")
    assert done.code == 0, done.err
    contact = done.json()
    assert isinstance(contact, dict)
    assert (contact["email"], contact["lawful_basis"], contact["name"], contact["company"]) == (
        "alice@example.com", "consent", "Alice", "Acme")
    record = cli("record", "alice@example.com", "--json").json()
    assert isinstance(record, dict) and record["lawful_basis"] == "consent"
    cleared = cli("contact", "alice@example.com", "--lawful-basis", "none", "--json").json()
    assert isinstance(cleared, dict) and cleared["lawful_basis"] is None
    assert cleared["name"] == "Alice"
    assert cli("contact", "not-an-address", "--lawful-basis", "consent").code == 2


def test_record_of_an_unknown_contact_fails_clearly(cli: Cli) -> None:
    done = cli("record", "nobody@example.com", "--json")
    assert done.code == 1
    assert "nobody@example.com" in done.err and done.out == ""


def populate(profile: Profile) -> str:
    """Two emails and events of every verdict; returns the first email's Message-ID."""
    with RecordsStore.for_profile(profile) as store:
        first = sent_email(recipients=(Recipient("alice@example.com", "to", "Alice", "a1" * 8),),
                           subject="Pricing \x1b[31mred</b>", sent_at="2030-01-01T09:00:00Z")
        first_id = store.record_sent(first)
        second_id = store.record_sent(
            sent_email("alice@example.com", "bob@example.com", shared=True,
                       sent_at="2030-01-02T09:00:00Z")
        )
        store.add_event(event("open", "2030-01-01T10:00:00Z", server_id=1, email_id=first_id,
                              contact="alice@example.com", reason="no bot signal"))
        store.update_contact_engagement("alice@example.com", "open", "2030-01-01T10:00:00Z")
        store.add_event(event("click", "2030-01-01T09:00:02Z", server_id=2, email_id=first_id,
                              contact="alice@example.com", verdict="bot",
                              reason="clicked 2 s after sending", url="https://example.com/a",
                              link=0))
        store.add_event(event("open", "2030-01-02T10:00:00Z", server_id=3, email_id=second_id,
                              anonymous=True, reason="no bot signal"))
        store.add_event(event("open", "2030-01-02T10:00:05Z", server_id=4, email_id=second_id,
                              verdict="proxy", reason="Apple Mail Privacy Protection",
                              anonymous=True))
    return first.message_id


def test_activity_lists_every_event_with_its_verdict(cli: Cli) -> None:
    message_id = populate(cli.profile)
    done = cli("activity", "--json")
    assert done.code == 0, done.err
    rows = done.json()
    assert isinstance(rows, list)
    assert [(r["event"], r["verdict"]) for r in rows] == [
        (4, "proxy"), (3, "human"), (1, "human"), (2, "bot"),
    ]
    bot = rows[3]
    assert bot["reason"] == "clicked 2 s after sending" and bot["url"] == "https://example.com/a"
    assert bot["message_id"] == message_id and bot["recipient"] == "alice@example.com"
    assert rows[1]["recipient"] is None and rows[1]["anonymous"] is True
    limited = cli("activity", "--json", "--limit", "2").json()
    assert isinstance(limited, list) and [r["event"] for r in limited] == [4, 3]
    assert len(cli("activity", "--json", "--all").json()) == 4  # type: ignore[arg-type]
    humans = cli("activity", "--json", "--verdict", "human").json()
    assert isinstance(humans, list) and {r["event"] for r in humans} == {1, 3}


def test_activity_text_shows_hostile_subjects_as_inert_text(cli: Cli) -> None:
    populate(cli.profile)
    done = cli("activity")
    assert done.code == 0
    assert "\x1b" not in done.out
    assert "Someone" in done.out and "red</b>" in done.out


def test_activity_of_a_fresh_profile_is_empty(cli: Cli) -> None:
    assert cli("activity", "--json").json() == []


def test_record_shows_properties_and_timeline_without_anonymous_or_bot_events(
    cli: Cli,
) -> None:
    populate(cli.profile)
    done = cli("record", "ALICE@example.com", "--json")
    assert done.code == 0, done.err
    record = done.json()
    assert isinstance(record, dict)
    assert record["last_open"] == "2030-01-01T10:00:00.000Z"
    assert record["last_click"] is None and record["opens"] == 1
    timeline = record["timeline"]
    assert [(e["kind"], e["at"][:10]) for e in timeline] == [
        ("sent", "2030-01-02"), ("event", "2030-01-01"), ("sent", "2030-01-01"),
    ]
    assert all(not e.get("anonymous") for e in timeline)
    everything = cli("record", "alice@example.com", "--json", "--all-verdicts").json()
    assert isinstance(everything, dict)
    verdicts = [e["verdict"] for e in everything["timeline"] if e["kind"] == "event"]
    assert verdicts == ["human", "bot"]
    text = cli("record", "alice@example.com")
    assert text.code == 0 and "last open:" in text.out and "\x1b" not in text.out
