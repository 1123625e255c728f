"""A frame cache in a directory: one file per entry, recency in its modification time."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from celery_animate.cache.base import ENTRY_NAME, CacheBackend, check_name
from celery_animate.stores.directory import write_whole

#: Bytes written between two counts of the directory: the bound is overshot by at most this
#: share of it before the oldest entries go.
RECOUNT_SHARE = 16


class DirectoryCache(CacheBackend):
    """Entries ``<root>/<namespace>/<name>``, written beside and renamed into place, so a reader
    sees a whole entry or none. A read touches the file; eviction removes the files touched
    longest ago, and those older than ``ttl``. Files not named like an entry are never touched,
    and links are not followed."""

    def __init__(self, root: str | os.PathLike[str], namespace: str, max_bytes: int, ttl: int):
        super().__init__(namespace, max_bytes, ttl)
        self.folder = Path(root) / namespace
        self._written = max_bytes  # count the directory at the first put

    def get_many(self, names: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for name in map(check_name, names):
            path = self.folder / name
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:  # not there, or a link planted in its place
                out.append(None)
                continue
            with os.fdopen(fd, "rb") as f:
                out.append(f.read(self.max_bytes + 1))
            with contextlib.suppress(OSError):
                os.utime(path)
        return out

    def put(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_whole(self.folder / check_name(name), data)
        self._written += len(data)
        if self._written * RECOUNT_SHARE >= self.max_bytes:
            self._written = 0
            self.evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if ENTRY_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        stat = entry.stat(follow_symlinks=False)
                        found.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        return sorted(found)

    def evict(self, now: float | None = None) -> None:
        """Remove entries unused for ``ttl`` seconds, then the least recently used until the
        cache holds at most ``max_bytes``."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        cutoff = (time.time() if now is None else now) - self.ttl
        for mtime, size, path in entries:
            if total <= self.max_bytes and mtime >= cutoff:
                break
            path.unlink(missing_ok=True)
            total -= size

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def clear(self) -> int:
        entries = self._entries()
        for _, _, path in entries:
            path.unlink(missing_ok=True)
        return len(entries)
