"""Test data for the verdict rules: the table of real user agents (tests/data/user_agents.csv)."""

from __future__ import annotations

import csv
from dataclasses import dataclass

from tests.helpers.paths import DATA

TABLE = DATA / "user_agents.csv"
DEFAULT_IP = "203.0.113.7"  # documentation range: in no list


@dataclass(frozen=True, slots=True)
class AgentCase:
    """One row: a user agent, where it came from, and what MailBeacon should make of it."""

    case: str
    type: str
    ip: str
    user_agent: str
    verdict: str
    counts: bool
    reason: str
    label: str
    device: str
    origin: str


def load_cases() -> list[AgentCase]:
    """Every row of the table."""
    with TABLE.open(encoding="utf-8", newline="") as handle:
        return [
            AgentCase(
                case=row["case"],
                type=row["type"],
                ip=row["ip"] or DEFAULT_IP,
                user_agent=row["user_agent"],
                verdict=row["verdict"],
                counts=row["counts"] == "yes",
                reason=row["reason"],
                label=row["label"],
                device=row["device"],
                origin=row["origin"],
            )
            for row in csv.DictReader(handle)
        ]
