"""``python -m mailbeacon``."""

import sys

from mailbeacon.cli import main

sys.exit(main())
