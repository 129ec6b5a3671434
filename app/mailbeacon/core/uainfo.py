"""Which device and mail client a user agent names, for notification text (useragents: bots).

Built on the maintained ``ua-parser`` package (uap-core's regexes); mail-client
quirks it does not name are handled first: image proxies hide the device
("via Gmail"), Apple Mail sends WebKit without "Safari", Outlook's mobile apps
send ``Outlook-iOS``/``Outlook-Android``.

:func:`device_family` gives a coarse family ("iPhone", "Android", "Windows PC",
"Mac"...) for flagging an open from a new device as possibly forwarded (rule 7).
Families starting with ``"via "`` (proxies) and ``"unknown"`` say nothing about
the device and should never trigger that flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser

from mailbeacon.core.language import ENGLISH, Language

UNKNOWN = "unknown"
_MAX_CHARS = 1024

_PROXIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"GoogleImageProxy", re.IGNORECASE), "Gmail"),
    (re.compile(r"YahooMailProxy", re.IGNORECASE), "Yahoo Mail"),
    (re.compile(r"^\s*Mozilla/5\.0\s*$"), "Apple Mail Privacy Protection"),
)
_OUTLOOK_MOBILE = re.compile(r"Outlook-(iOS|Android)", re.IGNORECASE)
_WINDOWS_OFFICE = re.compile(r"ms-office|MSOffice", re.IGNORECASE)
_IOS_DEVICE = re.compile(r"\((iPhone|iPad|iPod)\b")
# An iOS/macOS web view without a browser token is a mail app's message view.
_BROWSER_TOKEN = re.compile(r"Safari/|CriOS|FxiOS|EdgiOS|OPiOS|GSA/|Chrome/|Firefox/")

_OS_NAMES = {
    "Mac OS X": "macOS",
    "Windows": "Windows",
    "iOS": "iOS",
    "Android": "Android",
    "Chrome OS": "ChromeOS",
    "Linux": "Linux",
    "Ubuntu": "Linux",
    "Fedora": "Linux",
    "Debian": "Linux",
}
_CLIENT_NAMES = {
    "Outlook": "Outlook",
    "MacOutlook": "Outlook",
    "Outlook-iOS": "Outlook",
    "Apple Mail": "Apple Mail",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Apple Mail",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "mail app",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The reader's mail client and device, as far as the user agent tells."""

    family: str  # the client: "Outlook", "Apple Mail", "Chrome"; "" if unknown
    os: str  # "Windows", "macOS", "iOS", "Android", "Linux", "ChromeOS"; "" if unknown
    device: str  # "iPhone", "iPad", "Mac", a phone model; "" if unknown
    label: str  # in English: "Outlook on Windows", "via Gmail" (:func:`label` words it)
    proxy: bool = False  # an image proxy (Gmail, Apple): ``family`` names the service


def describe(user_agent: str | None) -> ClientInfo:
    """The client and device behind ``user_agent`` (never raises)."""
    return _describe(user_agent[:_MAX_CHARS] if isinstance(user_agent, str) else "")


@lru_cache(maxsize=4096)
def _describe(agent: str) -> ClientInfo:
    if not agent.strip():
        return ClientInfo("", "", "", "unknown device")
    for pattern, via in _PROXIES:
        if pattern.search(agent):
            return ClientInfo(via, "", "", f"via {via}", proxy=True)
    result = ua_parser.parse(agent)
    os_name = _OS_NAMES.get(result.os.family, result.os.family) if result.os else ""
    if os_name == "Other":
        os_name = ""
    if not os_name and _WINDOWS_OFFICE.search(agent):
        os_name = "Windows"  # Outlook's Word-based renderer, Windows only
    device = _device(agent, result, os_name)
    family = _client(agent, result, os_name)
    return ClientInfo(family, os_name, device, _label(family, os_name, device))


def _client(agent: str, result: ua_parser.Result, os_name: str) -> str:
    mobile = _OUTLOOK_MOBILE.search(agent)
    if mobile:
        return "Outlook"
    family = result.user_agent.family if result.user_agent else ""
    if family == "Safari" and os_name == "macOS" and not _BROWSER_TOKEN.search(agent):
        return "Apple Mail"
    return _CLIENT_NAMES.get(family, family)


def _device(agent: str, result: ua_parser.Result, os_name: str) -> str:
    ios = _IOS_DEVICE.search(agent)
    if ios:
        return ios.group(1)
    if _OUTLOOK_MOBILE.search(agent) and "ios" in agent.lower():
        return "iPhone"
    device = result.device
    if device is None or device.family in ("Other", "Spider"):
        return "Mac" if os_name == "macOS" else ""
    if device.family.startswith("Generic"):
        return ""
    return str(device.family)


def _label(family: str, os_name: str, device: str) -> str:
    return label(ClientInfo(family, os_name, device, ""))


def label(info: ClientInfo, tr: Language = ENGLISH) -> str:
    """The client and device as a rep reads them in ``tr``: ``Outlook on Windows`` /
    ``Outlook (Windows)``, ``via Gmail`` / ``przez Gmail``, ``unknown device``."""
    if info.proxy:
        return tr.t("via {service}", service=info.family)
    where = info.device if info.device in ("iPhone", "iPad", "iPod") else info.os
    if info.os == "Android" and not where:
        where = "Android"
    if info.family and where:
        return tr.t("{client} on {system}", client=info.family, system=where)
    if info.family:
        return info.family
    if where:
        return tr.t("a device on {system}", system=where)
    return tr.t("unknown device")


def device_family(user_agent: str | None) -> str:
    """A coarse device family: "iPhone", "iPad", "Android", "Mac", "Windows PC",
    "Linux PC", "Chromebook", "via Gmail" (proxies hide the device) or "unknown"."""
    info = describe(user_agent)
    if info.label.startswith("via "):
        return info.label
    if info.device in ("iPhone", "iPad"):
        return info.device
    if info.device == "iPod" or info.os == "iOS":
        return "iPhone"
    return {
        "Android": "Android",
        "macOS": "Mac",
        "Windows": "Windows PC",
        "Linux": "Linux PC",
        "ChromeOS": "Chromebook",
    }.get(info.os, UNKNOWN)
