"""Verdict rules beyond the user agent: HEAD, self, timing with a fake clock, clock skew,
bursts and honeypot revisions, addresses (IPv6, IPv4-mapped) and hostile input."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbeacon.core.botlists import Thresholds
from mailbeacon.core.classify import Context, Decision, Hit, PriorHit, Revision, classify
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.ipranges import KnownRanges
from tests.helpers.fakes import FakeClock

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
SCANNER_IP = "198.51.100.23"
READER_IP = "203.0.113.7"
SENT = 1_800_000_000


class Sender:
    """Mints a message at the fake clock's time and makes hits on it as time passes."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.minted_at = int(clock())

    def open(self, ip: str = READER_IP, agent: str = OUTLOOK, **kw: object) -> Hit:
        return self._hit(EventType.OPEN, ip, agent, None, **kw)

    def click(self, link: int, ip: str = READER_IP, agent: str = CHROME, **kw: object) -> Hit:
        return self._hit(EventType.CLICK, ip, agent, link, **kw)

    def _hit(self, kind: EventType, ip: str, agent: str, link: int | None, **kw: object) -> Hit:
        hit = Hit(
            type=kind,
            method="GET",
            ip=ip,
            user_agent=agent,
            at=self.clock(),
            minted_at=self.minted_at,
            message="m1",
            recipient="r1",
            link=link,
        )
        return dataclasses.replace(hit, **kw)  # type: ignore[arg-type]


class Server:
    """Keeps the recent hits and applies revisions, as the tracking server does."""

    def __init__(self, **context: object) -> None:
        self.stored: list[PriorHit] = []
        self.context = context

    def record(self, hit: Hit) -> Decision:
        decision = classify(hit, Context(recent=tuple(self.stored), **self.context))  # type: ignore[arg-type]
        for revision in decision.revisions:
            self.stored = [
                PriorHit(p.id, p.hit, revision.verdict) if p.id == revision.id else p
                for p in self.stored
            ]
        self.stored.append(PriorHit(len(self.stored) + 1, hit, decision.verdict))
        return decision

    def verdicts(self) -> list[Verdict]:
        return [p.verdict for p in self.stored]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(SENT))


@pytest.fixture
def sender(clock: FakeClock) -> Sender:
    return Sender(clock)


# -- HEAD and self ---------------------------------------------------------------------


def test_head_is_never_a_person(sender: Sender, clock: FakeClock) -> None:
    clock.advance(3600)
    decision = classify(sender.open(method="HEAD"), Context())
    assert decision.verdict is Verdict.BOT
    assert "HEAD" in decision.reason


def test_claimed_browser_is_the_rep(sender: Sender, clock: FakeClock) -> None:
    clock.advance(3600)
    decision = classify(sender.click(1, claimed_browser=True), Context())
    assert decision.verdict is Verdict.SELF
    assert "claimed" in decision.reason


def test_the_reps_own_client_opening_the_sent_copy_at_once_is_self_not_bot(
    sender: Sender, clock: FakeClock
) -> None:
    clock.advance(0.3)  # the Sent folder shows it immediately
    decision = classify(sender.open(ip="192.0.2.10"), Context(frozenset({"192.0.2.10"})))
    assert decision.verdict is Verdict.SELF
    assert decision.reason.startswith("the rep's address")  # which rule fired


@pytest.mark.parametrize(
    ("agent_address", "hit_address"),
    [
        ("192.0.2.10", "::ffff:192.0.2.10"),
        ("::ffff:192.0.2.10", "192.0.2.10"),
        ("2001:db8:1:2::10", "2001:db8:1:2:a:b:c:d"),  # same /64: privacy addresses rotate
        ("2001:db8:1:2::10", "[2001:db8:1:2::10]"),
        ("fe80::1%eth0", "fe80::99"),
    ],
)
def test_agent_addresses_match_in_any_notation(
    sender: Sender, clock: FakeClock, agent_address: str, hit_address: str
) -> None:
    clock.advance(3600)
    decision = classify(sender.open(ip=hit_address), Context(frozenset({agent_address})))
    assert decision.verdict is Verdict.SELF


