"""The version lives in one place (``mailbeacon.__version__``); everything else reads it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import mailbeacon
from tests.helpers.agent_process import REPO

# PEP 440 public versions, as release tooling accepts them.
PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def test_the_command_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailbeacon", "--version"],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"mailbeacon {mailbeacon.__version__}"
    assert PEP440.match(mailbeacon.__version__)


def test_pyproject_reads_the_version_from_the_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    dynamic = config["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "mailbeacon.__version__"}


def test_the_changelog_describes_this_version() -> None:
    changelog = (REPO / "packaging" / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (\S+)", changelog, flags=re.MULTILINE)
    assert headings and headings[0] == mailbeacon.__version__
