"""Frames in a directory shared by all machines (``file:///shared/scratch``)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from celery_animate.errors import FrameStoreFull
from celery_animate.ids import check_job_id, is_job_id
from celery_animate.stores.base import (
    MAX_SEGMENT_BYTES,
    FrameStore,
    check_segment,
    check_segment_size,
)

#: Bytes read of a segment file at most: one more than a segment may have, so a file that grew
#: past the bound while it was read is still refused, and never read whole.
MAX_READ = MAX_SEGMENT_BYTES + 1


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never
    half of it: into a temporary file beside it (``.tmp-*``), then renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DirectoryFrameStore(FrameStore):
    """One file per frame (``<idx>.frame``) and per encoded segment (``<k>.segment``) under
    ``<root>/<job id>/``, written to a temp name then renamed.

    A file system has no expiry, so :meth:`sweep` removes job directories
    untouched for longer than ``ttl``; it only ever touches directories named
    like a job id, so a root that holds anything else loses nothing of it.
    Every method refuses a ``job_id`` that is not one (``InvalidArgument``).
    """

    def __init__(self, root: str | os.PathLike[str], ttl: int):
        super().__init__(ttl)
        self.root = Path(root)

    def _job_dir(self, job_id: str) -> Path:
        return self.root / check_job_id(job_id)

    def _path(self, job_id: str, frame_idx: int) -> Path:
        return self._job_dir(job_id) / f"{int(frame_idx):09d}.frame"

    def _segment_path(self, job_id: str, segment: int) -> Path:
        return self._job_dir(job_id) / f"{check_segment(segment):05d}.segment"

    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        self._write(job_id, self._path(job_id, frame_idx), payload)

    def _write(self, job_id: str, path: Path, payload: bytes) -> None:
        """Write ``path`` whole; raises :class:`FrameStoreFull` when its disk is full."""
        for attempt in range(2):
            try:
                self._job_dir(job_id).mkdir(parents=True, exist_ok=True)
                write_whole(path, payload)
                return
            except FileNotFoundError:  # the folder was emptied and removed meanwhile: again
                if attempt:
                    raise
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                raise FrameStoreFull(exc.errno, (
                    f"the frame store {self.root} is full (no space left on its device for "
                    f"{len(payload)} more bytes): free space there, render the job in shorter "
                    "segments (CELERY_ANIMATE_SEGMENT_FRAMES) or smaller frames, point "
                    "CELERY_ANIMATE_FRAME_STORE at a folder with room, or give it a folder on "
                    "another disk to spill into (CELERY_ANIMATE_FRAME_SPILL)")) from None

    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for i in indices:
            try:
                out.append(self._path(job_id, i).read_bytes())
            except FileNotFoundError:
                out.append(None)
        return out

    def missing(self, job_id: str, n_frames: int, start: int = 0) -> list[int]:
        return self.absent(job_id, range(start, n_frames))

    def absent(self, job_id: str, indices: Iterable[int]) -> list[int]:
        """Those of ``indices`` that have no frame here, in their order."""
        return [i for i in indices if not self._path(job_id, i).exists()]

    def delete(self, job_id: str, indices: list[int]) -> None:
        for i in indices:
            self._path(job_id, i).unlink(missing_ok=True)
        # A folder left empty goes too: a task that stored frames after its job's end (and its
        # purge) takes them back this way, and must not leave their folder behind.
        with contextlib.suppress(OSError):  # not empty, or gone
            self._job_dir(job_id).rmdir()

    def put_segment(self, job_id: str, segment: int, data: bytes) -> None:
        check_segment_size(job_id, segment, len(data))
        self._write(job_id, self._segment_path(job_id, segment), data)

    def get_segment(self, job_id: str, segment: int) -> bytes | None:
        path = self._segment_path(job_id, segment)
        try:
            # O_NOFOLLOW: a link planted in the shared directory is not followed out of it.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, NotADirectoryError):
            return None
        with os.fdopen(fd, "rb") as f:
            check_segment_size(job_id, segment, os.fstat(f.fileno()).st_size)
            data = f.read(MAX_READ)
        check_segment_size(job_id, segment, len(data))  # grew while it was read
        return data

    def delete_segments(self, job_id: str, n_segments: int) -> None:
        for k in range(n_segments):
            self.remove_segment(job_id, k)

    def remove_segment(self, job_id: str, segment: int) -> None:
        """Remove one encoded segment; a no-op if it is not here."""
        self._segment_path(job_id, segment).unlink(missing_ok=True)

    def delete_job(self, job_id: str, n_frames: int) -> None:
        job_dir = self._job_dir(job_id)
        if job_dir.is_symlink():  # planted: remove the link, never what it points to
            job_dir.unlink()
        else:
            shutil.rmtree(job_dir, ignore_errors=True)

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete job directories older than ``ttl``; return their job ids."""
        cutoff = (time.time() if now is None else now) - self.ttl
        removed = []
        for entry in self.root.iterdir() if self.root.is_dir() else ():
            if not is_job_id(entry.name) or entry.is_symlink() or not entry.is_dir():
                continue
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed
