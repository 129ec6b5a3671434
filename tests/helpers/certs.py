"""Self-signed TLS certificates for the servers the tests start (openssl, as in CI)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.helpers import programs


def self_signed(
    folder: Path,
    common_name: str = "localhost",
    dns: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` in ``folder``, valid two days for the names given."""
    programs.require("openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    names = ",".join([*(f"DNS:{name}" for name in dns), *(f"IP:{ip}" for ip in ips)])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={common_name}",
         "-addext", f"subjectAltName={names}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
