"""OpenID discovery: which issuers are trusted, and what a bad document is told as.

The provider is a scripted httpx transport; a real one: tests/integration/agent/account.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailbeacon.agent.account.oauth import (
    OAuthError,
    ProviderMetadata,
    ProviderUnavailable,
    discover,
)


def _document(issuer: str, **changes: Any) -> dict[str, Any]:
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "device_authorization_endpoint": f"{issuer}/device/auth",
        "revocation_endpoint": f"{issuer}/token/revocation",
        "code_challenge_methods_supported": ["S256"],
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def _http(answer: httpx.Response, seen: list[str] | None = None) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(str(request.url))
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("issuer", [
    "https://login.example.test", "http://127.0.0.1:8080", "http://127.1.2.3",
    "http://localhost:9000", "http://[::1]:9000",
])  # fmt: skip
async def test_https_and_loopback_issuers_are_read_from_the_well_known_address(
    issuer: str,
) -> None:
    seen: list[str] = []
    http = _http(httpx.Response(200, json=_document(issuer)), seen)

    metadata = await discover(issuer + "/", http)

    assert seen == [f"{issuer}/.well-known/openid-configuration"]
    assert metadata == ProviderMetadata(
        issuer, f"{issuer}/auth", f"{issuer}/token", f"{issuer}/device/auth",
        f"{issuer}/token/revocation",
    )  # fmt: skip


@pytest.mark.parametrize("issuer", [
    "http://login.example.test", "http://10.0.0.5", "http://127.0.0.1.example.test",
    "ftp://127.0.0.1", "https://",
])  # fmt: skip
async def test_plain_http_elsewhere_is_refused_before_any_request(issuer: str) -> None:
    seen: list[str] = []
    with pytest.raises(OAuthError, match="must start with https://"):
        await discover(issuer, _http(httpx.Response(500), seen))
    assert seen == []


async def test_optional_endpoints_may_be_missing() -> None:
    issuer = "https://login.example.test"
    document = _document(issuer, device_authorization_endpoint=None, revocation_endpoint=None,
                         code_challenge_methods_supported=None)  # fmt: skip

    metadata = await discover(issuer, _http(httpx.Response(200, json=document)))

    assert metadata.device_authorization_endpoint is None
    assert metadata.revocation_endpoint is None


@pytest.mark.expect_log("names issuer")
async def test_a_document_of_another_issuer_is_not_trusted() -> None:
    document = _document("https://evil.example.test")
    with pytest.raises(OAuthError, match="belongs to another issuer"):
        await discover("https://login.example.test", _http(httpx.Response(200, json=document)))


async def test_an_endpoint_in_clear_text_is_refused() -> None:
    issuer = "https://login.example.test"
    document = _document(issuer, token_endpoint="http://login.example.test/token")
    with pytest.raises(OAuthError, match=r"token_endpoint \(http://login.example.test/token\)"):
        await discover(issuer, _http(httpx.Response(200, json=document)))


async def test_a_provider_without_pkce_s256_is_refused() -> None:
    issuer = "https://login.example.test"
    document = _document(issuer, code_challenge_methods_supported=["plain"])
    with pytest.raises(OAuthError, match="does not offer PKCE with S256"):
        await discover(issuer, _http(httpx.Response(200, json=document)))


async def test_a_document_without_a_token_endpoint_is_refused() -> None:
    issuer = "https://login.example.test"
    document = _document(issuer, token_endpoint=None)
    with pytest.raises(OAuthError, match="names no token_endpoint"):
        await discover(issuer, _http(httpx.Response(200, json=document)))


@pytest.mark.expect_log("answered HTTP 404")
async def test_a_missing_document_says_to_check_the_address() -> None:
    with pytest.raises(OAuthError) as raised:
        await discover("https://login.example.test", _http(httpx.Response(404)))
    assert str(raised.value) == (
        "https://login.example.test does not publish an OpenID configuration (HTTP 404). "
        "Check the sign-in provider's address."
    )


@pytest.mark.expect_log("no JSON object")
async def test_an_answer_that_is_not_json_is_refused() -> None:
    with pytest.raises(OAuthError, match="not an OAuth response"):
        await discover("https://login.example.test", _http(httpx.Response(200, text="<html>")))


@pytest.mark.expect_log("did not answer")
async def test_a_server_error_is_the_provider_being_unavailable() -> None:
    with pytest.raises(ProviderUnavailable, match=r"did not answer \(HTTP 502\)"):
        await discover("https://login.example.test", _http(httpx.Response(502)))
