"""The embedded cluster's frame store: a private folder in shared memory (``/dev/shm``), and
one on disk (in the temporary directory) that frames spill into when shared memory is full.

Its renderers and its encoder share one machine, so frames need not go through Redis. A
file on tmpfs costs a write and a read; a Redis round trip also waits for the server process
to be scheduled, which on a machine whose cores are all busy rendering and encoding is most
of its cost (docs/performance.md, "Where a one-shot render's time goes"). Frames stay
zstd-packed: on plots that is cheaper than writing and reading the raw pixels, and keeps
the window's memory small. Shared memory is RAM, usually half of it at most: a long job of
large, noisy frames can outgrow it, and then goes on in the folder on disk (see
:class:`~celery_animate.stores.SpillingFrameStore`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

#: Where the folders are made: Linux's shared memory file system.
SHARED_MEMORY = Path("/dev/shm")
#: Their names: this prefix, then the pid of the process that made one, then random letters.
PREFIX = "celery-animate-"
#: Free bytes below which the cluster keeps frames in its Redis instead (a container's
#: /dev/shm is 64 MiB unless it was given more).
MIN_FREE_BYTES = 1 << 30


def make_scratch(root: Path = SHARED_MEMORY, min_free: int | None = None) -> Path | None:
    """A new folder under ``root`` that only this user can enter, for one cluster's frames.

    None where ``root`` does not exist, cannot be written or has less than ``min_free``
    bytes free (default :data:`MIN_FREE_BYTES`): the caller then keeps frames in Redis.
    First removes the folders of clusters whose process is gone (killed before it could
    remove its own).
    """
    remove_orphans(root)
    try:
        fs = os.statvfs(root)
        if fs.f_bavail * fs.f_frsize < (MIN_FREE_BYTES if min_free is None else min_free):
            return None
        return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))  # mode 0700
    except OSError:
        return None


def make_spill() -> Path | None:
    """A new private folder in the temporary directory (on disk, as a rule) for the frames that
    do not fit in shared memory; None where none can be made there."""
    return make_scratch(Path(tempfile.gettempdir()), min_free=0)


def remove_scratch(folder: Path) -> None:
    """Remove ``folder`` and everything in it; a no-op if it is gone."""
    shutil.rmtree(folder, ignore_errors=True)


def remove_orphans(root: Path = SHARED_MEMORY) -> list[Path]:
    """Remove this user's scratch folders under ``root`` whose maker's process has exited;
    return them. Folders of live processes and of other users are left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for folder in root.glob(PREFIX + "*"):
            pid = folder.name[len(PREFIX):].partition("-")[0]
            with contextlib.suppress(OSError):
                if (pid.isdigit() and not folder.is_symlink() and folder.is_dir()
                        and folder.stat().st_uid == os.getuid() and not _alive(int(pid))):
                    remove_scratch(folder)
                    removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
