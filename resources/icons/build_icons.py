"""Regenerates the SVG icon set in this folder: ``python resources/icons/build_icons.py``.

One geometry for every tray state keeps the set consistent: an envelope (the mail)
with a round status badge in the lower right corner. "light" icons are for light
panels (dark outline), "dark" icons for dark panels (light outline).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

# Per panel theme: envelope outline, envelope fill, ring that separates the badge.
THEMES = {
    "light": {"ink": "#1f2933", "paper": "#ffffff", "ring": "#ffffff"},
    "dark": {"ink": "#f1f3f5", "paper": "#2b3036", "ring": "#1b1e22"},
}

# Badge colour and the white glyph drawn on it, drawn around (18, 17.5) and shifted
# onto the badge, which stays inside the 24 px box.
STATES = {
    "connected": ("#2f9e44", '<path d="M15.4 17.6 L17.3 19.5 L20.7 15.7"/>'),
    "connecting": ("#e8890c", '<path d="M18 14.6 A2.9 2.9 0 1 1 15.1 17.5"/>'),
    "offline": ("#d63939", '<path d="M16.1 15.6 L19.9 19.4 M19.9 15.6 L16.1 19.4"/>'),
    "paused": ("#5f6b7a", '<path d="M16.7 15.4 V19.6 M19.3 15.4 V19.6"/>'),
}

# Paused and offline dim the envelope: nothing will be notified.
DIMMED = {"paused", "offline"}

TRAY = """<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <title>MailBeacon: {state}</title>
  <g opacity="{opacity}" stroke="{ink}" stroke-width="1.7" stroke-linejoin="round"
     stroke-linecap="round">
    <rect x="1.5" y="4.5" width="16" height="11.5" rx="1.6" fill="{paper}"/>
    <path d="M2.6 5.8 L9.5 11.2 L16.4 5.8" fill="none"/>
  </g>
  <circle cx="17.8" cy="17.7" r="5.3" fill="{badge}" stroke="{ring}" stroke-width="1.2"/>
  <g fill="none" stroke="#ffffff" stroke-width="1.6" stroke-linecap="round"
     stroke-linejoin="round" transform="translate(-0.2 0.2)">
    {glyph}
  </g>
</svg>
"""

APP = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <title>MailBeacon</title>
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#2b8ae6"/>
      <stop offset="1" stop-color="#1659a8"/>
    </linearGradient>
  </defs>
  <rect x="2" y="2" width="60" height="60" rx="13" fill="url(#bg)"/>
  <g stroke="#ffffff" stroke-width="3.4" stroke-linejoin="round" stroke-linecap="round">
    <rect x="9" y="24" width="36" height="26" rx="3.5" fill="#ffffff" fill-opacity="0.12"/>
    <path d="M11 27 L27 39 L43 27" fill="none"/>
  </g>
  <g fill="none" stroke="#ffd43b" stroke-width="3.4" stroke-linecap="round">
    <path d="M44 17 A8 8 0 0 1 52 25"/>
    <path d="M44 8.5 A16.5 16.5 0 0 1 60.5 25"/>
  </g>
  <circle cx="44" cy="25" r="3.6" fill="#ffd43b"/>
</svg>
"""


def main() -> None:
    """Write every icon file."""
    for theme, colours in THEMES.items():
        for state, (badge, glyph) in STATES.items():
            text = TRAY.format(
                state=state,
                opacity="0.55" if state in DIMMED else "1",
                badge=badge,
                glyph=glyph,
                **colours,
            )
            (HERE / f"tray-{state}-{theme}.svg").write_text(text, encoding="utf-8")
    (HERE / "app.svg").write_text(APP, encoding="utf-8")


if __name__ == "__main__":
    main()
