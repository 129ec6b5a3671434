"""Templates: stored atomically without any tracking, reused in the compose window and
filled from the first To recipient's contact record; a placeholder with nothing to fill
it stops the send with a message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.profile import Profile
from mailbeacon.core.tokens import new_message_key, new_recipient_key
from mailbeacon.core.urls import TrackingUrls
from mailbeacon.tray.views.compose.templates import (
    Template,
    TemplatesError,
    TemplateStore,
    fill,
    placeholder_values,
    split_name,
    unfilled,
)
from mailbeacon.tray.views.compose.window import ComposeDefaults, ComposeWindow

WAIT_MS = 10_000
URLS = TrackingUrls(Enrollment("https://track.example.com", 3, "api", b"s" * 32))


@pytest.fixture
def templates(tmp_path: Path) -> TemplateStore:
    return TemplateStore(tmp_path / "config" / "templates.json")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordsStore]:
    with RecordsStore(tmp_path / "records.db") as records:
        records.upsert_contact("alice@example.com", name="Alicja Nowak", company="<b>Acme</b>")
        records.upsert_contact("bob@example.com", name="Bob")
        yield records


# ---------------------------------------------------------------- storage


def test_templates_are_saved_loaded_replaced_and_deleted(templates: TemplateStore) -> None:
    assert templates.load() == []
    templates.save(Template("Intro", "Hello {first_name}", "<p>Dear {first_name}</p>"))
    templates.save(Template("follow-up", "Following up", "<p>Any news?</p>"))
    templates.save(Template("intro", "Hi {first_name}", "<p>Hi</p>"))  # same name, any case
    assert templates.load() == [
        Template("follow-up", "Following up", "<p>Any news?</p>"),
        Template("intro", "Hi {first_name}", "<p>Hi</p>"),
    ]
    assert templates.path.stat().st_mode & 0o777 == 0o600
    assert json.loads(templates.path.read_text())["version"] == 1
    assert templates.delete("INTRO") is True
    assert templates.delete("intro") is False
    assert [t.name for t in templates.load()] == ["follow-up"]


def test_a_template_never_keeps_a_pixel_or_a_tracked_link(templates: TemplateStore) -> None:
    key, rcpt = new_message_key(), new_recipient_key()
    pixel = URLS.pixel(key, rcpt)
    tracked = URLS.click(key, rcpt, 0, "https://example.com/offer?a=1&b=2")
    html = (
        f'<p>See <a href="{tracked}">the offer</a></p>'
        f'<img src="{pixel}" width="1" height="1">'
    )
    stored = templates.save(Template("Quoted", f"Re: {tracked}", html))
    assert "/o/" not in stored.html and "/c/" not in stored.html
    assert 'href="https://example.com/offer?a=1&amp;b=2"' in stored.html
    assert stored.subject == "Re: https://example.com/offer?a=1&b=2"
    assert templates.load() == [stored]


def test_a_damaged_file_is_an_error_naming_it(templates: TemplateStore) -> None:
    templates.path.parent.mkdir(parents=True)
    templates.path.write_text("{not json")
    with pytest.raises(TemplatesError, match=r"templates\.json is damaged"):
        templates.load()


def test_a_template_needs_a_name(templates: TemplateStore) -> None:
    with pytest.raises(ValueError, match="needs a name"):
        templates.save(Template("  ", "s", "b"))


def test_the_profile_keeps_templates_in_its_config_folder(profile: Profile) -> None:
    assert TemplateStore.for_profile(profile).path == profile.config_dir / "templates.json"


# ---------------------------------------------------------------- placeholders


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("Alicja Nowak", ("Alicja", "Nowak")),
        ("Nowak, Alicja", ("Alicja", "Nowak")),
        ("Jan van der Berg", ("Jan", "van der Berg")),
        ("  Madonna ", ("Madonna", "")),
        ("", ("", "")),
    ],
)
def test_names_split_into_first_and_last(name: str, split: tuple[str, str]) -> None:
    assert split_name(name) == split


def test_placeholders_fill_from_the_contact_and_escape_in_html(store: RecordsStore) -> None:
    values = placeholder_values("alice@example.com", store.contact("alice@example.com"))
    text = "Dear {first_name} {last_name} of {company} <{email}> {unknown}"
    assert fill(text, values) == (
        "Dear Alicja Nowak of <b>Acme</b> <alice@example.com> {unknown}"
    )
    assert fill(text, values, as_html=True) == (
        "Dear Alicja Nowak of &lt;b&gt;Acme&lt;/b&gt; <alice@example.com> {unknown}"
    )
    bob = placeholder_values("bob@example.com", store.contact("bob@example.com"))
    assert fill("{first_name} from {company}", bob) == "Bob from {company}"
    assert unfilled(fill("{first_name} {last_name}", bob)) == ["{last_name}"]
    typed = placeholder_values("new@example.com", None, "Ewa Lis")
    assert fill("{first_name} {last_name}", typed) == "Ewa Lis"


# ---------------------------------------------------------------- in the window


def window_with(qtbot: QtBot, store: RecordsStore, templates: TemplateStore,
                send: Any = lambda m: "q", name: str = "Intro") -> ComposeWindow:
    window = ComposeWindow(
        send,
        defaults=ComposeDefaults("rep@example.net"),
        lookup_contact=store.contact,
        templates=templates,
        ask_text=lambda _parent, _title, _label, _initial: name,
        confirm=lambda _parent, _question: True,
    )
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_saved_template_is_used_for_the_first_to_recipient(
    qtbot: QtBot, store: RecordsStore, templates: TemplateStore
) -> None:
    author = window_with(qtbot, store, templates)
    author.subject_edit.setText("Hello {first_name}")
    author.editor.setHtml("<p>Dear {first_name} {last_name} of {company},</p><p><b>Offer</b></p>")
    with qtbot.waitSignal(author.templatesChanged, timeout=WAIT_MS):
        author.save_template_button.click()
    assert [t.name for t in templates.load()] == ["Intro"]

    writer = window_with(qtbot, store, templates)
    qtbot.waitUntil(lambda: writer.template_box.count() == 1, timeout=WAIT_MS)
    writer.to_edit.setText("alice@example.com")
    writer.use_template_button.click()
    qtbot.waitUntil(lambda: writer.subject_edit.text() == "Hello Alicja", timeout=WAIT_MS)
    assert writer.editor.toPlainText().startswith("Dear Alicja Nowak of <b>Acme</b>,")
    assert "font-weight:700" in writer.draft().html  # formatting kept


def test_placeholders_left_in_are_filled_when_sending(
    qtbot: QtBot, store: RecordsStore, templates: TemplateStore
) -> None:
    sent: list[IncomingMessage] = []
    window = window_with(qtbot, store, templates, send=lambda m: sent.append(m) or "q")
    window.to_edit.setText("Alicja <alice@example.com>")
    window.subject_edit.setText("For {first_name}")
    window.editor.setPlainText("Hi {first_name}")
    with qtbot.waitSignal(window.sent, timeout=WAIT_MS):
        window.send_button.click()
    raw = sent[0].data
    assert b"Subject: For Alicja" in raw
    assert b"{first_name}" not in raw


def test_a_placeholder_with_no_value_stops_the_send(
    qtbot: QtBot, store: RecordsStore, templates: TemplateStore
) -> None:
    sent: list[IncomingMessage] = []
    window = window_with(qtbot, store, templates, send=lambda m: sent.append(m) or "q")
    window.to_edit.setText("bob@example.com")
    window.subject_edit.setText("News for {company}")
    with qtbot.waitSignal(window.sendFailed, timeout=WAIT_MS) as failed:
        window.send_button.click()
    assert failed.args[0].startswith("Nothing is known for {company} of bob@example.com")
    assert sent == [] and window.isVisible()


def test_deleting_a_template_asks_and_removes_it(
    qtbot: QtBot, store: RecordsStore, templates: TemplateStore
) -> None:
    templates.save(Template("Intro", "s", "<p>b</p>"))
    window = window_with(qtbot, store, templates)
    qtbot.waitUntil(lambda: window.template_box.count() == 1, timeout=WAIT_MS)
    with qtbot.waitSignal(window.templatesChanged, timeout=WAIT_MS):
        window.delete_template_button.click()
    assert templates.load() == []
    assert window.template_box.count() == 0 and not window.use_template_button.isEnabled()
