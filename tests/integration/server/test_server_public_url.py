"""The operator is told what a chosen public URL costs every rep's mail (issue 21)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.helpers.server import running_server


@pytest.mark.expect_log("public URL:")
async def test_a_bare_ip_over_http_is_named_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailbeacon.server")
    async with running_server(tmp_path / "server.db", public_url="http://198.51.100.7:8725"):
        pass
    said = " ".join(r.getMessage() for r in caplog.records if "public URL:" in r.getMessage())
    assert "bare IP address" in said and "not https" in said


async def test_a_named_https_domain_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailbeacon.server")
    async with running_server(tmp_path / "server.db", public_url="https://track.acme.com"):
        pass
    assert not [r for r in caplog.records if "public URL:" in r.getMessage()]
