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

from mailbeacon.core.language import ENGLISH, Language, mark

# Tab -> group -> keys (settings and secrets), in the order shown.
TABS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    (mark("Account"), (
        (mark("You"), ("account.name", "account.email", "account.auth")),
        (mark("Sign-in with your mail provider (from your administrator)"), (
            "oauth.issuer", "oauth.client_id", "oauth.scopes", "oauth.client_secret",
        )),
    )),
    (mark("Sending"), (
        (mark("Outgoing mail server"), (
            "upstream.url", "upstream.user", "upstream.password", "upstream.allow_plain",
        )),
        (mark("Mail client connection (what your mail client sends to)"), (
            "relay.host", "relay.port", "relay.user", "relay.password",
            "relay.max_message_bytes",
        )),
    )),
    (mark("Incoming mail"), (
        (mark("Your inbox (for replies)"), ("imap.url", "imap.password", "imap.allow_plain")),
        (mark("Sent folder"), ("sent_cleanup.enabled",)),
    )),
    (mark("Tracking"), (
        (mark("New emails"), ("defaults.track", "defaults.log", "defaults.remind_days")),
        (mark("How tracking works"), (
            "tracking.opens", "tracking.clicks", "tracking.per_recipient",
            "tracking.settle_seconds", "tracking.repeat_window_seconds",
            "tracking.self_window_minutes", "tracking.click_token_max_days",
        )),
        (mark("Privacy"), ("privacy.enabled", "privacy.truncate_ip")),
    )),
    (mark("Tracking server"), (
        (mark("Where opens are counted"), (
            "server.mode", "server.url", "server.enrollment", "server.listen",
            "server.public_url", "server.allow_plain", "server.trusted_proxies",
        )),
    )),
    (mark("Notifications"), (
        (mark("Notify me of"), (
            "notify.opens", "notify.clicks", "notify.replies", "notify.delivery_failures",
        )),
        (mark("Pause"), ("notify.paused_until",)),
        (mark("This computer"), ("app.language", "app.autostart")),
    )),
)
ACCOUNT_TAB = "Account"  # where the "Set up your email account" button goes
CHECKS_TAB = "Tracking server"  # where "Mark this browser" and "Test tracking" go

# The words shown for each key; a key missing here shows as itself.
LABELS: dict[str, str] = {
    "account.name": mark("Your name (as recipients see it)"),
    "account.email": mark("Your email address"),
    "account.auth": mark("Sign in with"),
    "server.mode": mark("Count opens"),
    "server.url": mark("Team server address"),
    "server.enrollment": mark("Team link"),
    "server.listen": mark("This computer listens on"),
    "server.public_url": mark("Address in your emails"),
    "server.allow_plain": mark("Allow an unencrypted (http://) team server"),
    "server.trusted_proxies": mark("Trusted local proxies (addresses)"),
    "relay.host": mark("Server"),
    "relay.port": mark("Port"),
    "relay.user": mark("User name"),
    "relay.password": mark("Password"),
    "relay.max_message_bytes": mark("Largest email"),
    "upstream.url": mark("Server"),
    "upstream.user": mark("User name"),
    "upstream.password": mark("Password"),
    "upstream.allow_plain": mark("Allow an unencrypted connection to another computer"),
    "defaults.track": mark("Track opens and clicks"),
    "defaults.log": mark("Log a copy on the contacts' records"),
    "defaults.remind_days": mark("Remind me if no reply in (days, 0: off)"),
    "tracking.opens": mark("Track opens (an invisible image; off: clicks only)"),
    "tracking.clicks": mark("Track clicks (links go through the tracking server)"),
    "tracking.self_window_minutes": mark("Opens from your address are yours for"),
    "tracking.click_token_max_days": mark("Tracked links keep working for"),
    "tracking.per_recipient": mark("One copy per recipient"),
    "tracking.settle_seconds": mark("Wait before notifying"),
    "tracking.repeat_window_seconds": mark("Repeated opens count once within"),
    "oauth.issuer": mark("Sign-in provider (issuer)"),
    "oauth.client_id": mark("Client ID"),
    "oauth.scopes": mark("Scopes"),
    "oauth.client_secret": mark("Client secret (some providers)"),
    "privacy.enabled": mark("Track contacts without a lawful basis as \"Someone\""),
    "privacy.truncate_ip": mark("Keep only the network part of IP addresses"),
    "notify.opens": mark("Opens"),
    "notify.clicks": mark("Clicks"),
    "notify.replies": mark("Replies"),
    "notify.delivery_failures": mark("Emails that could not be delivered"),
    "notify.paused_until": mark("Paused until"),
    "imap.url": mark("Inbox"),
    "imap.password": mark("Password"),
    "imap.allow_plain": mark("Allow an unencrypted connection to another computer"),
    "sent_cleanup.enabled": mark("Remove the extra per-recipient copies from Sent"),
    "app.autostart": mark("Start MailBeacon when I log in"),
    "app.language": mark("Language"),
}
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "server.mode": {
        "embedded": mark("On this computer"),
        "remote": mark("On your team's server (team link)"),
    },
    "account.auth": {
        "password": mark("Password (or app password)"),
        "oauth2": mark("Google / Microsoft sign-in"),
    },
    # Each language in its own words: a rep who cannot read the current one finds theirs.
    "app.language": {
        "system": mark("As the system"),
        "en": mark("English"),
        "pl": mark("Polski"),
    },
}
SUFFIXES = {
    "relay.max_message_bytes": mark(" MB"),
    "tracking.settle_seconds": mark(" s"),
    "tracking.repeat_window_seconds": mark(" s"),
    "tracking.self_window_minutes": mark(" min"),
    "tracking.click_token_max_days": mark(" days"),
}
PLACEHOLDERS = {
    "server.url": mark("https://track.example.com"),
    "server.public_url": mark("empty: http://<listen address>"),
    "upstream.url": mark("smtps://smtp.example.com:465 or smtp+starttls://…:587"),
    "imap.url": mark("imaps://you@imap.example.com (empty: replies not watched)"),
}
# Notes under a field, for what its label cannot say in a few words.
NOTES = {
    "relay.host": mark("Type these into your mail client's outgoing (SMTP) server settings."),
    "relay.password": mark("After changing it, enter the new password in your mail client too."),
    "server.enrollment": mark("Paste the link your administrator sent you."),
}

PER_RECIPIENT_TRADE_OFF = mark(
    "Each recipient gets their own copy with their own pixel, so opens name them; "
    "some providers then keep several copies in Sent."
)
OPEN_TRACKING_COST = mark(
    "Some company spam filters add a few points to short emails that contain an image, "
    "and the open-tracking image counts like a signature logo. Clicks only sends no "
    "image, so it costs nothing there; you then learn of an open from the first click."
)
NO_ENROLLMENT = mark(
    "There is no tracking server yet. On this computer, start MailBeacon once and it "
    "creates one; for your team's server, paste the team link above."
)
BAD_TEAM_LINK = mark(
    "This is not a complete team link: copy it again from your administrator's message."
)


def label_for(key: str, tr: Language = ENGLISH) -> str:
    """The words shown for ``key`` in ``tr``'s language."""
    return tr.t(LABELS[key]) if key in LABELS else key
