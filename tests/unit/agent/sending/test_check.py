"""The outgoing-server check answers in words before anything is sent anywhere
(the settings dialog's tests drive it against a real SMTP server)."""

from __future__ import annotations

from mailbeacon.agent.sending.check import UpstreamProbe, check_upstream


async def test_an_empty_url_asks_for_one() -> None:
    result = await check_upstream(UpstreamProbe("  ", "rep", "pw", False))
    assert result.ok is False
    assert "Enter the URL" in result.message


async def test_a_url_that_cannot_be_used_says_why() -> None:
    result = await check_upstream(UpstreamProbe("ftp://smtp.example.com", "rep", "pw", False))
    assert result.ok is False and result.message
