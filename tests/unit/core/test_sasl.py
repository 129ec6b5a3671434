"""SASL bearer logins as bytes: XOAUTH2, OAUTHBEARER (RFC 7628), the mechanism, the error."""

from __future__ import annotations

import base64
import json

import pytest

from mailbeacon.core import sasl

USER, TOKEN = "rep@example.test", "ya29.A0-b_c~d+e/f=="


def test_xoauth2_initial_response_is_googles_form() -> None:
    assert sasl.xoauth2_response(USER, TOKEN) == (
        b"user=rep@example.test\x01auth=Bearer ya29.A0-b_c~d+e/f==\x01\x01"
    )


def test_oauthbearer_initial_response_has_the_gs2_header_host_and_port() -> None:
    assert sasl.oauthbearer_response(USER, TOKEN, "mail.example.test", 587) == (
        b"n,a=rep@example.test,\x01host=mail.example.test\x01port=587"
        b"\x01auth=Bearer ya29.A0-b_c~d+e/f==\x01\x01"
    )


def test_oauthbearer_escapes_comma_and_equals_in_the_user() -> None:
    response = sasl.oauthbearer_response("a=b,c@example.test", TOKEN, "h", 1)
    assert response.startswith(b"n,a=a=3Db=2Cc@example.test,\x01")


def test_initial_response_follows_the_mechanism() -> None:
    assert sasl.initial_response(sasl.XOAUTH2, USER, TOKEN, "h", 25) == (
        sasl.xoauth2_response(USER, TOKEN)
    )
    assert sasl.initial_response(sasl.OAUTHBEARER, USER, TOKEN, "h", 25) == (
        sasl.oauthbearer_response(USER, TOKEN, "h", 25)
    )


def test_encode_is_plain_base64() -> None:
    encoded = sasl.encode(sasl.xoauth2_response(USER, TOKEN))
    assert base64.b64decode(encoded) == sasl.xoauth2_response(USER, TOKEN)
    assert sasl.encode(b"") == ""


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"], sasl.OAUTHBEARER),
        (["plain", "xoauth2"], sasl.XOAUTH2),  # aiosmtplib lower-cases them
        (["oauthbearer"], sasl.OAUTHBEARER),
        (["PLAIN", "LOGIN"], None),
        ([], None),
    ],
)
def test_the_mechanism_prefers_oauthbearer(offered: list[str], chosen: str | None) -> None:
    assert sasl.choose_mechanism(offered) == chosen


def test_the_error_reply_ends_the_exchange_per_mechanism() -> None:
    assert sasl.error_reply(sasl.OAUTHBEARER) == b"\x01"
    assert sasl.error_reply(sasl.XOAUTH2) == b""


@pytest.mark.parametrize(
    "token", ["with space", "line\r\nbreak", "sep\x01arated", "", "=leading"]
)
def test_a_token_that_could_break_the_framing_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="access token"):
        sasl.xoauth2_response(USER, token)


@pytest.mark.parametrize("user", ["", "a\x01b", "a\r\nb"])
def test_a_user_that_could_break_the_framing_is_refused(user: str) -> None:
    with pytest.raises(ValueError, match="user name"):
        sasl.oauthbearer_response(user, TOKEN, "h", 1)


def _challenge(body: object) -> str:
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_an_rfc7628_error_challenge_is_read() -> None:
    refusal = sasl.parse_refusal(
        _challenge(
            {
                "status": "invalid_token",
                "scope": "mail",
                "openid-configuration": "https://id.example/.well-known/openid-configuration",
            }
        )
    )
    assert refusal == sasl.BearerRefusal(
        "invalid_token", "mail", "https://id.example/.well-known/openid-configuration"
    )
    assert refusal.token_rejected
    assert refusal.describe() == "the sign-in token was not accepted (scope mail)"


def test_an_xoauth2_error_challenge_is_read_from_bytes() -> None:
    raw = _challenge({"status": "401", "schemes": "bearer", "scope": "mail"}).encode()
    refusal = sasl.parse_refusal(raw)
    assert refusal.status == "401" and refusal.token_rejected


def test_insufficient_scope_is_not_a_token_to_refresh() -> None:
    refusal = sasl.parse_refusal(_challenge({"status": "insufficient_scope"}))
    assert not refusal.token_rejected
    assert refusal.describe() == "the sign-in does not allow mail access"


@pytest.mark.parametrize("garbage", ["not base64!", _challenge([1, 2]), "", "e30"])
def test_a_challenge_that_is_not_json_still_means_refused(garbage: str) -> None:
    refusal = sasl.parse_refusal(garbage)
    assert refusal.status == ""
    assert refusal.token_rejected


def test_an_unknown_status_is_named() -> None:
    refusal = sasl.parse_refusal(_challenge({"status": "teapot"}))
    assert refusal.describe() == "the server refused the sign-in (teapot)"
