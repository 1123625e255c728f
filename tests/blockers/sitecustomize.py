"""Makes this interpreter look like a machine without some packages (CA_TEST_MISSING="a,b").

Imported at start-up when this folder is on PYTHONPATH; a module named in
CA_TEST_MISSING then cannot be found or imported, as if never installed.
"""

import os
import sys
from importlib.abc import MetaPathFinder

MISSING = {name for name in os.environ.get("CA_TEST_MISSING", "").split(",") if name}


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
