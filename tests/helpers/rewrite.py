"""Fakes for the rewrite engine: a minter that records what it minted, key factories."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.urls import TrackingUrls

SERVER = "https://t.example.com"
SIGNING_KEY = b"k" * 32
USER = 7
MINTED_AT = 1_800_000_000


@dataclass
class RecordingMinter:
    """Real tokens (so stale detection knows them), and a log of every call."""

    base: str = SERVER
    user_id: int = USER
    key: bytes = SIGNING_KEY
    pixels: list[tuple[str, str | None]] = field(default_factory=list)
    clicks: list[tuple[str, str | None, int, str]] = field(default_factory=list)

    @property
    def _urls(self) -> TrackingUrls:
        return TrackingUrls(Enrollment(self.base, self.user_id, "api", self.key), lambda: MINTED_AT)

    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        self.pixels.append((message_key, recipient_key))
        return self._urls.pixel(message_key, recipient_key)

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        self.clicks.append((message_key, recipient_key, index, target))
        return self._urls.click(message_key, recipient_key, index, target)


class PlainMinter:
    """Readable URLs, for tests that look at the markup itself."""

    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        return f"https://t.example.com/o/PIXEL-{recipient_key}.gif"

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        return f"https://t.example.com/c/LINK-{recipient_key}-{index}?q=1&r=2"


class FailingMinter:
    """A minter whose signing key is gone."""

    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        raise RuntimeError("no signing key")

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        raise RuntimeError("no signing key")


def counter_keys(nbytes: int) -> Callable[[], str]:
    """Deterministic hex keys: 00..01, 00..02, ..."""
    numbers = itertools.count(1)
    return lambda: next(numbers).to_bytes(nbytes, "big").hex()


def message_keys() -> Callable[[], str]:
    return counter_keys(tokens.MESSAGE_KEY_BYTES)


def recipient_keys() -> Callable[[], str]:
    return counter_keys(tokens.RECIPIENT_KEY_BYTES)


def stale_pixel_url(host: str = "https://old.example.net", key: bytes = b"o" * 32) -> str:
    """A pixel URL from an earlier email, minted by someone else's server."""
    token = tokens.mint_open(key, 99, "ab" * 12, "cd" * 8, 1_700_000_000)
    return f"{host}/o/{token}.gif"


def stale_click_url(
    target: str,
    host: str = "https://old.example.net",
    key: bytes = b"o" * 32,
    index: int = 0,
) -> str:
    """A tracked-link URL from an earlier email that redirects to ``target``."""
    token = tokens.mint_click(key, 99, "ab" * 12, "cd" * 8, 1_700_000_000, index, target)
    return f"{host}/c/{token}"
