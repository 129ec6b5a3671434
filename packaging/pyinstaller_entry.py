"""Entry script of the PyInstaller bundle (``packaging/mailbeacon.spec``).

It lives outside the package so that PyInstaller does not put ``app/mailbeacon`` itself
on the import path (it adds each script's folder). Same behaviour as the console script:
bare ``mailbeacon`` starts the tray, ``mailbeacon server serve ...`` the server.
"""

import sys

from mailbeacon.cli import main

if __name__ == "__main__":
    sys.exit(main())