def test_another_ipv6_network_is_not_the_rep(sender: Sender, clock: FakeClock) -> None:
    clock.advance(3600)
    hit = sender.open(ip="2001:db8:1:3::10")
    assert classify(hit, Context(frozenset({"2001:db8:1:2::10"}))).verdict is Verdict.HUMAN


def test_loopback_is_not_assumed_to_be_the_rep(sender: Sender, clock: FakeClock) -> None:
    clock.advance(3600)
    assert classify(sender.open(ip="127.0.0.9"), Context()).verdict is Verdict.HUMAN


# -- timing ------------------------------------------------------------------------------


def test_an_open_faster_than_a_person_is_a_bot(sender: Sender, clock: FakeClock) -> None:
    clock.advance(0.4)
    decision = classify(sender.open(), Context())
    assert decision.verdict is Verdict.BOT
    assert decision.reason == "opened 0.4 s after sending: faster than a person"


def test_a_click_faster_than_a_person_is_a_bot(sender: Sender, clock: FakeClock) -> None:
    clock.advance(4.9)
    decision = classify(sender.click(1), Context())
    assert decision.verdict is Verdict.BOT
    assert decision.reason == "clicked 4.9 s after sending: faster than a person"


def test_at_the_thresholds_a_person_is_possible(sender: Sender, clock: FakeClock) -> None:
    clock.advance(Thresholds().min_open_s)
    assert classify(sender.open(), Context()).verdict is Verdict.HUMAN
    clock.advance(Thresholds().min_click_s - Thresholds().min_open_s)
    assert classify(sender.click(1), Context()).verdict is Verdict.HUMAN


def test_thresholds_are_injectable(sender: Sender, clock: FakeClock) -> None:
    clock.advance(0.4)
    relaxed = Context(thresholds=Thresholds(min_open_s=0.0))
    assert classify(sender.open(), relaxed).verdict is Verdict.HUMAN
    strict = Context(thresholds=Thresholds(min_open_s=60.0))
    clock.advance(30)
    assert classify(sender.open(), strict).verdict is Verdict.BOT


def test_small_negative_age_counts_as_zero(sender: Sender, clock: FakeClock) -> None:
    clock.advance(-1.0)  # within the tolerance for whole-second mint times
    decision = classify(sender.open(), Context())
    assert decision.verdict is Verdict.BOT
    assert "0.0 s after sending" in decision.reason


def test_a_hit_long_before_its_send_time_is_clock_skew_not_an_error(
    sender: Sender, clock: FakeClock
) -> None:
    clock.advance(-300)  # the rep's clock runs five minutes fast
    decision = classify(sender.open(), Context())
    assert decision.verdict is Verdict.HUMAN
    assert "clock skew" in decision.reason
    assert "300 s before the send time" in decision.reason


@pytest.mark.parametrize("at", [math.nan, math.inf, -math.inf])
def test_an_unusable_time_gives_a_verdict(sender: Sender, at: float) -> None:
    decision = classify(sender.open(at=at), Context())
    assert decision.verdict is Verdict.HUMAN
    assert "timing not judged" in decision.reason


def test_a_gmail_proxy_fetch_faster_than_a_person_does_not_count(
    sender: Sender, clock: FakeClock
) -> None:
    clock.advance(0.8)
    decision = classify(sender.open(agent=GMAIL_PROXY), Context())
    assert decision.verdict is Verdict.PROXY
    assert not decision.counts_as_human
    assert "0.8 s after sending" in decision.reason
    assert decision.via == "Gmail"


def test_counts_as_human_follows_the_verdict() -> None:
    assert Decision(Verdict.HUMAN, "x").counts_as_human
    assert not Decision(Verdict.PROXY, "x").counts_as_human
    assert Decision(Verdict.PROXY, "x", proxied_human=True).counts_as_human
    assert not Decision(Verdict.BOT, "x", proxied_human=True).counts_as_human
    assert not Decision(Verdict.SELF, "x").counts_as_human


