"""The built-in presets: found by domain, by MX host and by server host name."""

from __future__ import annotations

import pytest

from mailbeacon.agent.account import presets
from mailbeacon.agent.account.model import AuthMethod, Security, ServerSetting


@pytest.mark.parametrize(
    ("domain", "preset_id"),
    [
        ("gmail.com", "google"), ("googlemail.com", "google"), ("GMail.COM.", "google"),
        ("outlook.com", "microsoft"), ("hotmail.com", "microsoft"), ("live.com", "microsoft"),
        ("msn.com", "microsoft"), ("yahoo.com", "yahoo"), ("icloud.com", "icloud"),
        ("me.com", "icloud"), ("mac.com", "icloud"), ("fastmail.com", "fastmail"),
        ("zoho.com", "zoho"), ("gmx.net", "gmx"), ("gmx.de", "gmx"), ("gmx.com", "gmx-com"),
    ],
)  # fmt: skip
def test_a_providers_domain_finds_its_preset(domain: str, preset_id: str) -> None:
    preset = presets.by_domain(domain)
    assert preset is not None
    assert preset.id == preset_id


def test_a_custom_domain_has_no_preset() -> None:
    assert presets.by_domain("example.org") is None
    assert presets.by_domain("mail.gmail.com") is None  # a subdomain is not the provider's


def test_google_signs_in_with_oauth_at_accounts_google_com() -> None:
    google = presets.by_domain("gmail.com")
    assert google is not None
    assert google.smtp == ServerSetting("smtp.gmail.com", 465, Security.TLS)
    assert google.imap == ServerSetting("imap.gmail.com", 993, Security.TLS)
    assert google.auth == (AuthMethod.OAUTH2, AuthMethod.PASSWORD)
    assert google.issuer == "https://accounts.google.com"
    assert google.scopes == ("https://mail.google.com/",)


def test_microsoft_submits_with_starttls_and_asks_for_imap_and_smtp_scopes() -> None:
    microsoft = presets.by_domain("outlook.com")
    assert microsoft is not None
    assert microsoft.smtp == ServerSetting("smtp.office365.com", 587, Security.STARTTLS)
    assert microsoft.imap == ServerSetting("outlook.office365.com", 993, Security.TLS)
    assert microsoft.auth[0] is AuthMethod.OAUTH2
    assert microsoft.issuer == "https://login.microsoftonline.com/common/v2.0"
    assert presets.MICROSOFT_TENANT_PLACEHOLDER in microsoft.issuer
    assert " ".join(microsoft.scopes) == (
        "https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send offline_access"
    )


def test_password_providers_use_their_documented_servers() -> None:
    expected = {
        "yahoo": ("smtp.mail.yahoo.com", 465, "imap.mail.yahoo.com"),
        "icloud": ("smtp.mail.me.com", 587, "imap.mail.me.com"),
        "fastmail": ("smtp.fastmail.com", 465, "imap.fastmail.com"),
        "zoho": ("smtp.zoho.com", 465, "imap.zoho.com"),
        "gmx": ("mail.gmx.net", 587, "imap.gmx.net"),
    }
    for preset_id, (smtp, port, imap) in expected.items():
        preset = presets.by_id(preset_id)
        assert preset is not None
        assert (preset.smtp.host, preset.smtp.port, preset.imap.host) == (smtp, port, imap)
        assert preset.imap.port == 993
        assert preset.auth == (AuthMethod.PASSWORD,)
        assert preset.issuer is None


def test_every_domain_belongs_to_one_preset_only() -> None:
    domains = [domain for preset in presets.PRESETS for domain in preset.domains]
    assert len(domains) == len(set(domains))


@pytest.mark.parametrize(
    ("mx", "preset_id"),
    [
        (["aspmx.l.google.com."], "google"),
        (["ASPMX.L.GOOGLE.COM"], "google"),
        (["alt1.aspmx.l.google.com."], "google"),
        (["smtp.google.com."], "google"),
        (["aspmx2.googlemail.com."], "google"),
        (["acme-com.mail.protection.outlook.com."], "microsoft"),
    ],
)
def test_mx_hosts_mark_a_custom_domain_as_hosted(mx: list[str], preset_id: str) -> None:
    preset = presets.by_mx(mx)
    assert preset is not None
    assert preset.id == preset_id


@pytest.mark.parametrize(
    "mx",
    [
        [],
        ["mx.example.org."],
        ["google.com.evil.example."],  # the suffix must be the whole tail
        ["notgoogle.com."],
        ["mail.protection.outlook.com."],  # the bare suffix is no tenant's host
        ["mx.example.org.", "aspmx.l.google.com."],  # Google only as a backup
    ],
)
def test_other_mx_hosts_are_not_a_provider(mx: list[str]) -> None:
    assert presets.by_mx(mx) is None


def test_a_server_host_names_its_provider() -> None:
    google = presets.by_host("IMAP.gmail.com.")
    assert google is not None
    assert google.id == "google"
    assert presets.by_host("imap.example.org") is None
