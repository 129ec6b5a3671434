"""Built-in presets: the big mail providers' servers, sign-in and the domains they serve.

Data, looked up three ways by discovery (``discovery.py``): by the address's domain
(``gmail.com``), by the domain's MX hosts (a custom domain hosted by Google Workspace
or Microsoft 365), and by a server's host name found some other way (an SRV record or
autoconfig file naming ``imap.gmail.com`` is Google's, with its OAuth 2.0 issuer).

Hosts and ports are the providers' documented ones. Providers whose OAuth 2.0 needs
a client registered with them that MailBeacon does not have (Yahoo, iCloud, Fastmail,
Zoho, GMX) sign in with an app password.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.agent.account.model import AuthMethod, Security, ServerSetting

OAUTH_AND_PASSWORD = (AuthMethod.OAUTH2, AuthMethod.PASSWORD)
PASSWORD_ONLY = (AuthMethod.PASSWORD,)

# Microsoft's multi-tenant ("common") endpoint. The tokens it issues name the rep's own
# tenant as issuer ("https://login.microsoftonline.com/{tenant-id}/v2.0"): an
# organisation that allows only its own app registrations replaces "common" with its
# tenant id (or domain); whoever checks the issuer must accept that form.
MICROSOFT_ISSUER = "https://login.microsoftonline.com/common/v2.0"
MICROSOFT_TENANT_PLACEHOLDER = "common"


@dataclass(frozen=True, slots=True)
class Preset:
    """One provider's servers, how to sign in, and what it serves."""

    id: str
    name: str
    smtp: ServerSetting
    imap: ServerSetting
    auth: tuple[AuthMethod, ...]
    domains: tuple[str, ...]
    mx_patterns: tuple[str, ...] = ()  # "host" exactly, "*.suffix" any host below
    issuer: str | None = None
    scopes: tuple[str, ...] = ()

    @property
    def hosts(self) -> frozenset[str]:
        """The preset's own server host names."""
        return frozenset({self.smtp.host, self.imap.host})


def _tls(host: str, port: int) -> ServerSetting:
    return ServerSetting(host, port, Security.TLS)


def _starttls(host: str, port: int) -> ServerSetting:
    return ServerSetting(host, port, Security.STARTTLS)


GOOGLE = Preset(
    id="google",
    name="Gmail / Google Workspace",
    smtp=_tls("smtp.gmail.com", 465),
    imap=_tls("imap.gmail.com", 993),
    auth=OAUTH_AND_PASSWORD,
    domains=("gmail.com", "googlemail.com"),
    mx_patterns=("aspmx.l.google.com", "*.googlemail.com", "*.google.com"),
    issuer="https://accounts.google.com",
    scopes=("https://mail.google.com/",),
)

MICROSOFT = Preset(
    id="microsoft",
    name="Outlook.com / Microsoft 365",
    smtp=_starttls("smtp.office365.com", 587),
    imap=_tls("outlook.office365.com", 993),
    # OAuth 2.0 first; SMTP AUTH with a password still works where the tenant allows it.
    auth=OAUTH_AND_PASSWORD,
    domains=(
        "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com",
        "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es",
        "outlook.de", "outlook.fr", "outlook.es", "outlook.it", "live.co.uk", "live.fr",
        "live.de",
    ),
    mx_patterns=("*.mail.protection.outlook.com",),
    issuer=MICROSOFT_ISSUER,
    scopes=(
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ),
)

YAHOO = Preset(
    id="yahoo",
    name="Yahoo Mail",
    smtp=_tls("smtp.mail.yahoo.com", 465),
    imap=_tls("imap.mail.yahoo.com", 993),
    auth=PASSWORD_ONLY,
    domains=(
        "yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
        "yahoo.es", "yahoo.it", "yahoo.ca", "yahoo.com.au", "yahoo.co.jp",
    ),
)

ICLOUD = Preset(
    id="icloud",
    name="iCloud Mail",
    smtp=_starttls("smtp.mail.me.com", 587),
    imap=_tls("imap.mail.me.com", 993),
    auth=PASSWORD_ONLY,
    domains=("icloud.com", "me.com", "mac.com"),
)

FASTMAIL = Preset(
    id="fastmail",
    name="Fastmail",
    smtp=_tls("smtp.fastmail.com", 465),
    imap=_tls("imap.fastmail.com", 993),
    auth=PASSWORD_ONLY,
    domains=("fastmail.com", "fastmail.fm", "fastmail.net", "fastmail.org", "messagingengine.com"),
)

ZOHO = Preset(
    id="zoho",
    name="Zoho Mail",
    smtp=_tls("smtp.zoho.com", 465),
    imap=_tls("imap.zoho.com", 993),
    auth=PASSWORD_ONLY,
    domains=("zoho.com", "zohomail.com"),
)

ZOHO_EU = Preset(
    id="zoho-eu",
    name="Zoho Mail (EU)",
    smtp=_tls("smtp.zoho.eu", 465),
    imap=_tls("imap.zoho.eu", 993),
    auth=PASSWORD_ONLY,
    domains=("zoho.eu", "zohomail.eu"),
)

# GMX runs two platforms: gmx.net (Germany, Austria, Switzerland) and gmx.com.
GMX = Preset(
    id="gmx",
    name="GMX",
    smtp=_starttls("mail.gmx.net", 587),
    imap=_tls("imap.gmx.net", 993),
    auth=PASSWORD_ONLY,
    domains=("gmx.net", "gmx.de", "gmx.at", "gmx.ch"),
)

GMX_COM = Preset(
    id="gmx-com",
    name="GMX (gmx.com)",
    smtp=_starttls("mail.gmx.com", 587),
    imap=_tls("imap.gmx.com", 993),
    auth=PASSWORD_ONLY,
    domains=("gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"),
)

PRESETS: tuple[Preset, ...] = (
    GOOGLE, MICROSOFT, YAHOO, ICLOUD, FASTMAIL, ZOHO, ZOHO_EU, GMX, GMX_COM,
)  # fmt: skip

_BY_DOMAIN = {domain: preset for preset in PRESETS for domain in preset.domains}
_BY_HOST = {host: preset for preset in PRESETS for host in preset.hosts}


def normalise_host(name: str) -> str:
    """A DNS name as compared here: lower case, without the root's trailing dot."""
    return name.strip().rstrip(".").lower()


def by_id(preset_id: str) -> Preset | None:
    """The preset called ``preset_id`` ("google", "microsoft", ...), if any."""
    return next((preset for preset in PRESETS if preset.id == preset_id), None)


def by_domain(domain: str) -> Preset | None:
    """The preset that serves addresses at ``domain`` (``gmail.com`` → Google)."""
    return _BY_DOMAIN.get(normalise_host(domain))


def by_host(host: str) -> Preset | None:
    """The preset whose server ``host`` is (``imap.gmail.com`` → Google)."""
    return _BY_HOST.get(normalise_host(host))


def _matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def by_mx(mx_hosts: list[str]) -> Preset | None:
    """The provider hosting a domain whose MX hosts are ``mx_hosts`` (most preferred first).

    Only the most preferred host decides: a domain whose own server (or a filtering
    service) takes the mail first, with Google's MX only as a backup, is not Google's.
    """
    if not mx_hosts:
        return None
    host = normalise_host(mx_hosts[0])
    for preset in PRESETS:
        if any(_matches(host, pattern) for pattern in preset.mx_patterns):
            return preset
    return None
