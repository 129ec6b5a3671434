"""The account flow's words: what was found and where from, the servers, the buttons.

Plain words for a rep who has never heard of SMTP: where a technical name helps the
rep match what a provider's help page says, it comes in brackets ("(SRV)", "(MX)").
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.agent.account import presets
from mailbeacon.agent.account.model import AuthMethod, Discovered, ServerSetting, Source
from mailbeacon.tray.views.account.manual import SECURITY_LABELS

LOOKING_UP = "Looking up your mail servers…"
CHECKING = "Checking your outgoing and incoming mail…"
SIGNING_IN = "Finish signing in in your browser…"
IN_BROWSER = (
    "Your browser opened a sign-in page. Once you have signed in there, MailBeacon "
    "checks your outgoing and incoming mail."
)
# Where the servers were found, said the way a rep understands it.
FOUND_WHERE = {
    Source.SRV: "in your domain's DNS (SRV)",
    Source.AUTOCONFIG: "from your provider's configuration file",
    Source.PROBE: "by trying the usual servers",
}
SIGN_IN_WITH = {"google": "Sign in with Google", "microsoft": "Sign in with Microsoft"}
PROVIDER_SHORT = {"google": "Google", "microsoft": "Microsoft"}
WHOLE_ADDRESS = "Type your whole email address, like anna@yourcompany.com."
NOT_FOUND_HINT = "Type them below: your email provider's help pages list them."


# ---------------------------------------------------------------- words


def provider_name(found: Discovered) -> str | None:
    """The provider's name ("Gmail / Google Workspace"), when it is a built-in one."""
    preset = presets.by_id(found.provider) if found.provider else None
    return preset.name if preset else None


def found_sentence(found: Discovered) -> str:
    """What was found and where from, in one line."""
    name = provider_name(found)
    if found.source is Source.MANUAL:
        return "Using the servers you entered"
    if found.source is Source.PRESET and name:
        return f"Found {name} settings (built in)"
    if found.source is Source.MX and name:
        return f"Found {name} settings: your domain's mail goes there (MX)"
    where = FOUND_WHERE.get(found.source, "")
    what = f"{name} settings" if name else "your mail servers"
    return f"Found {what} {where}".strip()


def server_line(setting: ServerSetting) -> str:
    """``smtp.gmail.com, port 465, SSL/TLS``."""
    return f"{setting.host}, port {setting.port}, {SECURITY_LABELS[setting.security]}"


def sign_in_label(found: Discovered) -> str | None:
    """The sign-in button's words, or None when only a password works."""
    if AuthMethod.OAUTH2 not in found.auth or not found.issuer:
        return None
    return SIGN_IN_WITH.get(found.provider or "", "Sign in")


def looks_like_email(text: str) -> bool:
    """Roughly name@domain.tld (the agent checks it properly)."""
    local, at, domain = text.partition("@")
    return bool(local and at and "." in domain.strip(".") and " " not in text)


@dataclass(frozen=True, slots=True)
class Who:
    """The rep's name and address as typed."""

    name: str
    email: str
