"""A keyring backed by a JSON file, for CLI tests run as subprocesses.

Subprocesses cannot see the in-memory keyring of the test process, and must never
touch the rep's real keyring. Select this backend with
``PYTHON_KEYRING_BACKEND=tests.helpers.keyring_file_backend.FileKeyring`` and name the file
in ``MAILBEACON_TEST_KEYRING_FILE`` (``PYTHONPATH`` must reach the repository).
Tests only: it stores secrets in clear.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import NoKeyringError, PasswordDeleteError

ENV_FILE = "MAILBEACON_TEST_KEYRING_FILE"


class FileKeyring(KeyringBackend):
    """Secrets in the JSON file named by ``MAILBEACON_TEST_KEYRING_FILE``."""

    priority = 1

    def _path(self) -> Path:
        name = os.environ.get(ENV_FILE)
        if not name:
            raise NoKeyringError(f"{ENV_FILE} is not set")
        return Path(name)

    def _load(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self._path().read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def _save(self, data: dict[str, str]) -> None:
        path = self._path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True), "utf-8")
        tmp.replace(path)

    @staticmethod
    def _key(service: str, username: str) -> str:
        return f"{service}\x00{username}"

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(self._key(service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[self._key(service, username)] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(self._key(service, username), None) is None:
            raise PasswordDeleteError(username)
        self._save(data)

    def items(self) -> dict[tuple[str, str], str]:
        """Everything stored, keyed by (service, name), for assertions."""
        return {tuple(k.split("\x00", 1)): v for k, v in self._load().items()}  # type: ignore[misc]
