"""The agent's status rules (agent/status.py): what each state means and which is worst."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.status import (
    Level,
    OutageWatch,
    Reachable,
    Sending,
    SendingState,
    StatusInputs,
    StatusReport,
    StreamLink,
    current_status,
    decide,
    read_status,
    tracking_status,
    write_status,
)

NOW = 1_750_000_000.0


def inputs(**changes: object) -> StatusInputs:
    base: dict[str, object] = dict(
        upstream_url="smtps://smtp.example.com:465",
        upstream_configured=True,
        blocked_reason=None,
        waiting=0,
        tracking_url="https://track.example.com",
        stream_connected=True,
    )
    base.update(changes)
    return StatusInputs(**base)  # type: ignore[arg-type]


def test_all_good_says_so() -> None:
    report = decide(inputs(tracking_tested=(True, "Tracking works.")))
    assert report.sending.state == SendingState.OK
    assert report.tracking.reachable == Reachable.YES
    assert report.headline().level == Level.OK


def test_not_configured_is_worst_and_counts_the_waiting_mail() -> None:
    report = decide(inputs(upstream_configured=False, blocked_reason="no server", waiting=2,
                           tracking_url="http://127.0.0.1:8725", stream_connected=False))
    head = report.headline()
    assert (head.level, head.text) == (Level.ERROR, "Sending is not set up: 2 emails waiting")
    assert head.others == ("Tracking is not reachable by recipients",
                           "Event stream offline: opens are not heard now")


def test_blocked_outbox_or_a_refused_sign_in_is_failing() -> None:
    blocked = decide(inputs(blocked_reason="[Errno 111] Connection refused", waiting=1))
    assert blocked.sending.state == SendingState.FAILING
    assert blocked.sending.detail == (
        "smtp.example.com:465 is not taking mail: [Errno 111] Connection refused"
    )
    assert blocked.headline().text == "Sending is failing: 1 email waiting"
    signed_out = decide(inputs(sign_in_problem="Sign in again: token revoked"))
    assert signed_out.sending.state == SendingState.FAILING


def test_loopback_and_private_tracking_urls_are_never_reachable_even_if_tested() -> None:
    for url in ("http://127.0.0.1:8725", "http://localhost:8725", "http://192.168.1.5"):
        tracking = tracking_status(url, tested=(True, "answered with the pixel"))
        assert tracking.reachable == Reachable.NO, url
    assert "this computer" in tracking_status("http://127.0.0.1:8725").detail
    assert tracking_status("https://track.example.com").reachable == Reachable.UNKNOWN


def test_stream_connecting_counts_as_offline() -> None:
    report = decide(inputs(stream_connected=False))
    assert report.stream.state == StreamLink.OFFLINE
    assert report.headline().level == Level.WARNING


def test_json_round_trip(tmp_path: Path) -> None:
    report = decide(inputs(waiting=3, blocked_reason="down", paused_until="2099-01-01T00:00:00"))
    assert StatusReport.from_json(report.to_json()) == report


def test_a_dead_agents_file_is_stale(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    report = decide(inputs())
    write_status(tmp_path / "status.json", report, int(dead.stdout), NOW)
    saved = read_status(tmp_path / "status.json")
    assert saved is not None and saved.report == report and not saved.running
    settings = Settings()
    current, running = current_status(tmp_path, settings, NOW)
    assert not running
    assert current.sending.state == SendingState.NOT_CONFIGURED
    assert current.stream.state == StreamLink.OFFLINE


def test_a_foreign_or_broken_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text("{not json")
    assert read_status(tmp_path / "status.json") is None


def test_outage_told_once_and_its_end_once() -> None:
    watch = OutageWatch(settle_seconds=60)
    failing = Sending(SendingState.FAILING, 2, "down", "smtp.example.com:465")
    began = watch.observe(failing, NOW)
    assert began is not None and began.began and began.count == 2
    assert watch.observe(Sending(SendingState.FAILING, 5, "down", "x"), NOW + 1) is None
    ok = Sending(SendingState.OK, 1, "up", "smtp.example.com:465")
    assert watch.observe(ok, NOW + 2) is None  # mail still going out
    ended = watch.observe(Sending(SendingState.OK, 0, "up", "smtp.example.com:465"), NOW + 3)
    assert ended is not None and not ended.began and ended.count == 5
    assert watch.observe(Sending(SendingState.OK, 0, "up", "x"), NOW + 4) is None


def test_not_configured_is_no_outage_and_a_stuck_item_ends_it_after_settling() -> None:
    watch = OutageWatch(settle_seconds=60)
    assert watch.observe(Sending(SendingState.NOT_CONFIGURED, 3), NOW) is None
    assert watch.observe(Sending(SendingState.FAILING, 3, "down", "s"), NOW) is not None
    assert watch.observe(Sending(SendingState.OK, 1, "up", "s"), NOW + 1) is None
    ended = watch.observe(Sending(SendingState.OK, 1, "up", "s"), NOW + 62)
    assert ended is not None and ended.count == 2
