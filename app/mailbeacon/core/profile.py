"""Where a profile keeps its config, data and keyring namespace."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "mailbeacon"
ENV = "MAILBEACON_PROFILE"


@dataclass(frozen=True, slots=True)
class Profile:
    """Paths of one profile; two profiles never share a file or a keyring entry."""

    config_dir: Path
    data_dir: Path
    keyring_service: str

    @classmethod
    def at(cls, root: Path) -> Profile:
        """A self-contained profile under ``root`` (``--profile DIR``)."""
        root = root.expanduser().resolve()
        digest = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:12]
        return cls(root / "config", root / "data", f"{APP}:{digest}")

    @classmethod
    def default(cls) -> Profile:
        """The user's own profile, in the platform's usual places."""
        return cls(
            Path(platformdirs.user_config_dir(APP)),
            Path(platformdirs.user_data_dir(APP)),
            APP,
        )

    @classmethod
    def resolve(cls, option: str | None, environ: dict[str, str] | None = None) -> Profile:
        """``--profile`` first, then ``MAILBEACON_PROFILE``, then the default."""
        env = os.environ if environ is None else environ
        chosen = option or env.get(ENV)
        return cls.at(Path(chosen)) if chosen else cls.default()

    @property
    def config_file(self) -> Path:
        """The settings file (no secrets in it)."""
        return self.config_dir / "config.json"
