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


# Fragments whose repetition makes a pattern rescan the agent from every occurrence,
# or leaves many patterns' words in the agent for the pre-screen to let through.
_PATHOLOGICAL = (
    "yandex", "Yandexa", "cubot", "Java ", "NewsBlur ", "facebookexternalhit/", "Safari/1.0 ",
    "Mozilla/5.0 bot ", "YandexSearch ", "Go 1.", "PTST/", "(", "-", " ", "x", "a1",
)


def hostile_agents(count: int, seed: int = 8) -> list[str]:
    """``count`` distinct printable agents of exactly 1,024 characters (the longest the
    length rule lets through to the pattern lists): random noise, one repeated character,
    and repeated fragments that are worst cases for regular expressions."""
    import random
    import string

    rng = random.Random(seed)
    words = ["bot", "crawl", "spider", "Googlebot", "Mimecast", "Safe", "Links", "Java", "Yandex",
             "Headless", "curl/"]
    out: list[str] = []
    for i in range(count):
        tag = f"#{i}"
        kind = i % 4
        if kind == 0:
            body = "".join(rng.choices(string.ascii_letters + " /;.()", k=1024))
        elif kind == 1:
            body = rng.choice("x(/-1a ") * 1024
        elif kind == 2:
            body = rng.choice(_PATHOLOGICAL) * 1024
        else:
            body = " ".join(rng.choices(words, k=200))
        out.append(body[: 1024 - len(tag)] + tag)
    return out
