"""Start at login (``app.autostart``): the freedesktop autostart entry under an injected
config home, never the real one."""

from __future__ import annotations

import shlex
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

from mailbeacon.tray.desktop.autostart import (
    AutostartError,
    apply_autostart,
    desktop_exec,
    entry_path,
    exec_command_for,
    render_entry,
    xdg_config_home,
)
from tests.helpers import programs


def read_entry(path: Path) -> dict[str, str]:
    """The [Desktop Entry] group as a dict (keys case-sensitive)."""
    parser = ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return dict(parser["Desktop Entry"])


def unquote_exec(value: str) -> list[str]:
    """What a desktop runs for an Exec value, parsed by the spec's rules: unescape the
    string (``\\\\`` -> ``\\``), split on spaces outside double quotes, inside quotes a
    backslash escapes ``"`` `` ` `` ``$`` ``\\``, and ``%%`` is a literal percent."""
    text = value.replace("\\\\", "\\")
    args: list[str] = []
    current: list[str] = []
    started = quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and text[i + 1] in '"`$\\':
            current.append(text[i + 1])
            i += 1
        elif char == '"':
            quoted, started = not quoted, True
        elif char == " " and not quoted:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
        i += 1
    assert not quoted, f"unterminated quote in {value!r}"
    if started:
        args.append("".join(current))
    return [arg.replace("%%", "%") for arg in args]


def validate(path: Path) -> None:
    """``desktop-file-validate`` accepts the file (skipped outside CI when it is missing)."""
    programs.require("desktop-file-validate")
    result = subprocess.run(
        ["desktop-file-validate", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_turning_it_on_writes_a_valid_entry_that_runs_the_command(tmp_path: Path) -> None:
    command = "/opt/mailbeacon/mailbeacon tray"
    path = apply_autostart(True, tmp_path, command)
    assert path == tmp_path / "autostart" / "mailbeacon.desktop" == entry_path(tmp_path)
    entry = read_entry(path)
    assert entry["Type"] == "Application"
    assert entry["Exec"] == command
    assert entry["Icon"] == "mailbeacon"
    assert entry["X-GNOME-Autostart-enabled"] == "true"
    assert "Hidden" not in entry  # Hidden=true would mean "do not start"
    validate(path)
    assert [p.name for p in path.parent.iterdir()] == ["mailbeacon.desktop"]  # no temp left


def test_turning_it_off_removes_the_entry_and_nothing_else(tmp_path: Path) -> None:
    other = tmp_path / "autostart" / "someone-else.desktop"
    apply_autostart(True, tmp_path, "mailbeacon tray")
    other.write_text("[Desktop Entry]\n")
    path = apply_autostart(False, tmp_path, "mailbeacon tray")
    assert not path.exists()
    assert other.exists()
    # Off when already off: nothing to do, no error.
    assert apply_autostart(False, tmp_path, "mailbeacon tray") == path
    assert not path.exists()


def test_turning_it_on_again_replaces_the_command(tmp_path: Path) -> None:
    apply_autostart(True, tmp_path, "/old/mailbeacon tray")
    path = apply_autostart(True, tmp_path, "/new/mailbeacon tray")
    assert read_entry(path)["Exec"] == "/new/mailbeacon tray"


@pytest.mark.parametrize(
    "argv",
    [
        ["/home/a rep/.venv/bin/python", "-m", "mailbeacon", "tray"],
        ["/opt/mb/mailbeacon", "--profile", '/p/"quoted" $HOME `x` \\ 100%', "tray"],
        ["/opt/mb/mailbeacon", "--profile", "/p/it's", "tray"],
    ],
    ids=["space", "specials", "apostrophe"],
)
def test_odd_paths_are_quoted_so_the_desktop_runs_exactly_them(
    tmp_path: Path, argv: list[str]
) -> None:
    path = apply_autostart(True, tmp_path, shlex.join(argv))
    assert unquote_exec(read_entry(path)["Exec"]) == argv
    validate(path)


def test_exec_quoting_follows_the_spec() -> None:
    assert desktop_exec(["/usr/bin/mailbeacon", "tray"]) == "/usr/bin/mailbeacon tray"
    assert desktop_exec(["/a b/mb"]) == '"/a b/mb"'
    # In quotes, " ` $ \ take a backslash; then every backslash is doubled (string level).
    assert desktop_exec(['a"b']) == '"a\\\\"b"'
    assert desktop_exec(["50%"]) == "50%%"
    assert desktop_exec([""]) == '""'
    with pytest.raises(AutostartError):
        desktop_exec([])


def test_a_malformed_command_is_refused_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(AutostartError, match="malformed"):
        apply_autostart(True, tmp_path, '"/unterminated')
    assert not entry_path(tmp_path).exists()


@pytest.mark.expect_log("cannot write the autostart entry")
def test_an_unwritable_config_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "autostart"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(AutostartError, match="not writable"):
        apply_autostart(True, tmp_path, "mailbeacon tray")
    assert blocker.read_text() == "a file where the folder should be"


def test_the_command_starts_this_installation_with_its_profile(tmp_path: Path) -> None:
    argv = shlex.split(exec_command_for(tmp_path / "my profile"))
    assert argv == [sys.executable, "-m", "mailbeacon", "--profile", str(tmp_path / "my profile"),
                    "tray"]  # fmt: skip
    assert shlex.split(exec_command_for()) == [sys.executable, "-m", "mailbeacon", "tray"]


def test_a_frozen_bundle_starts_its_own_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/mailbeacon/mailbeacon")
    assert exec_command_for() == "/opt/mailbeacon/mailbeacon tray"


def test_the_config_home_follows_xdg() -> None:
    assert xdg_config_home({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg")
    assert xdg_config_home({"HOME": "/h"}) == Path("/h/.config")
    # A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
    assert xdg_config_home({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path("/h/.config")


def test_the_rendered_entry_is_what_is_written(tmp_path: Path) -> None:
    path = apply_autostart(True, tmp_path, "mailbeacon tray")
    assert path.read_text(encoding="utf-8") == render_entry("mailbeacon tray")
