"""Parsing --upstream URLs: TLS by default, plain SMTP only to this machine."""

from __future__ import annotations

import pytest

from mailbeacon.agent.sending.upstream import Credentials
from mailbeacon.agent.settings.mail_urls import UpstreamConfigError, UpstreamURL, parse_upstream


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtps://mail.example.com", UpstreamURL("tls", "mail.example.com", 465)),
        ("smtps://mail.example.com:2465", UpstreamURL("tls", "mail.example.com", 2465)),
        ("smtp+starttls://smtp.example.com", UpstreamURL("starttls", "smtp.example.com", 587)),
        ("SMTP+STARTTLS://Smtp.Example.com:25/", UpstreamURL("starttls", "smtp.example.com", 25)),
        ("smtp://127.0.0.1:2525", UpstreamURL("plain", "127.0.0.1", 2525)),
        ("smtp://localhost", UpstreamURL("plain", "localhost", 25)),
        ("smtp://[::1]:25", UpstreamURL("plain", "::1", 25)),
        (
            "smtps://rep%40example.com@mail.example.com",
            UpstreamURL("tls", "mail.example.com", 465, "rep@example.com"),
        ),
    ],
)
def test_valid_urls(url: str, expected: UpstreamURL) -> None:
    assert parse_upstream(url) == expected


def test_plain_smtp_to_another_host_needs_explicit_permission() -> None:
    with pytest.raises(UpstreamConfigError) as refused:
        parse_upstream("smtp://mail.example.com:25")
    message = str(refused.value)
    assert "unencrypted" in message and "smtps://mail.example.com" in message
    assert "upstream.allow_plain" in message
    allowed = parse_upstream("smtp://mail.example.com:25", allow_plain=True)
    assert allowed == UpstreamURL("plain", "mail.example.com", 25)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://mail.example.com", "smtps://"),
        ("mail.example.com:465", "smtps://"),
        ("smtps://", "names no server"),
        ("smtps://host:notaport", "not valid"),
        ("smtps://host:99999", "not valid"),
        ("smtps://host/path", "extra parts"),
        ("smtps://rep:hunter2@mail.example.com", "keyring"),
    ],
)
def test_bad_urls_get_a_clear_message(url: str, words: str) -> None:
    with pytest.raises(UpstreamConfigError, match=words) as refused:
        parse_upstream(url)
    assert "hunter2" not in str(refused.value)


def test_url_prints_back_without_secrets() -> None:
    assert str(parse_upstream("smtp+starttls://rep@smtp.example.com")) == (
        "smtp+starttls://smtp.example.com:587"
    )
    assert str(UpstreamURL("plain", "::1", 25)) == "smtp://[::1]:25"


def test_credentials_never_show_the_password() -> None:
    creds = Credentials("rep@example.com", "s3cret-Pw")
    assert "s3cret-Pw" not in repr(creds) and "s3cret-Pw" not in str(creds)
