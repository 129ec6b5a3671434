"""The enrollment key: everything an agent needs to talk to its tracking server."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

PREFIX = "mbk1_"


class EnrollmentError(ValueError):
    """The enrollment key is not one MailBeacon issued."""


@dataclass(frozen=True, slots=True)
class Enrollment:
    """Server URL, user and secrets of one enrolled rep."""

    server_url: str
    user_id: int
    api_token: str
    signing_key: bytes

    def encode(self) -> str:
        """The opaque one-line key that ``server add-user`` prints."""
        payload = {
            "u": self.server_url,
            "i": self.user_id,
            "t": self.api_token,
            "k": base64.urlsafe_b64encode(self.signing_key).decode("ascii"),
        }
        raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, key: str) -> Enrollment:
        """Parse a key; raises EnrollmentError with a message for the rep."""
        text = key.strip()
        if not text.startswith(PREFIX):
            raise EnrollmentError("this is not a MailBeacon enrollment key (it should start "
                                  f"with {PREFIX!r})")
        try:
            body = text[len(PREFIX):]
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            data = json.loads(raw)
            enrollment = cls(
                server_url=str(data["u"]).rstrip("/"),
                user_id=int(data["i"]),
                api_token=str(data["t"]),
                signing_key=base64.urlsafe_b64decode(str(data["k"])),
            )
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise EnrollmentError("the enrollment key is damaged or incomplete; copy it "
                                  "again from `mailbeacon server add-user`") from exc
        if not enrollment.server_url.startswith(("http://", "https://")):
            raise EnrollmentError("the enrollment key names no valid server URL")
        return enrollment


LINK_PREFIX = "mailbeacon://enroll"


def key_from_link(text: str) -> str:
    """The key of an enrollment link (``mailbeacon://enroll?key=…``, what the console
    hands out and the desktop entry opens), or ``text`` itself when it is a bare key.
    Raises EnrollmentError for a link without a key."""
    text = text.strip()
    if not text.lower().startswith(LINK_PREFIX):
        return text
    query = parse_qs(urlsplit(text).query)
    keys = query.get("key", [])
    if not keys or not keys[-1].strip():
        raise EnrollmentError("this enrollment link holds no key; copy it again from the email")
    return keys[-1].strip()
