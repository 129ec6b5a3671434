"""``server serve`` options that tune the verdicts, through the real command."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from mailbeacon.cli import main
from mailbeacon.server.config import ServerConfig
from tests.helpers.server import (
    WAIT,
    add_user_process,
    new_mail,
    next_event,
    recipient,
    served_at,
    serving_process,
)


@pytest.mark.parametrize(
    ("options", "verdict"),
    [([], "bot"), (["--min-open-seconds", "0"], "human")],
    ids=["default: too fast", "min-open-seconds 0"],
)
async def test_min_open_seconds_decides_whether_an_instant_open_is_a_person(
    tmp_path: Path, options: list[str], verdict: str
) -> None:
    profile, db = tmp_path / "profile", tmp_path / "server.db"
    user = await add_user_process(profile, db)
    async with serving_process(profile, db, *options) as (_, url):
        alice = served_at(user, url)
        mail = new_mail(alice)
        async with connect(
            url.replace("http://", "ws://") + "/v1/stream?after=0",
            additional_headers={"Authorization": f"Bearer {alice.api_token}"},
            open_timeout=WAIT,
        ) as stream, recipient() as client:
            await client.get(mail.pixel(minted_ago=0))  # opened the moment it was sent
            event = await next_event(stream)
    assert event["verdict"] == verdict, event["reason"]


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_bad_number_of_seconds_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--profile", str(tmp_path), "server", "serve", "--min-click-seconds", value])
    assert exited.value.code == 2
    assert "expected seconds" in capsys.readouterr().err


def test_the_config_feeds_the_thresholds(tmp_path: Path) -> None:
    config = ServerConfig(tmp_path / "s.db", min_open_seconds=0.5, min_click_seconds=7)
    assert (config.thresholds.min_open_s, config.thresholds.min_click_s) == (0.5, 7)
    assert config.thresholds.burst_links == 3  # the others keep their defaults


async def test_click_token_max_days_refuses_older_links_through_the_real_command(
    tmp_path: Path,
) -> None:
    # docs/rules.md rule 4: a link minted longer ago than the limit answers 404, like a
    # forged one; a younger one still redirects.
    profile, db = tmp_path / "profile", tmp_path / "server.db"
    user = await add_user_process(profile, db)
    day = 86400
    async with serving_process(profile, db, "--click-token-max-days", "3") as (_, url):
        mail = new_mail(served_at(user, url))
        async with recipient() as client:
            young = await client.get(mail.click("https://example.com/a", minted_ago=2 * day))
            old = await client.get(mail.click("https://example.com/a", minted_ago=4 * day))
    assert young.status_code == 302 and young.headers["location"] == "https://example.com/a"
    assert old.status_code == 404


@pytest.mark.parametrize("value", ["0", "-3", "soon", "1.5"])
def test_a_bad_click_token_max_days_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--profile", str(tmp_path), "server", "serve", "--click-token-max-days", value])
    assert exited.value.code == 2
    assert "whole number of days" in capsys.readouterr().err
