"""The interface every frame store implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from celery_animate.errors import EncodeIncomplete, InvalidArgument

#: Bytes one encoded segment may have in a store, at most: Redis's own limit for one string. A
#: segment of 60 frames of 1280x720 takes 0.27 MiB for a plain figure and 7.4 MiB for a field of
#: noise (libx264 quality 20); one read back larger than this was not written by an encoder.
MAX_SEGMENT_BYTES = 512 * 2**20


class FrameStore(ABC):
    """Packed frames keyed by ``(job_id, frame_idx)``, each kept at most ``ttl`` seconds, and the
    job's encoded segments (``(job_id, segment)``, bytes of a video file) kept likewise until
    they are joined, so that no encoder needs to see another's files.

    Writing a frame twice (a re-delivered chunk) replaces it with the same bytes; a segment
    written twice (encoded again after its encoder lost its lease) is replaced whole.
    Only :mod:`celery_animate.job.lifecycle` calls the ``delete`` methods.
    """

    def __init__(self, ttl: int):
        self.ttl = ttl

    @abstractmethod
    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        """Store one packed frame, replacing any earlier copy."""

    def put_many(self, job_id: str, frames: list[tuple[int, bytes]]) -> None:
        """Store ``(frame_idx, payload)`` pairs, as :meth:`put` each (a backend may do it in
        fewer round trips)."""
        for frame_idx, payload in frames:
            self.put(job_id, frame_idx, payload)

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

    @abstractmethod
    def put_segment(self, job_id: str, segment: int, data: bytes) -> None:
        """Store encoded segment ``segment`` (the bytes of its video file), replacing any earlier
        copy, so that readers see the old bytes or the new, never a mix. Raises
        :class:`EncodeIncomplete` for more than :data:`MAX_SEGMENT_BYTES`."""

    @abstractmethod
    def get_segment(self, job_id: str, segment: int) -> bytes | None:
        """The bytes of encoded segment ``segment``; ``None`` if it is not stored (never was,
        expired, or deleted). Raises :class:`EncodeIncomplete` for a stored value larger than
        :data:`MAX_SEGMENT_BYTES` (where the backend can, before reading it)."""

    @abstractmethod
    def delete_segments(self, job_id: str, n_segments: int) -> None:
        """Remove encoded segments ``0 .. n_segments-1`` of the job; a no-op for those gone."""

    def sweep(self) -> list[str]:
        """Remove what expired jobs left, where the backend cannot expire it itself; return their ids."""
        return []


def index_batches(n: int, size: int) -> Iterator[list[int]]:
    """``0 .. n-1`` in lists of at most ``size``."""
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


def check_segment(segment: int) -> int:
    """``segment`` if it is a segment number (an int from 0); else :class:`InvalidArgument`."""
    if type(segment) is not int or segment < 0:
        raise InvalidArgument(f"segment {segment!r} is not a segment number")
    return segment


def check_segment_size(job_id: str, segment: int, size: int) -> None:
    """Raise :class:`EncodeIncomplete` if a segment of ``size`` bytes is over :data:`MAX_SEGMENT_BYTES`."""
    if size > MAX_SEGMENT_BYTES:
        raise EncodeIncomplete(
            f"encoded segment {segment} of job {job_id} is {size} bytes, more than the frame store "
            f"keeps for one segment ({MAX_SEGMENT_BYTES}); give the job shorter segments "
            "(CELERY_ANIMATE_SEGMENT_FRAMES) and submit it again")
