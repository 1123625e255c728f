"""A job's frames read back from the frame store in order, waiting for those not rendered yet."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from celery_animate.errors import FramesMissing
from celery_animate.frames import unpack_frame
from celery_animate.stores import FrameStore


class StoredFrames:
    """The frames ``first .. n_frames-1`` of one job, read from the store in order, a batch at a time.

    ``wait(next_index)`` is called when the next frame is not there yet: it
    may sleep and return (the read is retried) or raise to give up. Without
    it a missing frame raises :class:`FramesMissing`. Memory stays at one
    batch of frames whatever the frame count.
    """

    def __init__(self, store: FrameStore, job_id: str, n_frames: int,
                 wait: Callable[[int], None] | None = None, batch: int = 16,
                 max_pixels: int = 7680 * 4320, first: int = 0):
        self.store = store
        self.job_id = job_id
        self.n_frames = n_frames
        self.first = first
        self.wait = wait
        self.batch = batch
        self.max_pixels = max_pixels
        #: Seconds spent reading and unpacking frames, and waiting for frames not yet rendered.
        self.fetch_seconds = 0.0
        self.wait_seconds = 0.0

    def __len__(self) -> int:
        return self.n_frames - self.first

    def __iter__(self) -> Iterator[np.ndarray]:
        index = self.first
        while index < self.n_frames:
            wanted = list(range(index, min(index + self.batch, self.n_frames)))
            clock = time.perf_counter()
            for payload in self.store.get_many(self.job_id, wanted):
                if payload is None:
                    break
                frame = unpack_frame(payload, self.max_pixels)
                self.fetch_seconds += time.perf_counter() - clock
                yield frame
                clock = time.perf_counter()
                index += 1
            else:
                continue
            if self.wait is None:
                raise FramesMissing(f"frame {index} of job {self.job_id} is missing from the frame store")
            clock = time.perf_counter()
            self.wait(index)
            self.wait_seconds += time.perf_counter() - clock
