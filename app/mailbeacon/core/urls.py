"""The tracking URLs put into emails: their shapes live here and only here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment

PIXEL_PREFIX = "/o/"
PIXEL_SUFFIX = ".gif"
CLICK_PREFIX = "/c/"
CLAIM_PREFIX = "/claim/"


@dataclass(frozen=True, slots=True)
class TrackingUrls:
    """Mints pixel, click and claim URLs for one enrolled rep (a ``UrlMinter``)."""

    enrollment: Enrollment
    clock: Callable[[], float] = field(default=time.time)

    @property
    def _base(self) -> str:
        return self.enrollment.server_url.rstrip("/")

    def _now(self) -> int:
        return int(self.clock())

    def pixel(self, message_key: str, recipient_key: str | None) -> str:
        """The pixel URL for one message (and recipient, unless shared)."""
        e = self.enrollment
        token = tokens.mint_open(e.signing_key, e.user_id, message_key, recipient_key, self._now())
        return f"{self._base}{PIXEL_PREFIX}{token}{PIXEL_SUFFIX}"

    def click(self, message_key: str, recipient_key: str | None, index: int, target: str) -> str:
        """The tracked URL that redirects to ``target``."""
        e = self.enrollment
        token = tokens.mint_click(
            e.signing_key, e.user_id, message_key, recipient_key, self._now(), index, target
        )
        return f"{self._base}{CLICK_PREFIX}{token}"

    def verify(self, token: str) -> tokens.Claims | None:
        """The token's claims if this rep signed it (their key and user id), else None.

        Only such tokens are the rep's own stale tracking, to be removed or
        unwrapped from an outgoing email (docs/rules.md rule 4)."""
        e = self.enrollment
        claims = tokens.verify(token, e.signing_key)
        return claims if claims is not None and claims.user_id == e.user_id else None

    def claim(self) -> str:
        """The URL that marks the browser opening it as the rep's own."""
        e = self.enrollment
        token = tokens.mint_claim(e.signing_key, e.user_id, self._now())
        return f"{self._base}{CLAIM_PREFIX}{token}"
