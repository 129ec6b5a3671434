"""The deliverability table: ``.venv/bin/python -m tests.deliverability``.

Sends the corpus (``tests/data/deliverability/``) through the real relay untracked,
tracked and clicks only, scores each with SpamAssassin and Rspamd on this machine
(no network, ``tests/deliverability/filters.py``) and prints one Markdown table.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.deliverability.report import score_all, table


def main() -> int:
    """Run everything and print the table; 1 when a filter is missing."""
    missing = [p for p in ("spamassassin", "rspamd") if shutil.which(p) is None]
    if missing:
        print(f"missing: {', '.join(missing)} (Debian packages spamassassin, rspamd)")
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mb-deliverability-") as tmp:
        rows = score_all(Path(tmp))
    print(table(rows))
    print(f"\n{len(rows) // 2} emails, SpamAssassin and Rspamd, "
          f"tracking URL https://track.acme-sales.com; {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
