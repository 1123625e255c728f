"""Frames in Redis: one string per frame with an expiry."""

from __future__ import annotations

import redis

from celery_animate import keys
from celery_animate.stores.base import (
    FrameStore,
    check_segment,
    check_segment_size,
    index_batches,
)


class RedisFrameStore(FrameStore):
    """One Redis string per frame, ``celery_animate:frame:<job>:<idx>``, and one per encoded
    segment, ``celery_animate:segment:<job>:<k>``, each expiring after ``ttl`` s."""

    def __init__(self, client: redis.Redis, ttl: int):
        super().__init__(ttl)
        self.client = client

    @staticmethod
    def key(job_id: str, frame_idx: int) -> str:
        return keys.frame(job_id, frame_idx)

    def put(self, job_id: str, frame_idx: int, payload: bytes) -> None:
        self.client.set(self.key(job_id, frame_idx), payload, ex=self.ttl)

    def put_many(self, job_id: str, frames: list[tuple[int, bytes]]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for frame_idx, payload in frames:
                pipe.set(self.key(job_id, frame_idx), payload, ex=self.ttl)
            pipe.execute()

    def get_many(self, job_id: str, indices: list[int]) -> list[bytes | None]:
        if not indices:
            return []
        return self.client.mget([self.key(job_id, i) for i in indices])

    def missing(self, job_id: str, n_frames: int, start: int = 0) -> list[int]:
        gone: list[int] = []
        for batch in index_batches(n_frames - start, 1000):
            batch = [start + i for i in batch]
            if self._count(job_id, batch) == len(batch):  # the usual answer, in one command
                continue
            with self.client.pipeline(transaction=False) as pipe:
                for i in batch:
                    pipe.exists(self.key(job_id, i))
                gone.extend(i for i, present in zip(batch, pipe.execute(), strict=True) if not present)
        return gone

    def has_all(self, job_id: str, n_frames: int, start: int = 0) -> bool:
        return all(self._count(job_id, [start + i for i in batch]) == len(batch)
                   for batch in index_batches(n_frames - start, 1000))

    def _count(self, job_id: str, indices: list[int]) -> int:
        """How many of these frames are stored: one EXISTS of many keys."""
        return int(self.client.exists(*(self.key(job_id, i) for i in indices)))

    def delete(self, job_id: str, indices: list[int]) -> None:
        for start in range(0, len(indices), 1000):
            self.client.unlink(*(self.key(job_id, i) for i in indices[start:start + 1000]))

    def delete_job(self, job_id: str, n_frames: int) -> None:
        for batch in index_batches(n_frames, 1000):
            self.delete(job_id, batch)

    def put_segment(self, job_id: str, segment: int, data: bytes) -> None:
        check_segment_size(job_id, segment, len(data))
        self.client.set(keys.segment_blob(job_id, check_segment(segment)), data, ex=self.ttl)

    def get_segment(self, job_id: str, segment: int) -> bytes | None:
        key = keys.segment_blob(job_id, check_segment(segment))
        # Its length first: a forged value of hundreds of MiB is refused before it is read.
        check_segment_size(job_id, segment, int(self.client.strlen(key)))
        data = self.client.get(key)
        if data is not None:
            check_segment_size(job_id, segment, len(data))  # replaced in between
        return data

    def delete_segments(self, job_id: str, n_segments: int) -> None:
        for batch in index_batches(n_segments, 1000):
            self.client.unlink(*(keys.segment_blob(job_id, k) for k in batch))
