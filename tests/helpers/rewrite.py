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

    def verify(self, token: str) -> tokens.Claims | None:
        return self._urls.verify(token)


class PlainMinter:
    """Readable URLs, for tests that look at the markup itself."""

    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        return f"https://t.example.com/o/PIXEL-{recipient_key}.gif"

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        return f"https://t.example.com/c/LINK-{recipient_key}-{index}?q=1&r=2"

    def verify(self, token: str) -> tokens.Claims | None:
        return own(token)


class FailingMinter:
    """A minter whose signing key is gone."""

    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        raise RuntimeError("no signing key")

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        raise RuntimeError("no signing key")

    def verify(self, token: str) -> tokens.Claims | None:
        return None


def counter_keys(nbytes: int) -> Callable[[], str]:
    """Deterministic hex keys: 00..01, 00..02, ..."""
    numbers = itertools.count(1)
    return lambda: next(numbers).to_bytes(nbytes, "big").hex()


def message_keys() -> Callable[[], str]:
    return counter_keys(tokens.MESSAGE_KEY_BYTES)


def recipient_keys() -> Callable[[], str]:
    return counter_keys(tokens.RECIPIENT_KEY_BYTES)


def own(token: str) -> tokens.Claims | None:
    """The rep's verifier: claims of tokens signed with ``SIGNING_KEY`` for ``USER``."""
    claims = tokens.verify(token, SIGNING_KEY)
    return claims if claims is not None and claims.user_id == USER else None


def stale_pixel_url(
    host: str = "https://old.example.net", key: bytes = SIGNING_KEY, user: int = USER
) -> str:
    """A pixel URL from the rep's earlier email (by default: their key, another server
    address, as after a move). Pass another ``key`` or ``user`` for someone else's."""
    token = tokens.mint_open(key, user, "ab" * 12, "cd" * 8, 1_700_000_000)
    return f"{host}/o/{token}.gif"


def stale_click_url(
    target: str,
    host: str = "https://old.example.net",
    key: bytes = SIGNING_KEY,
    index: int = 0,
    user: int = USER,
) -> str:
    """A tracked-link URL from the rep's earlier email that redirects to ``target``."""
    token = tokens.mint_click(key, user, "ab" * 12, "cd" * 8, 1_700_000_000, index, target)
    return f"{host}/c/{token}"


FOREIGN_KEY = b"o" * 32  # another server's key (someone else's tracking, or a forgery)


def foreign_click_url(target: str, index: int = 0) -> str:
    """A tracked-link URL that verifies with nobody's key the rep holds."""
    return stale_click_url(target, key=FOREIGN_KEY, index=index, user=99)


def foreign_pixel_url() -> str:
    """A pixel URL signed with another server's key."""
    return stale_pixel_url(key=FOREIGN_KEY, user=99)
