"""The verdict rules' tunables and curated user-agent lists, with their sources.

Everything the verdict rules (docs/rules.md rule 5, :mod:`mailbeacon.core.classify`)
know about the outside world lives here, so a change to what counts as a bot is
one reviewed edit in one file. Address ranges live in ``mailbeacon/data`` (see
:mod:`mailbeacon.core.ipranges`).

Thresholds (:class:`Thresholds`, injectable through ``classify.Context``)
-----------------------------------------------------------------------
* ``min_open_s = 2.0`` — an open less than 2 s after the token was minted (the
  send) is not a person: the message must still cross the upstream server, the
  recipient's server and their client's sync before anyone can see it. Gateways
  that scan on delivery (Defender, Mimecast, Proofpoint...) fetch within that time.
* ``min_click_s = 5.0`` — a click needs the message delivered, opened, read far
  enough and a link chosen; scanners and Safe Links detonation follow links within
  a second or two of delivery.
* ``clock_skew_tolerance_s = 2.0`` — ``minted_at`` is whole seconds from the
  rep's machine and ``at`` comes from the server's clock. A hit that seems up to
  this much *before* its mint time is treated as age 0 (too fast); one earlier
  than that means the two clocks disagree, and the timing rule is not applied
  (the reason says "clock skew") rather than calling every hit a bot.
* ``burst_window_s = 3.0`` and ``burst_links = 3`` — three or more *different*
  links of one message from one address within 3 s is a scanner walking the
  message (the hit is a bot and the earlier hits of that burst are revised). A
  person opening two links in tabs is not caught; the honeypot and the other
  rules catch scanners that click fewer links.
* ``honeypot_window_s = 30.0`` — once an address follows the hidden honeypot
  link, its other hits on that message within 30 s either side are the same
  scanner's walk (they are revised, later ones are bots).
* ``max_user_agent_chars = 1024`` — real browser and mail-client agents are
  100-400 characters; anything over 1 KB is a script (and would cost pattern
  matching time on the server's hot path).

Which proxy fetches count as human opens
----------------------------------------
* **Gmail** (``GoogleImageProxy``, via ggpht.com): Gmail fetches images through
  its proxy when the recipient opens the message, web and apps alike. Verdict
  ``proxy``, ``counts_as_human`` True. (The address and device are Google's.)
* **Yahoo Mail / AOL** (``YahooMailProxy``): fetched when the message is opened.
  Verdict ``proxy``, counts as a human open.
* **Apple Mail Privacy Protection** (user agent exactly ``Mozilla/5.0``, from
  Apple's relay ranges): Apple prefetches every image when the message arrives
  on a device with MPP on, whether or not anyone reads it. Verdict ``proxy``,
  does NOT count ("may not be a real open").
* **Gmail prefetch** (old ``Edge/12.246`` agent, Google addresses): Google
  fetches soon after delivery, before anyone opens. ``proxy``, does not count.
* Any proxy that fetches faster than ``min_open_s`` after sending does not count.
* A *click* never comes through an image proxy: a proxy agent on a link is a bot.

Sources of the user-agent lists
-------------------------------
* Vendor documentation where it exists: Slack (api.slack.com/robots), Facebook
  (developers.facebook.com/docs/sharing/webmasters/web-crawlers), LinkedIn,
  X/Twitter (developer.x.com cards troubleshooting), Discord, Telegram, Google
  (developers.google.com/search/docs/crawling-indexing/overview-google-crawlers),
  Bing (bing.com/webmasters/help/which-crawlers-does-bing-use), Yahoo
  (help.yahoo.com SLN28749, linked from the agent string itself), OpenAI,
  Anthropic, Apple (support.apple.com/HT204683 for Applebot).
* The maintained CrawlerDetect pattern list (crawlerdetect package), which the
  matcher consults after these lists, and whose entries name several gateway
  products seen in the wild (Barracuda Sentinel, Norton Safeweb, SpamExperts).
* Security gateways mostly fetch with browser-like agents and no documented
  string; for them (Mimecast, Proofpoint, Cisco IronPort, Symantec/Broadcom,
  Trend Micro, Sophos, Fortinet, Zscaler, Check Point, Forcepoint, Trellix,
  Palo Alto Networks, Hornetsecurity...) the lists match the vendor's product
  name where their scanners announce it, and the address, timing, burst and
  honeypot rules catch the ones that do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Tunables of the verdict rules (reasons for each default in the module docstring)."""

    min_open_s: float = 2.0
    min_click_s: float = 5.0
    clock_skew_tolerance_s: float = 2.0
    burst_window_s: float = 3.0
    burst_links: int = 3
    honeypot_window_s: float = 30.0
    max_user_agent_chars: int = 1024