# -- bursts ---------------------------------------------------------------------------


def test_three_links_in_moments_from_one_address_is_a_scanner_and_revises_the_burst(
    sender: Sender, clock: FakeClock
) -> None:
    server = Server()
    clock.advance(60)
    assert server.record(sender.click(1, ip=SCANNER_IP)).verdict is Verdict.HUMAN
    clock.advance(0.4)
    assert server.record(sender.click(2, ip=SCANNER_IP)).verdict is Verdict.HUMAN
    clock.advance(0.4)
    third = server.record(sender.click(3, ip=SCANNER_IP))
    assert third.verdict is Verdict.BOT
    assert third.reason == "3 links clicked within 0.8 s from one address"
    assert third.revisions == (
        Revision(1, Verdict.BOT, third.reason),
        Revision(2, Verdict.BOT, third.reason),
    )
    clock.advance(0.5)
    fourth = server.record(sender.click(4, ip=SCANNER_IP))
    assert fourth.verdict is Verdict.BOT
    assert fourth.revisions == ()  # the earlier ones are bots already
    assert server.verdicts() == [Verdict.BOT] * 4


def test_a_burst_revises_the_scanners_open_too_but_not_the_reader(
    sender: Sender, clock: FakeClock
) -> None:
    server = Server()
    clock.advance(60)
    server.record(sender.open(ip=READER_IP))
    server.record(sender.open(ip=SCANNER_IP))
    clock.advance(0.2)
    for link in (1, 2, 3):
        server.record(sender.click(link, ip=SCANNER_IP))
    assert server.verdicts() == [Verdict.HUMAN] + [Verdict.BOT] * 4


def test_the_same_link_clicked_again_is_not_a_burst(sender: Sender, clock: FakeClock) -> None:
    server = Server()
    clock.advance(60)
    for _ in range(4):  # double and triple clicks
        clock.advance(0.2)
        assert server.record(sender.click(1)).verdict is Verdict.HUMAN


def test_links_from_different_addresses_are_not_a_burst(sender: Sender, clock: FakeClock) -> None:
    server = Server()
    clock.advance(60)
    for link, ip in ((1, "203.0.113.1"), (2, "203.0.113.2"), (3, "203.0.113.3")):
        assert server.record(sender.click(link, ip=ip)).verdict is Verdict.HUMAN


def test_a_person_reading_through_the_links_is_not_a_burst(
    sender: Sender, clock: FakeClock
) -> None:
    server = Server()
    clock.advance(60)
    for link in (1, 2, 3):
        clock.advance(20)
        assert server.record(sender.click(link)).verdict is Verdict.HUMAN


def test_one_ipv6_slash_64_is_one_address_for_bursts(sender: Sender, clock: FakeClock) -> None:
    server = Server()
    clock.advance(60)
    for link, ip in ((1, "2001:db8:5:6::1"), (2, "2001:db8:5:6::2"), (3, "2001:db8:5:6::3")):
        decision = server.record(sender.click(link, ip=ip))
    assert decision.verdict is Verdict.BOT
    assert len(decision.revisions) == 2


def test_mapped_and_plain_ipv4_are_one_address_for_bursts(sender: Sender, clock: FakeClock) -> None:
    server = Server()
    clock.advance(60)
    for link, ip in ((1, "198.51.100.23"), (2, "::ffff:198.51.100.23"), (3, "198.51.100.23")):
        decision = server.record(sender.click(link, ip=ip))
    assert decision.verdict is Verdict.BOT


def test_a_bot_hit_that_completes_a_burst_still_revises_it(
    sender: Sender, clock: FakeClock
) -> None:
    server = Server()
    clock.advance(60)
    server.record(sender.click(1, ip=SCANNER_IP))
    server.record(sender.click(2, ip=SCANNER_IP))
    last = server.record(sender.click(3, ip=SCANNER_IP, agent="python-requests/2.31.0"))
    assert "Python" in last.reason
    assert len(last.revisions) == 2
    assert server.verdicts() == [Verdict.BOT] * 3


