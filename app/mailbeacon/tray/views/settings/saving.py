"""What the settings dialog's OK does with the typed values: all of it or none of it.

No Qt here. The values go through ``Settings.set`` on a copy (the same parsing
and checks as ``mailbeacon config set``) and every refusal is collected by key,
so the dialog can show each under its field. Secrets go to the ``SecretStore``
(the OS keyring), never into the settings; they are written first and put back
as they were if saving the settings fails, so an OK never leaves half of a
change behind. A keyring that cannot be used stops everything before anything
is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from mailbeacon.agent.settings.errors import SettingError, reason_of
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import KEYS, SECRET_KEYS, Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import ENGLISH, Language, in_language, mark, said
from mailbeacon.tray.views.settings.wording import BAD_TEAM_LINK

log = logging.getLogger(__name__)
NOT_SAVED = mark("The settings could not be saved, nothing was changed: {error}")


class Refused(Exception):
    """Saving stopped; the message is for the rep."""


def checked_settings(
    settings: Settings, texts: Mapping[str, str]
) -> tuple[Settings, dict[str, str]]:
    """A copy of ``settings`` with every typed value applied, and the refusals by key."""
    trial = settings.copy()
    pending = dict(texts)
    errors: dict[str, str] = {}
    # A value may be refused only because of another one not applied yet
    # (smtp:// before allow_plain): retry while that makes progress (bounded).
    for _round in range(len(KEYS)):
        errors = {}
        progressed = False
        for key, text in list(pending.items()):
            try:
                trial.set(key, text)
            except SettingError as exc:
                errors[key] = _reason(key, exc)
            else:
                del pending[key]
                progressed = True
        if not errors or not progressed:
            break
    return trial, errors


def checked_secrets(texts: Mapping[str, str]) -> tuple[dict[Secret, str], dict[str, str]]:
    """Typed secrets (by setting key) as keyring values to write, and refusals by key.

    An empty field writes nothing (the stored secret stays); a team link (the
    enrollment key) must decode.
    """
    values: dict[Secret, str] = {}
    errors: dict[str, str] = {}
    for key, typed in texts.items():
        text = typed
        name = Secret(SECRET_KEYS[key])
        if name is Secret.ENROLLMENT:
            text = text.strip()
            if text:
                try:
                    Enrollment.decode(text)
                except ValueError as exc:
                    # The core's words name the command-line "enrollment key".
                    log.info("the typed team link is not valid: %s", exc)
                    errors[key] = BAD_TEAM_LINK
                    continue
        if text:
            values[name] = text
    return values, errors


def write_all(
    secrets: SecretStore,
    save: Callable[[Settings], None],
    trial: Settings,
    values: dict[Secret, str],
    tr: Language = ENGLISH,
) -> None:
    """Secrets first (rolled back if anything after them fails), then the settings.

    Raises ``Refused`` with words for the rep (in ``tr``) when nothing could be saved.
    """
    names = _affected(values)
    try:
        before = {name: secrets.get(name) for name in names}
    except SecretStoreUnavailable as exc:
        log.warning("settings not saved: %s", exc)
        raise Refused(tr.t("Nothing was saved. {error}", error=in_language(said(exc), tr))) from exc
    try:
        for name, value in values.items():
            if name is Secret.ENROLLMENT:
                secrets.set_enrollment(Enrollment.decode(value))
            else:
                secrets.set(name, value)
        save(trial)
    except SecretStoreUnavailable as exc:
        _restore(secrets, before)
        log.warning("settings not saved: %s", exc)
        raise Refused(tr.t("Nothing was saved. {error}", error=in_language(said(exc), tr))) from exc
    except (OSError, SettingError) as exc:
        _restore(secrets, before)
        log.error("saving the settings failed: %s", exc)
        raise Refused(tr.t(NOT_SAVED, error=exc)) from exc
    except Exception as exc:  # whatever the caller's save raises, the rep gets words
        _restore(secrets, before)
        log.exception("saving the settings failed")
        raise Refused(tr.t(NOT_SAVED, error=exc)) from exc


def _restore(secrets: SecretStore, before: dict[Secret, str | None]) -> None:
    # Best effort: put back what the keyring held before this OK. (A secret that
    # came from the environment reads as that value and is written back as such.)
    for name, value in before.items():
        try:
            if value is None:
                secrets.delete(name)
            else:
                secrets.set(name, value)
        except SecretStoreUnavailable as exc:
            log.error("could not restore %s after a failed save: %s", name, exc)


def _reason(key: str, error: SettingError) -> str:
    return reason_of(error, key)


def _affected(values: Iterable[Secret]) -> list[Secret]:
    """The keyring entries writing ``values`` touches (an enrollment writes three)."""
    names: list[Secret] = []
    for name in values:
        if name is Secret.ENROLLMENT:
            names += [Secret.ENROLLMENT, Secret.API_TOKEN, Secret.SIGNING_KEY]
        else:
            names.append(name)
    return names
