"""Renders the app icon from ``resources/icons/app.svg`` into the formats packagers need.

Usage: ``python packaging/make_icons.py OUTDIR [SVG]`` (the PyInstaller spec and
``packaging/linux/install.sh`` run it). Writes

* ``hicolor/<N>x<N>/apps/mailbeacon.png`` for the freedesktop icon theme,
* ``mailbeacon.ico`` (Windows: 16-256 px, PNG-compressed entries),
* ``mailbeacon.icns`` (macOS: 16-1024 px, PNG entries).

The SVG is the only source: nothing binary is committed. Qt's ``QSvgRenderer`` draws
it; the ICO and ICNS containers are written here because Qt's image writers store one
size per file.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SVG = ROOT / "resources" / "icons" / "app.svg"
NAME = "mailbeacon"

HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS entry types holding PNG data, by pixel size (the @2x types share sizes).
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
)


class IconError(Exception):
    """The SVG could not be rendered or a file not written."""


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    """The SVG drawn into a transparent ``size`` x ``size`` square, as PNG bytes."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):  # type: ignore[call-overload]  # stubs say bytes; runtime wants str
        raise IconError(f"Qt could not encode a {size} px PNG")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: Iterable[tuple[int, bytes]]) -> bytes:
    """An ICO file whose entries are the given (size, PNG) pairs."""
    entries = list(pngs)
    header = struct.pack("<HHH", 0, 1, len(entries))
    offset = len(header) + 16 * len(entries)
    directory = b""
    for size, png in entries:
        side = 0 if size >= 256 else size  # 0 means 256 in an ICO directory
        directory += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
    return header + directory + b"".join(png for _, png in entries)


def icns_bytes(pngs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """An ICNS file whose entries are the given (type, PNG) pairs."""
    body = b"".join(kind + struct.pack(">I", 8 + len(png)) + png for kind, png in pngs)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def make_icons(out_dir: Path, svg: Path = DEFAULT_SVG) -> list[Path]:
    """Write the hicolor PNGs, the ICO and the ICNS for ``svg`` under ``out_dir``."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise IconError(f"cannot read the SVG icon {svg}")
    cache: dict[int, bytes] = {}

    def png(size: int) -> bytes:
        if size not in cache:
            cache[size] = render_png(renderer, size)
        return cache[size]

    written: list[Path] = []
    for size in HICOLOR_SIZES:
        path = out_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png"
        written.append(_write(path, png(size)))
    written.append(_write(out_dir / f"{NAME}.ico", ico_bytes((s, png(s)) for s in ICO_SIZES)))
    written.append(
        _write(out_dir / f"{NAME}.icns", icns_bytes((kind, png(s)) for kind, s in ICNS_TYPES))
    )
    return written


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def main(argv: list[str]) -> int:
    """Command line: ``make_icons.py OUTDIR [SVG]``."""
    if len(argv) not in (1, 2):
        print("usage: make_icons.py OUTDIR [SVG]", file=sys.stderr)
        return 2
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    try:
        paths = make_icons(Path(argv[0]), Path(argv[1]) if len(argv) == 2 else DEFAULT_SVG)
    except (IconError, OSError) as exc:
        print(f"make_icons: {exc}", file=sys.stderr)
        return 1
    finally:
        del app
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
