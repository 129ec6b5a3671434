"""Desktop packaging that needs no bundle build: the menu entry, its installer, the icons
rendered from the SVG, and the PyInstaller spec's choice of Qt modules."""

from __future__ import annotations

import ast
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

from tests.helpers import programs
from tests.helpers.agent_process import REPO

LINUX = REPO / "packaging" / "linux"
INSTALL = LINUX / "install.sh"
SPEC = REPO / "packaging" / "mailbeacon.spec"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def need(program: str) -> str:
    """The program's path; skipped when missing, except in CI, where that fails."""
    return programs.path_of(program)


def validate(path: Path) -> None:
    """desktop-file-validate accepts ``path`` with no error and no warning."""
    result = subprocess.run(
        [need("desktop-file-validate"), str(path)],
        check=False, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def entry_values(path: Path) -> dict[str, str]:
    """Key=value lines of a desktop entry."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR."""
    assert data.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def install(prefix: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run install.sh from the source tree, with this venv's Python for the PNGs."""
    env = dict(os.environ, PYTHON=sys.executable, HOME=str(prefix.parent))
    return subprocess.run(
        ["sh", str(INSTALL), "--prefix", str(prefix), *args],
        check=False, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_the_menu_entry_validates_and_starts_the_tray() -> None:
    validate(LINUX / "mailbeacon.desktop")
    entry = entry_values(LINUX / "mailbeacon.desktop")
    assert entry["Exec"] == "mailbeacon tray"
    assert entry["Icon"] == "mailbeacon"
    assert entry["Terminal"] == "false"


def test_enrollment_links_open_mailbeacon_enroll() -> None:
    validate(LINUX / "mailbeacon-enroll.desktop")
    entry = entry_values(LINUX / "mailbeacon-enroll.desktop")
    assert entry["Exec"] == "mailbeacon enroll %u"
    assert entry["MimeType"] == "x-scheme-handler/mailbeacon;"
    assert entry["NoDisplay"] == "true"  # a handler, not a menu item


def test_install_puts_the_entry_and_icons_under_the_prefix_and_uninstall_removes_them(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "share"
    done = install(prefix, "--exec", "/opt/mailbeacon/mailbeacon")
    assert done.returncode == 0, done.stderr
    entry = prefix / "applications" / "mailbeacon.desktop"
    validate(entry)
    assert entry_values(entry)["Exec"] == "/opt/mailbeacon/mailbeacon tray"
    handler = prefix / "applications" / "mailbeacon-enroll.desktop"
    validate(handler)
    assert entry_values(handler)["Exec"] == "/opt/mailbeacon/mailbeacon enroll %u"
    icons = prefix / "icons" / "hicolor"
    svg = icons / "scalable" / "apps" / "mailbeacon.svg"
    assert svg.read_bytes() == (REPO / "resources" / "icons" / "app.svg").read_bytes()
    for size in (16, 48, 256):
        png = icons / f"{size}x{size}" / "apps" / "mailbeacon.png"
        assert png_size(png.read_bytes()) == (size, size)

    gone = install(prefix, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert [p for p in prefix.rglob("*") if p.is_file()] == []


def test_install_refuses_a_program_path_it_cannot_write_safely(tmp_path: Path) -> None:
    done = install(tmp_path / "share", "--exec", "/home/a rep/mailbeacon")
    assert done.returncode == 2
    assert "without spaces" in done.stderr
    assert not (tmp_path / "share" / "applications" / "mailbeacon.desktop").exists()


def test_icons_are_rendered_from_the_svg_for_every_platform(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "packaging" / "make_icons.py"), str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    ico = (tmp_path / "mailbeacon.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 5
    sizes = []
    for index in range(count):
        side, _, _, _, _, bpp, length, offset = struct.unpack(
            "<BBBBHHII", ico[6 + 16 * index : 22 + 16 * index]
        )
        image = ico[offset : offset + length]
        width = side or 256
        assert png_size(image) == (width, width) and bpp == 32
        sizes.append(width)
    assert {16, 32, 48, 256} <= set(sizes)

    icns = (tmp_path / "mailbeacon.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    position, kinds = 8, {}
    while position < len(icns):
        kind_code, length = icns[position : position + 4], struct.unpack(
            ">I", icns[position + 4 : position + 8]
        )[0]
        kinds[kind_code] = png_size(icns[position + 8 : position + length])
        position += length
    assert position == len(icns)
    assert kinds[b"ic10"] == (1024, 1024) and kinds[b"icp4"] == (16, 16)

    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        png = tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "mailbeacon.png"
        assert png_size(png.read_bytes()) == (size, size)


def _excluded_qt_modules() -> set[str]:
    """The spec's UNUSED_QT list, read from its source (the spec only runs in PyInstaller)."""
    tree = ast.parse(SPEC.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "UNUSED_QT" for t in node.targets
        ):
            words = " ".join(
                str(n.value) for n in ast.walk(node) if isinstance(n, ast.Constant)
            ).split()
            return {word for word in words if word.startswith("Qt")}
    raise AssertionError("UNUSED_QT not found in the spec")


def test_the_bundle_keeps_every_qt_module_the_app_imports() -> None:
    used = set()
    for source in (REPO / "app").rglob("*.py"):
        used |= set(re.findall(r"PySide6\.(Qt\w+)", source.read_text(encoding="utf-8")))
    excluded = _excluded_qt_modules()
    assert used, "no PySide6 import found: is app/ where it was?"
    assert not used & excluded, f"the spec excludes Qt modules the app imports: {used & excluded}"
    assert {"QtQml", "QtQuick", "QtWebEngineCore", "Qt3DCore", "QtMultimedia"} <= excluded