def test_burst_size_and_window_are_injectable(sender: Sender, clock: FakeClock) -> None:
    server = Server(thresholds=Thresholds(burst_links=2, burst_window_s=10.0))
    clock.advance(60)
    server.record(sender.click(1))
    clock.advance(8)
    assert server.record(sender.click(2)).verdict is Verdict.BOT


def test_self_hits_are_never_revised(sender: Sender, clock: FakeClock) -> None:
    server = Server(agent_addresses=frozenset({SCANNER_IP}))
    clock.advance(60)
    for link in (1, 2, 3):
        assert server.record(sender.click(link, ip=SCANNER_IP)).verdict is Verdict.SELF
    assert server.verdicts() == [Verdict.SELF] * 3


# -- honeypot ----------------------------------------------------------------------------


def test_the_honeypot_link_is_a_bot_and_revises_that_address(
    sender: Sender, clock: FakeClock
) -> None:
    server = Server()
    clock.advance(60)
    server.record(sender.open(ip=SCANNER_IP))
    server.record(sender.open(ip=READER_IP))
    clock.advance(2)
    server.record(sender.click(1, ip=SCANNER_IP))
    clock.advance(5)
    honeypot = server.record(sender.click(0xFFFF, ip=SCANNER_IP, honeypot=True))
    assert honeypot.verdict is Verdict.BOT
    assert honeypot.reason == "followed the hidden honeypot link"
    assert [r.id for r in honeypot.revisions] == [1, 3]
    assert all(
        r.reason == "the same address followed the hidden honeypot link" for r in honeypot.revisions
    )
    assert server.verdicts() == [Verdict.BOT, Verdict.HUMAN, Verdict.BOT, Verdict.BOT]


def test_hits_after_the_honeypot_from_that_address_are_bots(
    sender: Sender, clock: FakeClock
) -> None:
    server = Server()
    clock.advance(60)
    server.record(sender.click(0xFFFF, ip=SCANNER_IP, honeypot=True))
    clock.advance(10)
    later = server.record(sender.click(2, ip=SCANNER_IP))
    assert later.verdict is Verdict.BOT
    assert "honeypot" in later.reason
    assert server.record(sender.click(2, ip=READER_IP)).verdict is Verdict.HUMAN


def test_the_honeypot_window_bounds_the_revisions(sender: Sender, clock: FakeClock) -> None:
    server = Server()
    clock.advance(60)
    server.record(sender.click(1, ip=SCANNER_IP))
    clock.advance(Thresholds().honeypot_window_s + 1)
    decision = server.record(sender.click(0xFFFF, ip=SCANNER_IP, honeypot=True))
    assert decision.revisions == ()


def test_other_messages_are_not_revised(sender: Sender, clock: FakeClock) -> None:
    clock.advance(60)
    elsewhere = PriorHit(
        7, dataclasses.replace(sender.open(ip=SCANNER_IP), message="m2"), Verdict.HUMAN
    )
    decision = classify(
        sender.click(0xFFFF, ip=SCANNER_IP, honeypot=True), Context(recent=(elsewhere,))
    )
    assert decision.revisions == ()


# -- ranges ---------------------------------------------------------------------------------


def test_injected_ranges_replace_the_shipped_ones(sender: Sender, clock: FakeClock) -> None:
    clock.advance(3600)
    ranges = KnownRanges.from_texts("", "", "198.51.100.0/24\n")
    decision = classify(sender.click(1, ip=SCANNER_IP), Context(ranges=ranges))
    assert decision.verdict is Verdict.BOT
    assert "Safe Links" in decision.reason
    assert (
        classify(sender.click(1, ip="40.107.1.1"), Context(ranges=ranges)).verdict is Verdict.HUMAN
    )


