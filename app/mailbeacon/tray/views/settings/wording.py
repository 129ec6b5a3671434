"""The settings dialog's words and layout: which tab and group holds each key, and how
each key is named, in the words of the rep's mail client.

A rep knows "Outgoing mail server" and "Incoming mail" from their mail client's
account settings, not SMTP, upstream, relay or IMAP; the dialog names things the
way the client does (issue 20). Every key has a place in ``TABS`` (a key nobody
placed still lands on an "Other" tab, so a new key is never unreachable), and no
tab holds only one or two fields: small groups share a tab with their nearest
neighbour (privacy with tracking, start-at-login with notifications).
"""

from __future__ import annotations

# Tab -> group -> keys (settings and secrets), in the order shown.
TABS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("Account", (
        ("You", ("account.name", "account.email", "account.auth")),
        ("Sign-in with your mail provider (from your administrator)", (
            "oauth.issuer", "oauth.client_id", "oauth.scopes", "oauth.client_secret",
        )),
    )),
    ("Sending", (
        ("Outgoing mail server", (
            "upstream.url", "upstream.user", "upstream.password", "upstream.allow_plain",
        )),
        ("Mail client connection (what your mail client sends to)", (
            "relay.host", "relay.port", "relay.user", "relay.password",
            "relay.max_message_bytes",
        )),
    )),
    ("Incoming mail", (
        ("Your inbox (for replies)", ("imap.url", "imap.password", "imap.allow_plain")),
        ("Sent folder", ("sent_cleanup.enabled",)),
    )),
    ("Tracking", (
        ("New emails", ("defaults.track", "defaults.log", "defaults.remind_days")),
        ("How tracking works", (
            "tracking.opens", "tracking.clicks", "tracking.per_recipient",
            "tracking.settle_seconds", "tracking.repeat_window_seconds",
            "tracking.self_window_minutes", "tracking.click_token_max_days",
        )),
        ("Privacy", ("privacy.enabled", "privacy.truncate_ip")),
    )),
    ("Tracking server", (
        ("Where opens are counted", (
            "server.mode", "server.url", "server.enrollment", "server.listen",
            "server.public_url", "server.allow_plain", "server.trusted_proxies",
        )),
    )),
    ("Notifications", (
        ("Notify me of", (
            "notify.opens", "notify.clicks", "notify.replies", "notify.delivery_failures",
        )),
        ("Pause", ("notify.paused_until",)),
        ("This computer", ("app.language", "app.autostart")),
    )),
)
ACCOUNT_TAB = "Account"  # where the "Set up your email account" button goes
CHECKS_TAB = "Tracking server"  # where "Mark this browser" and "Test tracking" go

# The words shown for each key; a key missing here shows as itself.
LABELS: dict[str, str] = {
    "account.name": "Your name (as recipients see it)",
    "account.email": "Your email address",
    "account.auth": "Sign in with",
    "server.mode": "Count opens",
    "server.url": "Team server address",
    "server.enrollment": "Team link",
    "server.listen": "This computer listens on",
    "server.public_url": "Address in your emails",
    "server.allow_plain": "Allow an unencrypted (http://) team server",
    "server.trusted_proxies": "Trusted local proxies (addresses)",
    "relay.host": "Server",
    "relay.port": "Port",
    "relay.user": "User name",
    "relay.password": "Password",
    "relay.max_message_bytes": "Largest email",
    "upstream.url": "Server",
    "upstream.user": "User name",
    "upstream.password": "Password",
    "upstream.allow_plain": "Allow an unencrypted connection to another computer",
    "defaults.track": "Track opens and clicks",
    "defaults.log": "Log a copy on the contacts' records",
    "defaults.remind_days": "Remind me if no reply in (days, 0: off)",
    "tracking.opens": "Track opens (an invisible image; off: clicks only)",
    "tracking.clicks": "Track clicks (links go through the tracking server)",
    "tracking.self_window_minutes": "Opens from your address are yours for",
    "tracking.click_token_max_days": "Tracked links keep working for",
    "tracking.per_recipient": "One copy per recipient",
    "tracking.settle_seconds": "Wait before notifying",
    "tracking.repeat_window_seconds": "Repeated opens count once within",
    "oauth.issuer": "Sign-in provider (issuer)",
    "oauth.client_id": "Client ID",
    "oauth.scopes": "Scopes",
    "oauth.client_secret": "Client secret (some providers)",
    "privacy.enabled": "Track contacts without a lawful basis as \"Someone\"",
    "privacy.truncate_ip": "Keep only the network part of IP addresses",
    "notify.opens": "Opens",
    "notify.clicks": "Clicks",
    "notify.replies": "Replies",
    "notify.delivery_failures": "Emails that could not be delivered",
    "notify.paused_until": "Paused until",
    "imap.url": "Inbox",
    "imap.password": "Password",
    "imap.allow_plain": "Allow an unencrypted connection to another computer",
    "sent_cleanup.enabled": "Remove the extra per-recipient copies from Sent",
    "app.autostart": "Start MailBeacon when I log in",
    "app.language": "Language",
}
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "server.mode": {
        "embedded": "On this computer",
        "remote": "On your team's server (team link)",
    },
    "account.auth": {
        "password": "Password (or app password)",
        "oauth2": "Google / Microsoft sign-in",
    },
    # Each language in its own words: a rep who cannot read the current one finds theirs.
    "app.language": {
        "system": "As the system",
        "en": "English",
        "pl": "Polski",
    },
}
SUFFIXES = {
    "relay.max_message_bytes": " MB",
    "tracking.settle_seconds": " s",
    "tracking.repeat_window_seconds": " s",
    "tracking.self_window_minutes": " min",
    "tracking.click_token_max_days": " days",
}
PLACEHOLDERS = {
    "server.url": "https://track.example.com",
    "server.public_url": "empty: http://<listen address>",
    "upstream.url": "smtps://smtp.example.com:465 or smtp+starttls://…:587",
    "imap.url": "imaps://you@imap.example.com (empty: replies not watched)",
}
# Notes under a field, for what its label cannot say in a few words.
NOTES = {
    "relay.host": "Type these into your mail client's outgoing (SMTP) server settings.",
    "relay.password": "After changing it, enter the new password in your mail client too.",
    "server.enrollment": "Paste the link your administrator sent you.",
}

PER_RECIPIENT_TRADE_OFF = (
    "Each recipient gets their own copy with their own pixel, so opens name them; "
    "some providers then keep several copies in Sent."
)
OPEN_TRACKING_COST = (
    "Some company spam filters add a few points to short emails that contain an image, "
    "and the open-tracking image counts like a signature logo. Clicks only sends no "
    "image, so it costs nothing there; you then learn of an open from the first click."
)
NO_ENROLLMENT = (
    "There is no tracking server yet. On this computer, start MailBeacon once and it "
    "creates one; for your team's server, paste the team link above."
)
BAD_TEAM_LINK = (
    "This is not a complete team link: copy it again from your administrator's message."
)


def label_for(key: str) -> str:
    """The words shown for ``key``."""
    return LABELS.get(key, key)
