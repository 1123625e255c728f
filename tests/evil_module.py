"""Importing this module is the attack: it leaves a marker file behind.

Workers must refuse a message naming it before importing anything.
"""

import os

marker = os.environ.get("CA_TEST_EVIL_MARKER")
if marker:
    open(marker, "w").close()

from animators import BarCode  # noqa: E402


class Evil(BarCode):
    pass
