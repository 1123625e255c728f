"""The interface every frame store implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


class FrameStore(ABC):
    """Packed frames keyed by ``(job_id, frame_idx)``, each kept at most ``ttl`` seconds.

    Writing a frame twice (a re-delivered chunk) replaces it with the same bytes.
    Only :mod:`celery_animate.job.lifecycle` calls the ``delete`` methods.
    """

    def __init__(self, ttl: int):
        self.ttl = ttl

    @abstractmethod
    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        """Store one packed frame, replacing any earlier copy."""

    @abstractmethod
    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        """Packed frames for ``indices`` in that order; ``None`` where one is missing."""

    @abstractmethod
    def missing(self, job_id: str, n_frames: int, start: int = 0) -> list[int]:
        """Indices in ``start .. n_frames-1`` that have no frame."""

    def has_all(self, job_id: str, n_frames: int, start: int = 0) -> bool:
        """Whether every index in ``start .. n_frames-1`` has a frame. A render task asks this of
        its segment after every chunk, so a backend may answer it more cheaply than
        :meth:`missing`."""
        return not self.missing(job_id, n_frames, start)

    @abstractmethod
    def delete(self, job_id: str, indices: list[int]) -> None:
        """Remove these frames of the job; a no-op for frames already gone."""

    @abstractmethod
    def delete_job(self, job_id: str, n_frames: int) -> None:
        """Remove every frame of the job; a no-op for frames already gone."""

    def sweep(self) -> list[str]:
        """Remove what expired jobs left, where the backend cannot expire it itself; return their ids."""
        return []


def index_batches(n: int, size: int) -> Iterator[list[int]]:
    """``0 .. n-1`` in lists of at most ``size``."""
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))
