"""The command line's shape (docs/interfaces.md)."""

from __future__ import annotations

import pytest

from mailbeacon import cli


def test_bare_command_and_bare_agent_options_mean_the_tray() -> None:
    assert cli.with_default_command([]) == ["tray"]
    assert cli.with_default_command(["--enroll", "K"]) == ["tray", "--enroll", "K"]
    assert cli.with_default_command(["--profile", "/p", "--smtp-listen", "127.0.0.1:2"]) == [
        "--profile", "/p", "tray", "--smtp-listen", "127.0.0.1:2"]
    assert cli.with_default_command(["--profile", "/p", "agent"]) == ["--profile", "/p", "agent"]
    assert cli.with_default_command(["--version"]) == ["--version"]
    args = cli.build_parser().parse_args(cli.with_default_command(["--enroll", "K"]))
    assert args.command == "tray" and args.enroll == "K"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("mailbeacon ")


def test_every_documented_command_exists() -> None:
    parser = cli.build_parser()
    for argv in (
        ["server", "serve", "--listen", "127.0.0.1:1", "--db", "x.db"],
        ["server", "add-user", "rep", "--db", "x.db", "--json"],
        ["agent", "--enroll", "K", "--smtp-listen", "127.0.0.1:1", "--upstream", "smtp://h:1",
         "--relay-password", "p", "--notify", "jsonl"],
        ["activity", "--json"],
        ["record", "a@b.example", "--json"],
        ["contact", "a@b.example", "--lawful-basis", "none"],
        ["config", "get", "tracking.clicks"],
        ["config", "set", "privacy.enabled", "true"],
        ["mint", "--enroll", "K", "--url", "https://x.example/"],
        ["tray"],
    ):
        assert parser.parse_args(argv).func is not None
