"""Email templates: stored, filled with a contact's details, reused.

Templates live in ``<config_dir>/templates.json`` (``{"version": 1, "templates":
[{"name", "subject", "html"}, ...]}``), written atomically. A template holds
placeholders (``{first_name}``, ``{last_name}``, ``{company}``, ``{email}``) and
never tracking: the sender mints a fresh pixel and fresh links for every email,
and any pixel or tracked link that came into the body (a pasted earlier email)
is removed or unwrapped when the template is saved.

No Qt here: the compose window calls these functions.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailbeacon.agent.records.model import Contact
from mailbeacon.core.durable import atomic_write
from mailbeacon.core.html_links import plan_html, render
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.core.profile import Profile
from mailbeacon.core.stale import unwrap_text

log = logging.getLogger(__name__)

FILE_NAME = "templates.json"
FILE_VERSION = 1
MAX_TEMPLATES = 500
MAX_NAME = 120
PLACEHOLDERS = ("first_name", "last_name", "company", "email")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


class TemplatesError(Exception):
    """The templates file cannot be read or written; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Template:
    """A reusable subject and HTML body with placeholders."""

    name: str
    subject: str
    html: str


class TemplateStore:
    """The templates of one profile (one JSON file)."""

    def __init__(self, path: Path, tr: Language = ENGLISH) -> None:
        """``tr`` words the refusals the compose window shows the rep."""
        self.path = path
        self._tr = tr

    @classmethod
    def for_profile(cls, profile: Profile, tr: Language = ENGLISH) -> TemplateStore:
        """The store in the profile's config folder."""
        return cls(profile.config_dir / FILE_NAME, tr)

    def load(self) -> list[Template]:
        """Every template, by name; an absent file is no templates."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TemplatesError(
                self._tr.t(
                    "cannot read the templates file {path}: {error}", path=self.path, error=exc
                )
            ) from exc
        try:
            data = json.loads(raw)
            items = data["templates"]
            templates = [
                Template(str(item["name"]), str(item["subject"]), str(item["html"]))
                for item in items
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise TemplatesError(
                self._tr.t(
                    "the templates file {path} is damaged ({error}); fix it or move it aside",
                    path=self.path,
                    error=exc,
                )
            ) from exc
        return sorted(templates, key=lambda t: t.name.casefold())

    def save(self, template: Template) -> Template:
        """Add ``template``, replacing one of the same name; returns what was stored
        (tracking removed). Raises TemplatesError or ValueError (a bad name)."""
        name = template.name.strip()
        if not name:
            raise ValueError(self._tr.t("A template needs a name."))
        if len(name) > MAX_NAME:
            raise ValueError(
                self._tr.n(
                    "A template name has at most {count} character.",
                    "A template name has at most {count} characters.",
                    MAX_NAME,
                )
            )
        stored = Template(
            name, strip_tracking_text(template.subject), strip_tracking(template.html)
        )
        others = [t for t in self.load() if t.name.casefold() != name.casefold()]
        if len(others) >= MAX_TEMPLATES:
            raise ValueError(
                self._tr.n(
                    "There is already {count} template; delete it first.",
                    "There are already {count} templates; delete some first.",
                    MAX_TEMPLATES,
                )
            )
        self._write([*others, stored])
        return stored

    def delete(self, name: str) -> bool:
        """Remove the template called ``name``; False if there was none."""
        templates = self.load()
        kept = [t for t in templates if t.name.casefold() != name.strip().casefold()]
        if len(kept) == len(templates):
            return False
        self._write(kept)
        return True

    def _write(self, templates: list[Template]) -> None:
        ordered = sorted(templates, key=lambda t: t.name.casefold())
        payload = {
            "version": FILE_VERSION,
            "templates": [{"name": t.name, "subject": t.subject, "html": t.html} for t in ordered],
        }
        data = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            raise TemplatesError(
                self._tr.t(
                    "cannot write the templates file {path}: {error}", path=self.path, error=exc
                )
            ) from exc


def strip_tracking(html_text: str) -> str:
    """The HTML without MailBeacon pixels, with tracked links unwrapped to their targets."""
    plan = plan_html(html_text, track=False, clicks=False)
    if not plan.changed:
        return html_text
    return render(html_text, plan, None, None, lambda _index, target: target)


def strip_tracking_text(text: str) -> str:
    """Plain text with tracked-link URLs replaced by their targets."""
    return unwrap_text(text)[0]


# ---------------------------------------------------------------- placeholders


def split_name(name: str) -> tuple[str, str]:
    """``(first, last)`` of a display name: ``Alicja Nowak`` and ``Nowak, Alicja`` alike."""
    cleaned = " ".join(name.split())
    if "," in cleaned:
        last, _, first = cleaned.partition(",")
        return first.strip(), last.strip()
    first, _, last = cleaned.partition(" ")
    return first, last


def placeholder_values(
    address: str, contact: Contact | None, typed_name: str = ""
) -> dict[str, str | None]:
    """What each placeholder becomes for one recipient; None where nothing is known.

    The contact's stored name wins over the name typed in the To field.
    """
    name = (contact.name if contact is not None else "") or typed_name
    first, last = split_name(name)
    company = contact.company if contact is not None else ""
    return {
        "first_name": first or None,
        "last_name": last or None,
        "company": company or None,
        "email": address or None,
    }


def fill(text: str, values: Mapping[str, str | None], *, as_html: bool = False) -> str:
    """``text`` with known placeholders replaced (HTML-escaped with ``as_html``);
    placeholders without a value stay as written, for the rep to see and fill in."""

    def replace(match: re.Match[str]) -> str:
        value = values.get(match[1])
        if value is None:
            return match[0]
        return html.escape(value, quote=True) if as_html else value

    return _PLACEHOLDER.sub(replace, text)


def unfilled(*texts: str) -> list[str]:
    """The placeholders still in ``texts``, each once, in order of appearance."""
    found: list[str] = []
    for text in texts:
        for match in _PLACEHOLDER.finditer(text):
            if match[0] not in found:
                found.append(match[0])
    return found
