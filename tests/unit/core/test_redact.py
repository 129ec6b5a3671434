"""No bearer token reaches a log line, whatever library printed it."""

from __future__ import annotations

import logging

import pytest

from mailbeacon.core.redact import RedactSecrets, redact


@pytest.mark.parametrize(
    "line",
    [
        "> Authorization: Bearer abc.DEF-123_x",
        "< authorization: Bearer abc.DEF-123_x",
        "headers=[('authorization', 'Bearer abc.DEF-123_x')]",
        "{'Authorization': 'Bearer abc.DEF-123_x'}",
    ],
)
def test_bearer_tokens_are_redacted(line: str) -> None:
    assert "abc.DEF-123_x" not in redact(line)
    assert "[redacted]" in redact(line)


def test_the_filter_rewrites_the_record_and_keeps_it(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactSecrets())
    with caplog.at_level(logging.DEBUG, logger="test.redact"):
        logger.debug("> %s: %s", "Authorization", "Bearer s3cr3t-token")
    assert "s3cr3t-token" not in caplog.text and "[redacted]" in caplog.text
