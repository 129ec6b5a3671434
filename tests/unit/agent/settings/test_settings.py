"""Settings: documented keys, validation with reasons, atomic save, damaged files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.mail_urls import parse_host_port, parse_mail_url
from mailbeacon.agent.settings.store import KEYS, SECRET_KEYS, ConfigError, Settings, keys_table

BRIEF_KEYS = {
    "server.mode": "embedded",
    "server.url": "",
    "relay.host": "127.0.0.1",
    "relay.port": "2525",
    "relay.user": "mailbeacon",
    "upstream.url": "",
    "upstream.user": "",
    "defaults.track": "true",
    "defaults.log": "false",
    "tracking.clicks": "true",
    "tracking.per_recipient": "false",
    "tracking.settle_seconds": "1.5",
    "tracking.repeat_window_seconds": "60",
    "privacy.enabled": "false",
    "privacy.truncate_ip": "false",
    "notify.opens": "true",
    "notify.clicks": "true",
    "notify.replies": "true",
    "notify.delivery_failures": "true",
    "notify.paused_until": "",
    "imap.url": "",
    "sent_cleanup.enabled": "true",
    "app.autostart": "false",
}


def test_every_setting_has_a_documented_key_and_its_default() -> None:
    settings = Settings()
    for key, default in BRIEF_KEYS.items():
        assert settings.get(key) == default, key
    assert settings.get("server.listen") == "127.0.0.1:8725"
    assert settings.value("relay.max_message_bytes") == 35 * 1024 * 1024
    for entry in KEYS.values():
        assert entry.doc, f"{entry.key} has no description"


def test_secrets_are_not_settings() -> None:
    assert not set(SECRET_KEYS) & set(KEYS)
    with pytest.raises(SettingError, match="keyring"):
        Settings().set("upstream.password", "hunter2")
    # No setting holds a secret: passwords, client secrets and tokens live in the keyring.
    assert not [key for key in KEYS if key.endswith(("password", "secret", "token"))]


def test_keys_table_lists_every_key_for_the_readme() -> None:
    table = keys_table()
    for key in [*KEYS, *SECRET_KEYS]:
        assert f"`{key}`" in table
    for row in table.splitlines():
        assert row.replace("\\|", "").count("|") == 5, row


def test_typed_access_follows_set() -> None:
    settings = Settings()
    settings.set("relay.port", "2600")
    settings.set("tracking.settle_seconds", "0")
    settings.set("privacy.enabled", "yes")
    assert settings.relay.port == 2600
    assert settings.tracking.settle_seconds == 0.0
    assert settings.privacy.enabled is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), ("on", True),
     ("false", False), ("no", False), ("0", False), (" Off ", False)],
)
def test_booleans_accept_the_usual_words(text: str, expected: bool) -> None:
    settings = Settings()
    settings.set("defaults.log", text)
    assert settings.defaults.log is expected


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("relay.port", "0", "between 1 and 65535"),
        ("relay.port", "65536", "between 1 and 65535"),
        ("relay.port", "abc", "whole number"),
        ("defaults.track", "maybe", "true or false"),
        ("tracking.settle_seconds", "-1", "between 0 and 30"),
        ("tracking.settle_seconds", "nan", "between 0 and 30"),
        ("tracking.repeat_window_seconds", "1.5", "whole number"),
        ("server.mode", "cloud", "embedded, remote"),
        ("server.url", "ftp://example.com", "http"),
        ("server.listen", "localhost", "host:port"),
        ("server.listen", "::1:80", "brackets"),
        ("relay.host", "0.0.0.0", "loopback"),
        ("relay.host", "192.168.1.5", "loopback"),
        ("relay.user", "two words", "spaces"),
        ("relay.user", "", "empty"),
        ("relay.max_message_bytes", "10", "between"),
        ("upstream.url", "http://mail.example.com", "smtp"),
        ("upstream.url", "smtps://me:secret@mail.example.com", "password"),
        ("upstream.url", "smtp+starttls://mail.example.com:99999", "port"),
        ("upstream.url", "smtp+starttls://bad host", "not a valid host"),
        ("imap.url", "pop3://mail.example.com", "imap"),
        ("notify.paused_until", "tomorrow", "2030-01-31T17:00:00Z"),
        ("notify.paused_until", "2030-01-31T17:00:00", "zone"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(key: str, value: str, reason: str) -> None:
    settings = Settings()
    before = settings.get(key)
    with pytest.raises(SettingError, match=reason) as caught:
        settings.set(key, value)
    assert key in str(caught.value)
    assert settings.get(key) == before


def test_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(SettingError) as caught:
        Settings().set("relay.prot", "1")
    message = str(caught.value)
    assert "relay.prot" in message
    assert "relay.port" in message and "privacy.enabled" in message
    with pytest.raises(SettingError, match="unknown setting"):
        Settings().get("nothing")


def test_plain_smtp_only_to_this_machine_unless_allowed() -> None:
    settings = Settings()
    settings.set("upstream.url", "smtp://127.0.0.1:2526")
    settings.set("upstream.url", "smtp://localhost")
    with pytest.raises(SettingError, match="unencrypted"):
        settings.set("upstream.url", "smtp://mail.example.com:25")
    assert settings.upstream.url == "smtp://localhost"
    settings.set("upstream.url", "smtp+starttls://mail.example.com:587")
    settings.set("upstream.allow_plain", "true")
    settings.set("upstream.url", "smtp://mail.example.com:25")
    # Turning the permission off again would leave an unencrypted remote server.
    with pytest.raises(SettingError, match="unencrypted"):
        settings.set("upstream.allow_plain", "false")
    assert settings.upstream.allow_plain is True


def test_plain_imap_only_to_this_machine_unless_allowed() -> None:
    settings = Settings()
    settings.set("imap.url", "imap://rep@127.0.0.1:1143")
    with pytest.raises(SettingError, match=r"imap\.allow_plain"):
        settings.set("imap.url", "imap://rep@imap.example.com")
    settings.set("imap.url", "imaps://rep@imap.example.com")


def test_mail_urls_parse_with_default_ports() -> None:
    assert parse_mail_url("smtp+starttls://mail.example.com", "smtp").port == 587
    assert parse_mail_url("smtps://mail.example.com", "smtp").security == "tls"
    plain = parse_mail_url("smtp://127.0.0.1:2526", "smtp")
    assert (plain.host, plain.port, plain.plain) == ("127.0.0.1", 2526, True)
    imap = parse_mail_url("imap+starttls://rep@example.net", "imap")
    assert (imap.user, imap.port, imap.security) == ("rep", 143, "starttls")
    assert parse_host_port("[::1]:8080") == ("::1", 8080)
    assert parse_host_port("127.0.0.1:0", allow_zero=True) == ("127.0.0.1", 0)


def test_a_copy_is_independent() -> None:
    settings = Settings()
    run = settings.copy()
    run.set("relay.port", "2999")
    assert settings.relay.port == 2525 and run.relay.port == 2999


def test_paused_until_is_normalised_to_utc() -> None:
    settings = Settings()
    settings.set("notify.paused_until", "2030-01-31T18:00:00+01:00")
    assert settings.get("notify.paused_until") == "2030-01-31T17:00:00Z"
    assert settings.notifications_paused(datetime(2030, 1, 31, 16, 59, tzinfo=UTC))
    assert not settings.notifications_paused(datetime(2030, 1, 31, 17, 1, tzinfo=UTC))
    settings.set("notify.paused_until", "")
    assert not settings.notifications_paused(datetime(2030, 1, 31, tzinfo=UTC))


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config" / "config.json"
    settings = Settings()
    settings.set("relay.port", "2626")
    settings.set("defaults.log", "true")
    settings.set("tracking.settle_seconds", "0.25")
    settings.set("upstream.url", "smtps://mail.example.com")
    settings.set("notify.paused_until", "2030-01-01T00:00:00Z")
    settings.save(path)
    loaded = Settings.load(path)
    assert loaded == settings
    assert json.loads(path.read_text())["relay"]["port"] == 2626
    assert path.stat().st_mode & 0o077 == 0


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert Settings.load(tmp_path / "none.json") == Settings()


@pytest.mark.expect_log("ignoring unknown key")
def test_missing_keys_take_defaults_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"version": 1, "relay": {"port": 2700, "colour": "red"},
                                "future": {"x": 1}}))
    loaded = Settings.load(path)
    assert loaded.relay.port == 2700
    assert loaded.relay.user == "mailbeacon"


def test_a_failed_rename_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.json"
    old = Settings()
    old.set("relay.port", "2601")
    old.save(path)
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    new = Settings()
    new.set("relay.port", "2602")
    with pytest.raises(OSError, match="simulated"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert Settings.load(path).relay.port == 2601
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{\"relay\": {\"port\": 25", "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "refuses"),
        (b"{\"relay\": {\"port\": \"many\"}}", "relay.port"),
        (b"{\"relay\": {\"port\": true}}", "relay.port"),
        (b"{\"upstream\": {\"url\": \"smtp://mail.example.com\"}}", "unencrypted"),
    ],
)
def test_a_damaged_file_is_a_clear_error_naming_it(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem) as caught:
        Settings.load(path)
    assert str(path) in str(caught.value)
    assert "move it aside" in str(caught.value)
    assert path.read_bytes() == content


@pytest.mark.expect_log("is not valid JSON")
def test_load_or_default_moves_a_damaged_file_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    settings = Settings.load_or_default(path, now=lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert settings == Settings()
    aside = tmp_path / "config.json.corrupt-20300102T030405Z"
    assert aside.read_text() == "{not json"
    assert not path.exists()
    assert str(aside) in caplog.text


def test_load_or_default_reads_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    settings = Settings()
    settings.set("app.autostart", "true")
    settings.save(path)
    assert Settings.load_or_default(path).app.autostart is True


def test_a_percent_encoded_user_in_a_mail_url_is_decoded() -> None:
    from mailbeacon.agent.settings.mail_urls import parse_mail_url

    assert parse_mail_url("imap://rep%40example.net@127.0.0.1:143", "imap").user == (
        "rep@example.net"
    )
