"""The team policy's rules: items, enforced or default, and how a message is tracked."""

from __future__ import annotations

import pytest

from mailbeacon.core.policy import (
    POLICY_KEYS,
    MessageTracking,
    PolicyError,
    PolicyItem,
    TeamPolicy,
    constrain,
    defaults_to_apply,
    parse_value,
)

TRACKED = MessageTracking(track=True, opens=True, clicks=True)
CLICKS_ONLY = MessageTracking(track=True, opens=False, clicks=True)
UNTRACKED = MessageTracking(False, False, False)


def test_the_keys_are_the_reps_own_plus_the_account_switch() -> None:
    assert set(POLICY_KEYS) == {
        "tracking.enabled", "tracking.clicks", "defaults.track", "defaults.log",
        "privacy.enabled", "privacy.truncate_ip", "server.public_url", "notify.replies",
        "oauth.issuer", "oauth.client_id",
    }  # fmt: skip


def test_values_are_normalised_and_bad_ones_refused() -> None:
    assert parse_value("defaults.track", "Off") == "false"
    assert parse_value("tracking.enabled", "yes") == "true"
    assert parse_value("server.public_url", "https://t.example.com/") == "https://t.example.com"
    with pytest.raises(PolicyError, match="true or false"):
        parse_value("defaults.log", "maybe")
    with pytest.raises(PolicyError, match="http"):
        parse_value("oauth.issuer", "ftp://x")
    with pytest.raises(PolicyError, match="not a policy key"):
        parse_value("relay.port", "25")
    with pytest.raises(PolicyError, match="printable"):
        parse_value("oauth.client_id", "a\nb")


def test_each_change_is_a_new_version_and_the_account_switch_is_always_enforced() -> None:
    policy = TeamPolicy().with_item("tracking.enabled", "false", enforce=False)
    assert policy.version == 1
    assert policy.item("tracking.enabled") == PolicyItem("tracking.enabled", "false", True)
    policy = policy.with_item("defaults.log", "true", enforce=False)
    assert policy.version == 2
    assert policy.enforced() == {}  # the account switch is no rep setting
    assert policy.defaults() == {"defaults.log": "true"}
    assert policy.without("defaults.log").item("defaults.log") is None


def test_tracking_off_for_the_account_means_nothing_is_tracked_whatever_was_asked() -> None:
    off = TeamPolicy().with_item("tracking.enabled", "off", enforce=True)
    assert not off.tracking_allowed
    for wanted in (TRACKED, CLICKS_ONLY, UNTRACKED):
        assert constrain(off, wanted) == UNTRACKED


def test_clicks_enforced_off_means_no_rewritten_link() -> None:
    policy = TeamPolicy().with_item("tracking.clicks", "false", enforce=True)
    assert constrain(policy, TRACKED) == MessageTracking(True, True, False)
    assert constrain(policy, CLICKS_ONLY) == UNTRACKED


def test_a_clicks_default_leaves_the_choice_to_the_rep() -> None:
    policy = TeamPolicy().with_item("tracking.clicks", "false", enforce=False)
    assert policy.clicks_allowed
    assert constrain(policy, TRACKED) == TRACKED


def test_no_policy_changes_nothing() -> None:
    assert constrain(TeamPolicy(), TRACKED) == TRACKED
    assert constrain(TeamPolicy(), UNTRACKED) == UNTRACKED


def test_wire_form_round_trips_and_skips_unknown_keys() -> None:
    policy = (
        TeamPolicy()
        .with_item("privacy.enabled", "true", enforce=True)
        .with_item("oauth.client_id", "abc", enforce=False)
    )
    data = policy.to_json()
    assert TeamPolicy.from_json(data) == policy
    data["items"]["future.key"] = {"value": "1", "enforced": True}
    assert TeamPolicy.from_json(data) == policy
    with pytest.raises(PolicyError):
        TeamPolicy.from_json({"version": "x"})
    with pytest.raises(PolicyError):
        TeamPolicy.from_json({"version": 1, "items": {"defaults.log": {"value": 1}}})


def test_defaults_are_applied_once_per_value() -> None:
    policy = TeamPolicy().with_item("defaults.log", "true", enforce=False)
    assert defaults_to_apply(policy, {}) == {"defaults.log": "true"}
    assert defaults_to_apply(policy, {"defaults.log": "true"}) == {}
    changed = policy.with_item("defaults.log", "false", enforce=False)
    assert defaults_to_apply(changed, {"defaults.log": "true"}) == {"defaults.log": "false"}
    enforced = policy.with_item("defaults.log", "false", enforce=True)
    assert defaults_to_apply(enforced, {}) == {}
