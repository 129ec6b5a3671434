"""Secrets out of log lines: libraries log HTTP headers at DEBUG."""

from __future__ import annotations

import logging
import re

# "Authorization: Bearer <token>" in any case, as websockets and uvicorn print it.
_BEARER = re.compile(r"(?i)(authorization\W{0,8}bearer\s+)[^\s'\",)\]]+")


def redact(text: str) -> str:
    """``text`` with bearer tokens replaced by ``[redacted]``."""
    return _BEARER.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """A handler filter that rewrites a record whose text carries a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only its text changes."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