# -- hostile input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("", "no user agent"),
        ("   ", "no user agent"),
        ("x" * 10_240, "user agent of 10,240 characters"),
        ("Mozilla/5.0 \ufffd\ufffd (binary)", "unreadable user agent"),
        ("Mozilla/5.0\x00", "unreadable user agent"),
        ("Mozilla/5.0\r\nX-Injected: 1", "unreadable user agent"),
    ],
)
def test_bad_user_agents_get_a_verdict_and_a_reason(
    sender: Sender, clock: FakeClock, agent: str, reason: str
) -> None:
    clock.advance(3600)
    decision = classify(sender.open(agent=agent), Context())
    assert decision.verdict is Verdict.BOT
    assert reason in decision.reason


@pytest.mark.parametrize(
    "char", [chr(c) for c in [*range(0x09), *range(0x0A, 0x20), 0x7F, 0xFFFD]]
)
def test_every_control_character_makes_an_agent_unreadable_ascii_or_not(
    sender: Sender, clock: FakeClock, char: str
) -> None:
    clock.advance(3600)
    for agent in (f"Mozilla/5.0 {char}", f"Mozilla/5.0 (Linux; \u00e9){char}"):
        decision = classify(sender.open(agent=agent), Context())
        assert decision.rule == "ua-binary", agent


@pytest.mark.parametrize("agent", ["Mozilla/5.0\t(tab)", "Mozilla/5.0 (\u00e9t\u00e9)",
                                   "Mozilla/5.0\u00a0(no-break space)"])
def test_tabs_and_printable_non_ascii_are_readable(
    sender: Sender, clock: FakeClock, agent: str
) -> None:
    clock.advance(3600)
    assert classify(sender.open(agent=agent), Context()).rule != "ua-binary"


def test_a_missing_user_agent_is_a_bot_not_an_error(sender: Sender, clock: FakeClock) -> None:
    clock.advance(3600)
    hit = dataclasses.replace(sender.open(), user_agent=None)  # type: ignore[arg-type]
    decision = classify(hit, Context())
    assert decision.verdict is Verdict.BOT
    assert "no user agent" in decision.reason


@pytest.mark.parametrize(
    "ip", ["", "unknown", "999.1.1.1", "::ffff:999.1.1.1", "1.2.3.4/24", "x" * 5000]
)
def test_a_malformed_address_still_gets_a_verdict(
    sender: Sender, clock: FakeClock, ip: str
) -> None:
    clock.advance(3600)
    assert classify(sender.open(ip=ip), Context()).verdict is Verdict.HUMAN


hits = st.builds(
    Hit,
    type=st.sampled_from(EventType),
    method=st.text(max_size=8),
    ip=st.one_of(st.ip_addresses().map(str), st.text(max_size=60)),
    user_agent=st.text(max_size=2000),
    at=st.floats(allow_nan=True, allow_infinity=True),
    minted_at=st.integers(min_value=0, max_value=2**64 - 1),
    message=st.sampled_from(["m1", "m2"]),
    recipient=st.none() | st.text(max_size=10),
    link=st.none() | st.integers(min_value=0, max_value=0xFFFF),
    honeypot=st.booleans(),
    claimed_browser=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hit=hits, prior=st.lists(hits, max_size=5), verdicts=st.lists(st.sampled_from(Verdict)))
def test_any_hit_gets_a_decision_never_an_exception(
    hit: Hit, prior: list[Hit], verdicts: list[Verdict]
) -> None:
    recent = tuple(
        PriorHit(i, p, verdicts[i] if i < len(verdicts) else Verdict.HUMAN)
        for i, p in enumerate(prior)
    )
    decision = classify(hit, Context(agent_addresses=frozenset({"192.0.2.1"}), recent=recent))
    assert isinstance(decision.verdict, Verdict)
    assert decision.reason
    assert all(r.verdict is Verdict.BOT for r in decision.revisions)
