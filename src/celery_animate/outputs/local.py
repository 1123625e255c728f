"""A local output: a temporary file beside it, flushed, and renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

from celery_animate.outputs.base import Output
from celery_animate.paths import partial_path


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file or a directory) to disk. Raises ``OSError``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalOutput(Output):
    """A video at a local path: absent, the old file, or complete (atomic rename)."""

    def __init__(self, path: Path):
        self.path = path
        self.location = str(path)

    def temporary(self, job_id: str, generation: int) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return partial_path(self.path, job_id, generation)

    def publish(self, tmp: Path) -> int:
        try:
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # The rename itself must survive a crash too.
        fsync_path(self.path.parent)
        return self.path.stat().st_size
