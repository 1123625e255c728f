"""What an encoder does while the frame it needs next is still being rendered."""

from __future__ import annotations

import time
from collections.abc import Callable

from celery_animate.errors import EncodeAbandoned, FramesMissing
from celery_animate.job.record import JobRecord
from celery_animate.params import describe_ranges
from celery_animate.states import CANCELLED, FAILED, TERMINAL_STATES
from celery_animate.stores import FrameStore


def progress_reporter(record: JobRecord, note: Callable[[int], bool]) -> Callable[[int], None]:
    """What an encoder calls every few encoded frames with their number: ``note(n)`` records the
    progress (False when the job's record is gone); raises :class:`EncodeAbandoned` when the
    record is gone or the job ended, to stop encoding it."""
    def encoded(n: int) -> None:
        if not note(n):
            raise EncodeAbandoned("the job's record is gone")
        state = record.state()
        if state in TERMINAL_STATES:
            raise EncodeAbandoned(f"the job was {state} while encoding")
    return encoded


class FrameWaiter:
    """Called with the index of a frame that is not in the store yet.

    Waits for frames ``first .. n_frames-1`` (a segment, or the whole job).
    Checks the encoder still holds its lease, gives up when the job ended, and fails
    the job (raising :class:`FramesMissing` with the missing indices) once
    every chunk reported its frames stored but some are not there (evicted,
    or Redis lost them). A streaming encoder (``stall_after`` set, seconds)
    also gives up when rendering made no progress for that long: it may be
    holding the very process the renderers need (a worker with one process
    for both queues), and the chord's callback will encode once every chunk
    is done.
    """

    def __init__(self, record: JobRecord, store: FrameStore, n_frames: int,
                 check_lease: Callable[[], None], stall_after: float | None, poll: float = 0.02,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 first: int = 0):
        self.record, self.store, self.n_frames, self.first = record, store, n_frames, first
        self.check_lease, self.stall_after, self.poll = check_lease, stall_after, poll
        self._clock, self._sleep = clock, sleep
        self._last_rendered = (-1, clock())

    def __call__(self, next_index: int) -> None:
        self.check_lease()
        progress = self.record.progress()
        if progress.state in (FAILED, CANCELLED):
            raise EncodeAbandoned(progress.state)
        if progress.rendered >= progress.total:
            missing = self.store.missing(self.record.job_id, self.n_frames, start=self.first)
            if missing:
                raise FramesMissing(
                    f"{len(missing)} of {self.n_frames - self.first} frames are missing from the frame store "
                    f"(indices {describe_ranges(missing)}); were they evicted, or did Redis restart "
                    "without persistence? Submit the job again."
                )
            return
        if self.stall_after is not None:
            if progress.rendered != self._last_rendered[0]:
                self._last_rendered = (progress.rendered, self._clock())
            elif self._clock() - self._last_rendered[1] > self.stall_after:
                raise EncodeAbandoned("rendering stalled; the chord's callback will encode")
        self._sleep(self.poll)
