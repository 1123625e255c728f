"""Frames in a fast folder that spill into a second folder when the first one's disk is full."""

from __future__ import annotations

from celery_animate.errors import FrameStoreFull
from celery_animate.stores.base import FrameStore
from celery_animate.stores.directory import DirectoryFrameStore


class SpillingFrameStore(FrameStore):
    """Two :class:`DirectoryFrameStore` folders: ``fast`` first, ``spill`` once ``fast`` is full.

    Made for one machine: ``fast`` in shared memory (``/dev/shm``, which is RAM and
    usually half of it at most), ``spill`` on disk. A job whose frames outgrow
    ``fast`` goes on with the rest on disk instead of failing with
    :class:`FrameStoreFull`, which is raised only when ``spill`` is full too (naming
    it). A frame or segment is written to one of the two; a re-delivered chunk may
    leave a second, identical copy of a frame in the other, and a segment written to
    ``spill`` again removes its old copy from ``fast``. Reads look in ``fast`` first;
    deletes, the job's purge and :meth:`sweep` clear both.
    """

    def __init__(self, fast: DirectoryFrameStore, spill: DirectoryFrameStore):
        super().__init__(fast.ttl)
        self.fast, self.spill = fast, spill

    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        try:
            self.fast.put(job_id, frame_idx, payload)
        except FrameStoreFull:
            self.spill.put(job_id, frame_idx, payload)

    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        found = self.fast.get_many(job_id, indices)
        elsewhere = [i for i, payload in zip(indices, found, strict=True) if payload is None]
        spilled = dict(zip(elsewhere, self.spill.get_many(job_id, elsewhere), strict=True))
        return [spilled[i] if payload is None else payload
                for i, payload in zip(indices, found, strict=True)]

    def missing(self, job_id: str, n_frames: int, start: int = 0) -> list[int]:
        return self.spill.absent(job_id, self.fast.missing(job_id, n_frames, start))

    def delete(self, job_id: str, indices: list[int]) -> None:
        self.fast.delete(job_id, indices)
        self.spill.delete(job_id, indices)

    def delete_job(self, job_id: str, n_frames: int) -> None:
        self.fast.delete_job(job_id, n_frames)
        self.spill.delete_job(job_id, n_frames)

    def put_segment(self, job_id: str, segment: int, data: bytes) -> None:
        try:
            self.fast.put_segment(job_id, segment, data)
        except FrameStoreFull:
            self.spill.put_segment(job_id, segment, data)
            # A segment encoded again replaces the old whole: reads must not find that in fast.
            self.fast.remove_segment(job_id, segment)

    def get_segment(self, job_id: str, segment: int) -> bytes | None:
        data = self.fast.get_segment(job_id, segment)
        return self.spill.get_segment(job_id, segment) if data is None else data

    def delete_segments(self, job_id: str, n_segments: int) -> None:
        self.fast.delete_segments(job_id, n_segments)
        self.spill.delete_segments(job_id, n_segments)

    def sweep(self) -> list[str]:
        return sorted(set(self.fast.sweep()) | set(self.spill.sweep()))
