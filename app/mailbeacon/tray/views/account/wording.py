"""The account flow's words: what was found and where from, the servers, the buttons.

Plain words for a rep who has never heard of SMTP: where a technical name helps the
rep match what a provider's help page says, it comes in brackets ("(SRV)", "(MX)").
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.agent.account import presets
from mailbeacon.agent.account.model import AuthMethod, Discovered, ServerSetting, Source
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.views.account.manual import SECURITY_LABELS

LOOKING_UP = mark("Looking up your mail servers…")
CHECKING = mark("Checking your outgoing and incoming mail…")
SIGNING_IN = mark("Finish signing in in your browser…")
IN_BROWSER = mark(
    "Your browser opened a sign-in page. Once you have signed in there, MailBeacon "
    "checks your outgoing and incoming mail."
)
# Where the servers were found, said the way a rep understands it.
FOUND_WHERE = {
    Source.SRV: mark("in your domain's DNS (SRV)"),
    Source.AUTOCONFIG: mark("from your provider's configuration file"),
    Source.PROBE: mark("by trying the usual servers"),
}
SIGN_IN_WITH = {"google": mark("Sign in with Google"),
                "microsoft": mark("Sign in with Microsoft")}
PROVIDER_SHORT = {"google": "Google", "microsoft": "Microsoft"}
WHOLE_ADDRESS = mark("Type your whole email address, like anna@yourcompany.com.")
NOT_FOUND_HINT = mark("Type them below: your email provider's help pages list them.")


# ---------------------------------------------------------------- words


def provider_name(found: Discovered) -> str | None:
    """The provider's name ("Gmail / Google Workspace"), when it is a built-in one."""
    preset = presets.by_id(found.provider) if found.provider else None
    return preset.name if preset else None


def found_sentence(found: Discovered, tr: Language = ENGLISH) -> str:
    """What was found and where from, in one line."""
    name = provider_name(found)
    if found.source is Source.MANUAL:
        return tr.t("Using the servers you entered")
    if found.source is Source.PRESET and name:
        return tr.t("Found {provider} settings (built in)", provider=name)
    if found.source is Source.MX and name:
        return tr.t("Found {provider} settings: your domain's mail goes there (MX)",
                    provider=name)
    where = tr.t(FOUND_WHERE[found.source]) if found.source in FOUND_WHERE else ""
    if name:
        return tr.t("Found {provider} settings {where}", provider=name, where=where).strip()
    return tr.t("Found your mail servers {where}", where=where).strip()


def server_line(setting: ServerSetting, tr: Language = ENGLISH) -> str:
    """``smtp.gmail.com, port 465, SSL/TLS``."""
    return tr.t("{host}, port {port}, {security}", host=setting.host, port=setting.port,
                security=tr.t(SECURITY_LABELS[setting.security]))


def sign_in_label(found: Discovered, tr: Language = ENGLISH) -> str | None:
    """The sign-in button's words, or None when only a password works."""
    if AuthMethod.OAUTH2 not in found.auth or not found.issuer:
        return None
    words = SIGN_IN_WITH.get(found.provider or "")
    return tr.t(words) if words else tr.t("Sign in")


def looks_like_email(text: str) -> bool:
    """Roughly name@domain.tld (the agent checks it properly)."""
    local, at, domain = text.partition("@")
    return bool(local and at and "." in domain.strip(".") and " " not in text)


@dataclass(frozen=True, slots=True)
class Who:
    """The rep's name and address as typed."""

    name: str
    email: str
