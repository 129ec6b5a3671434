"""Secrets: in the profile's keyring namespace, environment overrides, clear failure."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.profile import Profile
from tests.helpers.fakes import MemoryKeyring


def test_set_get_delete_in_the_profiles_namespace(
    profile: Profile, memory_keyring: MemoryKeyring
) -> None:
    store = SecretStore(profile.keyring_service)
    assert store.get(Secret.UPSTREAM_PASSWORD) is None
    store.set(Secret.UPSTREAM_PASSWORD, "s3cret")
    assert store.get(Secret.UPSTREAM_PASSWORD) == "s3cret"
    assert memory_keyring.items == {(profile.keyring_service, "upstream_password"): "s3cret"}
    assert store.delete(Secret.UPSTREAM_PASSWORD) is True
    assert store.delete(Secret.UPSTREAM_PASSWORD) is False
    assert not store.is_set(Secret.UPSTREAM_PASSWORD)


def test_two_profiles_never_share_a_secret(tmp_path: Path) -> None:
    first = SecretStore(Profile.at(tmp_path / "a").keyring_service)
    second = SecretStore(Profile.at(tmp_path / "b").keyring_service)
    first.set(Secret.API_TOKEN, "token-a")
    assert second.get(Secret.API_TOKEN) is None


def test_environment_overrides_win_and_are_not_stored(
    profile: Profile, memory_keyring: MemoryKeyring
) -> None:
    env = {
        "MAILBEACON_UPSTREAM_PASSWORD": "from-env",
        "MAILBEACON_IMAP_PASSWORD": "imap-env",
        "MAILBEACON_UPSTREAM_USER": "rep@example.net",
    }
    store = SecretStore(profile.keyring_service, env)
    SecretStore(profile.keyring_service).set(Secret.UPSTREAM_PASSWORD, "from-keyring")
    assert store.get(Secret.UPSTREAM_PASSWORD) == "from-env"
    assert store.get(Secret.IMAP_PASSWORD) == "imap-env"
    assert store.upstream_user("configured@example.net") == "rep@example.net"
    assert SecretStore(profile.keyring_service).upstream_user("configured") == "configured"
    assert ("imap_password" not in {name for _, name in memory_keyring.items})


def test_environment_override_works_without_any_keyring(profile: Profile) -> None:
    keyring.set_keyring(FailKeyring())
    store = SecretStore(profile.keyring_service, {"MAILBEACON_UPSTREAM_PASSWORD": "pw"})
    assert store.get(Secret.UPSTREAM_PASSWORD) == "pw"


def test_only_documented_variables_override(profile: Profile) -> None:
    store = SecretStore(profile.keyring_service, {"MAILBEACON_API_TOKEN": "sneaky"})
    assert store.get(Secret.API_TOKEN) is None


@pytest.mark.parametrize("action", ["get", "set", "delete", "ensure"])
def test_unavailable_keyring_is_a_clear_error(profile: Profile, action: str) -> None:
    keyring.set_keyring(FailKeyring())
    store = SecretStore(profile.keyring_service)
    with pytest.raises(SecretStoreUnavailable) as caught:
        if action == "get":
            store.get(Secret.RELAY_PASSWORD)
        elif action == "set":
            store.set(Secret.RELAY_PASSWORD, "x")
        elif action == "delete":
            store.delete(Secret.RELAY_PASSWORD)
        else:
            store.ensure_relay_password()
    message = str(caught.value)
    assert "keyring is unavailable" in message
    assert "GNOME Keyring" in message and "MAILBEACON_UPSTREAM_PASSWORD" in message


def test_unavailable_keyring_never_falls_back_to_a_file(profile: Profile) -> None:
    keyring.set_keyring(FailKeyring())
    with pytest.raises(SecretStoreUnavailable):
        SecretStore(profile.keyring_service).set(Secret.UPSTREAM_PASSWORD, "pw")
    for root in (profile.config_dir, profile.data_dir):
        files = list(root.rglob("*")) if root.exists() else []
        assert not any(f.is_file() and b"pw" in f.read_bytes() for f in files)


def test_an_injected_backend_is_used(profile: Profile) -> None:
    backend = MemoryKeyring()
    store = SecretStore(profile.keyring_service, backend=backend)
    store.set(Secret.SIGNING_KEY, "k")
    assert backend.items == {(profile.keyring_service, "signing_key"): "k"}
    assert keyring.get_password(profile.keyring_service, "signing_key") is None


def test_ensure_relay_password_generates_once(profile: Profile) -> None:
    store = SecretStore(profile.keyring_service)
    first = store.ensure_relay_password()
    assert len(first) >= 20
    assert store.ensure_relay_password() == first
    other = SecretStore(Profile.at(profile.config_dir / "other").keyring_service)
    assert other.ensure_relay_password() != first


def test_empty_secret_is_refused(profile: Profile) -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretStore(profile.keyring_service).set(Secret.IMAP_PASSWORD, "")


def test_enrollment_round_trip(profile: Profile) -> None:
    store = SecretStore(profile.keyring_service)
    assert store.enrollment() is None
    enrollment = Enrollment("https://track.example.com", 7, "tok-123", b"\x01" * 32)
    store.set_enrollment(enrollment)
    assert store.enrollment() == enrollment
    assert store.get(Secret.API_TOKEN) == "tok-123"
    assert store.signing_key() == b"\x01" * 32


@pytest.mark.expect_log("the stored enrollment key is damaged")
def test_damaged_enrollment_is_treated_as_absent(profile: Profile) -> None:
    store = SecretStore(profile.keyring_service)
    store.set(Secret.ENROLLMENT, "mbk1_garbage")
    assert store.enrollment() is None
