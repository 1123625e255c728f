"""Frame stores: where rendered frames wait for the encoder.

Two backends share one small interface: :class:`RedisFrameStore` (the
default) and :class:`DirectoryFrameStore` for a scratch directory shared by
all machines (``file:///path``). Frames are keyed by job id and frame index;
writing a frame twice (a re-delivered chunk) overwrites it with the same bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import redis

from .config import REDIS_FRAME_STORE, Settings


class FrameStore(ABC):
    """Bytes per ``(job_id, frame_idx)``, each kept at most ``ttl`` seconds."""

    def __init__(self, ttl: int):
        self.ttl = ttl

    @abstractmethod
    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        """Store one packed frame, replacing any earlier copy."""

    @abstractmethod
    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        """Packed frames for ``indices`` in that order; ``None`` where one is missing."""

    @abstractmethod
    def missing(self, job_id: str, n_frames: int) -> list[int]:
        """Indices in ``0 .. n_frames-1`` that have no frame."""

    @abstractmethod
    def delete(self, job_id: str, indices: list[int]) -> None:
        """Remove these frames of the job; a no-op for frames already gone."""

    @abstractmethod
    def delete_job(self, job_id: str, n_frames: int) -> None:
        """Remove every frame of the job; a no-op for frames already gone."""


class RedisFrameStore(FrameStore):
    """One Redis string per frame: ``celery_animate:frame:<job>:<idx>`` with an expiry."""

    def __init__(self, client: redis.Redis, ttl: int):
        super().__init__(ttl)
        self.client = client

    @staticmethod
    def key(job_id: str, frame_idx: int) -> str:
        return f"celery_animate:frame:{job_id}:{frame_idx}"

    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        self.client.set(self.key(job_id, frame_idx), payload, ex=self.ttl)

    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        if not indices:
            return []
        return self.client.mget([self.key(job_id, i) for i in indices])

    def missing(self, job_id: str, n_frames: int) -> list[int]:
        gone: list[int] = []
        for batch in _ranges(n_frames, 1000):
            with self.client.pipeline(transaction=False) as pipe:
                for i in batch:
                    pipe.exists(self.key(job_id, i))
                gone.extend(i for i, present in zip(batch, pipe.execute(), strict=True) if not present)
        return gone

    def delete(self, job_id: str, indices: list[int]) -> None:
        for start in range(0, len(indices), 1000):
            self.client.unlink(*(self.key(job_id, i) for i in indices[start:start + 1000]))

    def delete_job(self, job_id: str, n_frames: int) -> None:
        for batch in _ranges(n_frames, 1000):
            self.delete(job_id, batch)


class DirectoryFrameStore(FrameStore):
    """One file per frame under ``<root>/<job>/``, written to a temp name then renamed.

    A file system has no expiry, so :meth:`sweep` removes job directories
    untouched for longer than ``ttl``; workers call it after each encode.
    """

    def __init__(self, root: str | os.PathLike[str], ttl: int):
        super().__init__(ttl)
        self.root = Path(root)

    def _job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def _path(self, job_id: str, frame_idx: int) -> Path:
        return self._job_dir(job_id) / f"{frame_idx:09d}.frame"

    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        job_dir = self._job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        # Readers must never see half a frame: write beside it, then rename.
        fd, tmp = tempfile.mkstemp(dir=job_dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, self._path(job_id, frame_idx))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for i in indices:
            try:
                out.append(self._path(job_id, i).read_bytes())
            except FileNotFoundError:
                out.append(None)
        return out

    def missing(self, job_id: str, n_frames: int) -> list[int]:
        return [i for i in range(n_frames) if not self._path(job_id, i).exists()]

    def delete(self, job_id: str, indices: list[int]) -> None:
        for i in indices:
            self._path(job_id, i).unlink(missing_ok=True)

    def delete_job(self, job_id: str, n_frames: int) -> None:
        shutil.rmtree(self._job_dir(job_id), ignore_errors=True)

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete job directories older than ``ttl``; return their job ids."""
        cutoff = (time.time() if now is None else now) - self.ttl
        removed = []
        for entry in self.root.iterdir() if self.root.is_dir() else ():
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed


def open_frame_store(spec: str, settings: Settings) -> FrameStore:
    """The store named by ``spec``: ``"redis"``, a ``redis://``/``rediss://`` URL, or ``file:///dir``.

    Raises ``ValueError`` for anything else.
    """
    if spec == REDIS_FRAME_STORE:
        if not settings.result_backend:
            raise ValueError("the 'redis' frame store needs CELERY_RESULT_BACKEND or CELERY_BROKER_URL")
        return RedisFrameStore(redis_client(settings.result_backend), settings.frame_ttl)
    parsed = urlparse(spec)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisFrameStore(redis_client(spec), settings.frame_ttl)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"frame store {spec!r}: file URLs must be file:///absolute/path")
        return DirectoryFrameStore(unquote(parsed.path), settings.frame_ttl)
    raise ValueError(
        f"unknown frame store {spec!r}: use 'redis', a redis:// URL, or file:///shared/scratch/dir"
    )


_clients: dict[str, redis.Redis] = {}


def redis_client(url: str) -> redis.Redis:
    """A client per URL and process, reused (redis-py reconnects after a fork by itself)."""
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, health_check_interval=30)
    return client


def _ranges(n: int, size: int) -> Iterator[list[int]]:
    """``0 .. n-1`` in lists of at most ``size``."""
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))