class AgentKind(StrEnum):
    """What a user-agent rule says about the fetcher."""

    BOT = "bot"  # never a person: scanner, unfurler, library, headless browser, crawler
    HUMAN_PROXY = "human_proxy"  # a proxy fetching because a person opened the message
    PREFETCH_PROXY = "prefetch_proxy"  # a proxy fetching in advance: no evidence of a person
    CLIENT = "client"  # a known mail client (guards against crawler-list false positives)


class Category(StrEnum):
    """The family groups the lists are organised in."""

    SCANNER = "security scanner"
    UNFURLER = "link preview"
    LIBRARY = "HTTP library"
    HEADLESS = "headless browser"
    CRAWLER = "crawler"
    PROXY = "mail proxy"
    CLIENT = "mail client"


@dataclass(frozen=True, slots=True)
class AgentRule:
    """One family of user agents: a case-insensitive regex searched in the agent string."""

    family: str
    pattern: str
    kind: AgentKind
    category: Category
    reason: str
    via: str | None = None
    source: str = ""


_B = AgentKind.BOT
_DOC = "vendor documentation"
_CD = "CrawlerDetect list"
_NAME = "vendor product name in the agent string"


def _bot(family: str, pattern: str, category: Category, reason: str, source: str) -> AgentRule:
    return AgentRule(family, pattern, _B, category, reason, None, source)


