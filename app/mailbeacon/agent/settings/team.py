"""The team's policy on the rep's machine: kept in ``team_policy.json`` beside the
settings, applied over them.

* *Enforced* items overlay the rep's settings (:func:`overlay`): the rep's own value
  stays in ``config.json``, so when the team lifts the enforcement the rep's setting
  is theirs again, unchanged.
* *Default* items are written into the rep's settings once per value
  (:meth:`TeamPolicyFile.apply`); the rep may change them afterwards.
* ``tracking.enabled`` (the account switch) has no rep setting: the sender asks
  :attr:`TeamPolicy.tracking_allowed` (core/policy.py, ``constrain``).

The agent applies a policy the moment it arrives (stream ``policy`` message, or
``GET /v1/policy`` at enrollment and before the relay starts); the tray reads the
same file to lock what is enforced.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.store import KEYS, ConfigError, Settings
from mailbeacon.core.durable import atomic_write
from mailbeacon.core.language import mark
from mailbeacon.core.policy import PolicyError, TeamPolicy, defaults_to_apply

log = logging.getLogger(__name__)

FILE_NAME = "team_policy.json"
LOCKED_NOTE = mark("Set by your team")


def policy_file(config_dir: Path) -> Path:
    """Where the rep's copy of the team policy lives."""
    return config_dir / FILE_NAME


def overlay(settings: Settings, policy: TeamPolicy) -> Settings:
    """``settings`` with every enforced item in force (a copy; the rep's own values are
    not touched). An item this version cannot apply is logged and skipped."""
    enforced = {k: v for k, v in policy.enforced().items() if k in KEYS}
    if not enforced:
        return settings
    result = settings.copy()
    for key, value in enforced.items():
        try:
            result.set(key, value)
        except SettingError as exc:
            log.warning("team policy: cannot apply %s: %s", key, exc)
    return result


def locked_keys(policy: TeamPolicy) -> frozenset[str]:
    """The rep settings the team enforces (shown locked: "Set by your team")."""
    return frozenset(k for k in policy.enforced() if k in KEYS)


@dataclass
class TeamPolicyFile:
    """The stored policy and the team defaults already written into the settings."""

    path: Path
    config_file: Path
    policy: TeamPolicy = field(default_factory=TeamPolicy)
    applied: dict[str, str] = field(default_factory=dict)
    source: str = ""  # the server it came from: another server's versions do not compare

    @classmethod
    def load(cls, config_dir: Path, config_file: Path) -> TeamPolicyFile:
        """The stored copy (none yet: version 0). A damaged file counts as none, logged:
        the next connection brings the policy again."""
        stored = cls(policy_file(config_dir), config_file)
        try:
            data = json.loads(stored.path.read_text("utf-8"))
            stored.policy = TeamPolicy.from_json(data["policy"])
            stored.applied = {str(k): str(v) for k, v in dict(data["applied"]).items()}
            stored.source = str(data.get("source", ""))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, PolicyError) as exc:
            log.warning(
                "team policy file %s unreadable (%s): waiting for the server's", stored.path, exc
            )
        return stored

    def apply(self, policy: TeamPolicy, source: str) -> bool:
        """Take ``policy`` if it is newer than the one held (or from another server):
        store it, write new team defaults into the rep's settings. True if it changed."""
        if source == self.source and policy.version <= self.policy.version:
            return False
        defaults = {k: v for k, v in defaults_to_apply(policy, self.applied).items() if k in KEYS}
        if defaults:
            self._write_defaults(defaults)
        self.policy, self.source = policy, source
        self.applied.update(defaults)
        text = json.dumps(
            {"source": source, "policy": policy.to_json(), "applied": self.applied}, indent=2
        )
        atomic_write(self.path, (text + "\n").encode("utf-8"))
        log.info("team policy version %d from %s applied", policy.version, source)
        return True

    def _write_defaults(self, defaults: dict[str, str]) -> None:
        try:
            settings = Settings.load(self.config_file)
        except ConfigError as exc:
            log.warning("team defaults not written into the settings: %s", exc)
            return
        for key, value in defaults.items():
            try:
                settings.set(key, value)
            except SettingError as exc:
                log.warning("team policy: cannot apply the default %s: %s", key, exc)
        settings.save(self.config_file)
