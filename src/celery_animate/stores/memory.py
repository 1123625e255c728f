"""Frames in this process's memory: for unit tests and single-process use."""

from __future__ import annotations

import time

from celery_animate.stores.base import FrameStore, check_segment, check_segment_size


class MemoryFrameStore(FrameStore):
    """Dicts of frames and of encoded segments; ``ttl`` is honoured on read, so expiry can be
    tested too."""

    def __init__(self, ttl: int = 3600, clock=time.monotonic):
        super().__init__(ttl)
        self._clock = clock
        self._frames: dict[tuple[str, int], tuple[float, bytes]] = {}
        self._segments: dict[tuple[str, int], tuple[float, bytes]] = {}

    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        self._frames[job_id, frame_idx] = (self._clock() + self.ttl, bytes(payload))

    def _get(self, job_id: str, frame_idx: int) -> bytes | None:
        entry = self._frames.get((job_id, frame_idx))
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._frames[job_id, frame_idx]
            return None
        return entry[1]

    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        return [self._get(job_id, i) for i in indices]

    def missing(self, job_id: str, n_frames: int, start: int = 0) -> list[int]:
        return [i for i in range(start, n_frames) if self._get(job_id, i) is None]

    def delete(self, job_id: str, indices: list[int]) -> None:
        for i in indices:
            self._frames.pop((job_id, i), None)

    def delete_job(self, job_id: str, n_frames: int) -> None:
        for key in [key for key in self._frames if key[0] == job_id]:
            del self._frames[key]

    def put_segment(self, job_id: str, segment: int, data: bytes) -> None:
        check_segment_size(job_id, segment, len(data))
        self._segments[job_id, check_segment(segment)] = (self._clock() + self.ttl, bytes(data))

    def get_segment(self, job_id: str, segment: int) -> bytes | None:
        entry = self._segments.get((job_id, check_segment(segment)))
        if entry is None or entry[0] <= self._clock():
            self._segments.pop((job_id, segment), None)
            return None
        check_segment_size(job_id, segment, len(entry[1]))
        return entry[1]

    def delete_segments(self, job_id: str, n_segments: int) -> None:
        for k in range(n_segments):
            self._segments.pop((job_id, k), None)

    def segment_bytes(self) -> int:
        """Bytes of all encoded segments held: what the segments of the jobs now running cost."""
        return sum(len(data) for _, data in self._segments.values())

    def __len__(self) -> int:
        return len(self._frames)