# Proxies come first: CrawlerDetect lists GoogleImageProxy and YahooMailProxy as
# crawlers, but their fetches are (Gmail, Yahoo) or may be (Apple) real opens.
PROXY_RULES: tuple[AgentRule, ...] = (
    AgentRule(
        "Gmail image proxy",
        r"GoogleImageProxy",
        AgentKind.HUMAN_PROXY,
        Category.PROXY,
        "opened in Gmail (fetched through Google's image proxy)",
        "Gmail",
        "observed agent 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
        "(via ggpht.com GoogleImageProxy)'",
    ),
    AgentRule(
        "Yahoo Mail proxy",
        r"YahooMailProxy",
        AgentKind.HUMAN_PROXY,
        Category.PROXY,
        "opened in Yahoo Mail (fetched through Yahoo's image proxy)",
        "Yahoo Mail",
        "help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    ),
    AgentRule(
        "Apple Mail Privacy Protection",
        r"^\s*Mozilla/5\.0\s*$",
        AgentKind.PREFETCH_PROXY,
        Category.PROXY,
        "Apple Mail Privacy Protection prefetch: may not be a real open",
        "Apple Mail Privacy Protection",
        "Apple MPP fetches with the bare agent 'Mozilla/5.0' from its relay ranges",
    ),
    AgentRule(
        "Gmail prefetch",
        r"Edge/12\.246",
        AgentKind.PREFETCH_PROXY,
        Category.PROXY,
        "Gmail prefetch on delivery (outdated Edge 12 agent): not an open",
        "Gmail",
        "observed: Google fetches soon after delivery as 'Chrome/42.0.2311.135 Safari/537.36 "
        "Edge/12.246', a 2015 browser nobody runs",
    ),
)

SCANNER_RULES: tuple[AgentRule, ...] = (
    _bot(
        "Microsoft Office link check",
        r"Microsoft Office (Existence|Protocol) Discovery",
        Category.SCANNER,
        "Microsoft Office checking a link before opening it (the browser makes the real click)",
        "observed Office agents; learn.microsoft.com Office 'protocol discovery'",
    ),
    _bot(
        "Microsoft Defender Safe Links",
        r"Safe ?Links|Microsoft[ -]?Defender|ATP[ -]?Safe",
        Category.SCANNER,
        "Microsoft Defender Safe Links scanner",
        _NAME + " (Safe Links mostly uses a plain Chrome agent: see microsoft_ranges.txt)",
    ),
    _bot("Mimecast", r"Mimecast", Category.SCANNER, "Mimecast URL Protect scanner", _NAME),
    _bot(
        "Proofpoint",
        r"Proofpoint|URL ?Defense",
        Category.SCANNER,
        "Proofpoint URL Defense scanner",
        _NAME,
    ),
    _bot(
        "Barracuda",
        r"Barracuda",
        Category.SCANNER,
        "Barracuda email security scanner",
        _CD + " ('Barracuda Sentinel (EE)')",
    ),
    _bot(
        "Cisco IronPort",
        r"IronPort|Cisco[ -]?(Secure|Email|Talos)|Talos[ -]?Intelligence",
        Category.SCANNER,
        "Cisco Secure Email (IronPort) scanner",
        _NAME,
    ),
    _bot(
        "Symantec",
        r"Symantec|Broadcom|MessageLabs|Norton-Safeweb",
        Category.SCANNER,
        "Symantec/Broadcom email security scanner",
        _CD + " ('Norton-Safeweb'); " + _NAME,
    ),
    _bot(
        "Trend Micro",
        r"Trend ?Micro|InterScan",
        Category.SCANNER,
        "Trend Micro email security scanner",
        _NAME,
    ),
    _bot("Sophos", r"Sophos", Category.SCANNER, "Sophos email security scanner", _NAME),
    _bot(
        "Fortinet",
        r"Forti(Guard|Mail|net|Sandbox)",
        Category.SCANNER,
        "Fortinet FortiMail/FortiGuard scanner",
        _NAME,
    ),
    _bot("Zscaler", r"Zscaler", Category.SCANNER, "Zscaler link scanner", _NAME),
    _bot(
        "Check Point",
        r"Check ?Point|Avanan",
        Category.SCANNER,
        "Check Point (Avanan) email security scanner",
        _NAME,
    ),
    _bot(
        "Forcepoint",
        r"Forcepoint|Websense",
        Category.SCANNER,
        "Forcepoint email security scanner",
        _NAME,
    ),
    _bot(
        "Trellix",
        r"Trellix|McAfee|FireEye",
        Category.SCANNER,
        "Trellix (McAfee/FireEye) email security scanner",
        _NAME,
    ),
    _bot(
        "Palo Alto Networks",
        r"Palo ?Alto ?Networks|WildFire",
        Category.SCANNER,
        "Palo Alto Networks scanner",
        _NAME,
    ),
    _bot(
        "Hornetsecurity",
        r"Hornet ?security",
        Category.SCANNER,
        "Hornetsecurity email scanner",
        _NAME,
    ),
    _bot("SpamExperts", r"SpamExperts", Category.SCANNER, "SpamExperts email scanner", _CD),
    _bot(
        "Kaspersky",
        r"Kaspersky",
        Category.SCANNER,
        "Kaspersky security scanner",
        _NAME,
    ),
    _bot(
        "Bitdefender",
        r"Bitdefender",
        Category.SCANNER,
        "Bitdefender security scanner",
        _NAME,
    ),
    _bot(
        "URL scanning service",
        r"urlscan|VirusTotal|safe-agent-scanner|LinkScan|URL ?Verifier",
        Category.SCANNER,
        "URL scanning service",
        _CD + "; " + _NAME,
    ),
)

UNFURLER_RULES: tuple[AgentRule, ...] = (
    _bot(
        "Apple iMessage",
        r"facebookexternalhit/\S+ Facebot Twitterbot",
        Category.UNFURLER,
        "Apple iMessage link preview",
        "observed Messages.app preview agent (Safari + facebookexternalhit Facebot Twitterbot)",
    ),
    _bot(
        "Slack",
        r"Slackbot|Slack-ImgProxy",
        Category.UNFURLER,
        "Slack link preview (Slackbot)",
        _DOC + " api.slack.com/robots",
    ),
    _bot(
        "Microsoft Teams / Skype",
        r"SkypeUriPreview|skype-url-preview|Microsoft ?Teams ?Preview",
        Category.UNFURLER,
        "Microsoft Teams / Skype link preview",
        "observed 'SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com'",
    ),
    _bot(
        "Microsoft preview",
        r"BingPreview|MicrosoftPreview",
        Category.UNFURLER,
        "Microsoft link preview (Outlook, Teams, Bing)",
        _DOC + " Bing crawlers (BingPreview, MicrosoftPreview)",
    ),
    _bot(
        "LinkedIn",
        r"LinkedInBot",
        Category.UNFURLER,
        "LinkedIn link preview",
        _DOC + " (LinkedInBot)",
    ),
    _bot(
        "Facebook",
        r"facebookexternalhit|facebookcatalog|meta-externalagent|meta-externalfetcher|Facebot",
        Category.UNFURLER,
        "Facebook / Meta link preview",
        _DOC + " developers.facebook.com web crawlers",
    ),
    _bot(
        "WhatsApp",
        r"WhatsApp",
        Category.UNFURLER,
        "WhatsApp link preview",
        "observed 'WhatsApp/2.x A|i|W' preview agents",
    ),
    _bot(
        "Telegram",
        r"TelegramBot",
        Category.UNFURLER,
        "Telegram link preview",
        "observed 'TelegramBot (like TwitterBot)'",
    ),
    _bot(
        "Discord",
        r"Discordbot",
        Category.UNFURLER,
        "Discord link preview",
        _DOC + " (Discordbot/2.0)",
    ),
    _bot(
        "X (Twitter)",
        r"Twitterbot",
        Category.UNFURLER,
        "X (Twitter) link preview",
        _DOC + " developer.x.com cards",
    ),
    _bot(
        "Other link previewers",
        r"Pinterest(bot)?/|redditbot|Embedly|Iframely|Snap URL Preview|Viber|line-poker|vkShare|"
        r"Mattermost|Google-PageRenderer|LinkPreview|Bitrix link preview|Quora Link Preview|"
        r"Yahoo Link Preview|Zoom ?Bot|Tumblr",
        Category.UNFURLER,
        "link preview",
        _CD + "; vendor documentation",
    ),
)

CRAWLER_RULES: tuple[AgentRule, ...] = (
    _bot(
        "Googlebot",
        r"Googlebot|Google-InspectionTool|GoogleOther|AdsBot-Google|Mediapartners-Google|"
        r"APIs-Google|FeedFetcher-Google|Google-Read-Aloud|AppEngine-Google|Google-Safety|"
        r"Storebot-Google|Google-Extended|GoogleProducer",
        Category.CRAWLER,
        "Google crawler",
        _DOC + " Google crawlers overview",
    ),
    _bot(
        "Bingbot",
        r"bingbot|msnbot|adidxbot|BingLocalSearch",
        Category.CRAWLER,
        "Bing crawler",
        _DOC + " Bing crawlers",
    ),
    _bot(
        "AI crawler",
        r"GPTBot|ChatGPT-User|OAI-SearchBot|ClaudeBot|Claude-User|anthropic-ai|PerplexityBot|"
        r"Perplexity-User|CCBot|Bytespider|Amazonbot|Applebot|cohere-ai|Diffbot",
        Category.CRAWLER,
        "AI or search crawler",
        _DOC + " (OpenAI, Anthropic, Perplexity, Common Crawl, Amazon, Apple)",
    ),
    _bot(
        "Search crawler",
        r"YandexBot|Yandex\w*+/|Baiduspider|DuckDuckBot|Slurp|Sogou|Exabot|SeznamBot|PetalBot|"
        r"AhrefsBot|SemrushBot|MJ12bot|DotBot|BLEXBot|DataForSeoBot|MojeekBot|Qwantify",
        Category.CRAWLER,
        "search or SEO crawler",
        _DOC + "; " + _CD,
    ),
)

LIBRARY_RULES: tuple[AgentRule, ...] = (
    _bot("curl", r"^curl/|\bcurl/\d", Category.LIBRARY, "command-line HTTP client (curl)", _CD),
    _bot("Wget", r"\bWget/", Category.LIBRARY, "command-line HTTP client (Wget)", _CD),
    _bot(
        "Python",
        r"python-requests|python-httpx|Python-urllib|aiohttp|httplib2|urllib3|Scrapy|"
        r"python-urllib3|HTTPie|Python/\d",
        Category.LIBRARY,
        "Python HTTP library: a script, not a mail client",
        _CD,
    ),
    _bot(
        "Go",
        r"Go-http-client|Go http package|quic-go|\bfasthttp",
        Category.LIBRARY,
        "Go HTTP library: a program, not a mail client",
        _CD,
    ),
    _bot(
        "Java",
        r"^Java/|Apache-HttpClient|okhttp|Jakarta Commons|Google-HTTP-Java-Client|unirest-java|"
        r"Java-http-client|ReactorNetty|Jersey/",
        Category.LIBRARY,
        "Java HTTP library: a program, not a mail client",
        _CD,
    ),
    _bot(
        "Node.js",
        r"axios/|node-fetch|undici|^node$|^node/|got \(https://github\.com/sindresorhus/got\)|"
        r"node-superagent|needle/|request/\d",
        Category.LIBRARY,
        "Node.js HTTP library: a script, not a mail client",
        _CD,
    ),
    _bot(
        "Perl",
        r"libwww-perl|LWP::|Mojolicious|HTTP::Tiny|WWW-Mechanize",
        Category.LIBRARY,
        "Perl HTTP library: a script, not a mail client",
        _CD,
    ),
    _bot(
        "Other HTTP libraries",
        r"^Ruby|Faraday|GuzzleHttp|^PHP|WinHttp|WindowsPowerShell|PowerShell/|"
        r"^Dart/|reqwest|^HTTPClient|^RestSharp|^Typhoeus|^Apache-CXF|^libcurl|^lua-resty",
        Category.LIBRARY,
        "HTTP library: a program, not a mail client",
        _CD,
    ),
)

HEADLESS_RULES: tuple[AgentRule, ...] = (
    _bot(
        "Headless Chrome",
        r"HeadlessChrome|Chrome-Lighthouse|Headless",
        Category.HEADLESS,
        "headless browser (automated Chrome)",
        "Chrome's headless mode announces itself as HeadlessChrome",
    ),
    _bot(
        "PhantomJS",
        r"PhantomJS|SlimerJS|HtmlUnit|Splash|Puppeteer|Playwright|Selenium",
        Category.HEADLESS,
        "headless browser (automation toolkit)",
        _CD,
    ),
)

# Mail clients that CrawlerDetect flags as crawlers ("Microsoft Office",
# "Microsoft Outlook", "MacOutlook/", "Outlook-iOS", "Airmail", "^Mail/" ...):
# checked after the bot families above and before CrawlerDetect.
CLIENT_RULES: tuple[AgentRule, ...] = (
    AgentRule(
        "Outlook",
        r"Microsoft Outlook|Microsoft Office/\d|ms-office|MSOffice|MacOutlook/|"
        r"Outlook-iOS|Outlook-Android|Outlook-Express",
        AgentKind.CLIENT,
        Category.CLIENT,
        "Outlook",
        None,
        "observed Outlook agents (Windows, Mac, iOS, Android)",
    ),
    AgentRule(
        "Other mail clients",
        r"Thunderbird|Airmail|Canary(%20| )?Mail|Polymail/|^Mail/\d|eM ?Client|Mailbird|"
        r"Postbox|Spark/\d|Newton/|BlueMail|FairEmail|K-9 Mail|Evolution/",
        AgentKind.CLIENT,
        Category.CLIENT,
        "mail client",
        None,
        "observed mail-client agents; " + _CD + " (false positives guarded)",
    ),
)

# Order matters: the first rule that matches decides.
AGENT_RULES: tuple[AgentRule, ...] = (
    PROXY_RULES
    + SCANNER_RULES
    + UNFURLER_RULES
    + HEADLESS_RULES
    + LIBRARY_RULES
    + CRAWLER_RULES
    + CLIENT_RULES
)
