"""The command line's shape (docs/interfaces.md)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

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


def _registered(module: str) -> set[str]:
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(sub)
    return set(sub.choices)


def test_each_command_is_found_in_the_module_that_registers_it() -> None:
    modules = cli.command_modules()
    for module in modules:
        table = {word for word, owner in cli._COMMANDS.items() if owner == module}
        assert _registered(module) == table, module
    every = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(every) == set(cli._COMMANDS)


def test_a_command_imports_only_its_own_module() -> None:
    # In a fresh interpreter: the test process has imported everything already.
    code = (
        "import sys\n"
        "from mailbeacon import cli\n"
        "args = cli.build_parser('config').parse_args(['config', 'get', 'relay.port'])\n"
        "assert args.func is not None\n"
        "print(sorted(m for m in sys.modules if m.startswith('mailbeacon.') "
        "and m.endswith('commands')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "['mailbeacon.agent.records.commands']"


@pytest.mark.parametrize("argv", [["--help"], ["configg"]])
def test_help_and_a_mistyped_command_list_every_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(argv)
    said = capsys.readouterr()
    listing = said.out if argv == ["--help"] else said.err
    for word in cli._COMMANDS:
        assert word in listing
