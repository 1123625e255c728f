"""The encoder's frame waiter: lease checks, ended jobs, missing frames, stalls."""

import pytest

from celery_animate.encode.waiter import FrameWaiter
from celery_animate.errors import EncodeAbandoned, FramesMissing
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.stores import MemoryFrameStore


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def job(fake_redis):
    record = JobRecord(fake_redis, new_job_id())
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 4, 2, RenderOptions(fps=1)))
    return record


def waiter(job, store, clock, stall_after=None, check=lambda: None):
    return FrameWaiter(job, store, 4, check, stall_after=stall_after, poll=0.5, clock=clock,
                       sleep=clock.sleep)


def test_waits_while_frames_are_rendering(job):
    clock = Clock()
    waiter(job, MemoryFrameStore(), clock)(0)
    assert clock.now == 0.5


@pytest.mark.parametrize("end", [lambda r: lifecycle.end_job(r, lifecycle.CANCEL),
                                 lambda r: lifecycle.end_job(r, RuntimeError())])
def test_gives_up_when_the_job_ended(job, end):
    end(job)
    with pytest.raises(EncodeAbandoned):
        waiter(job, MemoryFrameStore(), Clock())(0)


def test_lost_lease_stops_the_wait(job):
    def lost():
        raise EncodeAbandoned("lease lost")

    with pytest.raises(EncodeAbandoned, match="lease lost"):
        waiter(job, MemoryFrameStore(), Clock(), check=lost)(0)


def test_names_missing_frames_once_all_were_reported(job):
    store = MemoryFrameStore()
    store.put(job.job_id, 0, b"x")
    store.put(job.job_id, 3, b"x")
    lifecycle.report_chunk(job, 0, 2)
    lifecycle.report_chunk(job, 1, 2)
    with pytest.raises(FramesMissing, match=r"2 of 4 frames are missing .*\(indices 1-2\)"):
        waiter(job, store, Clock())(1)


def test_streaming_encoder_steps_aside_when_rendering_stalls(job):
    clock = Clock()
    wait = waiter(job, MemoryFrameStore(), clock, stall_after=2.0)
    for _ in range(4):
        wait(0)
    lifecycle.report_chunk(job, 0, 1)  # progress resets the stall clock
    for _ in range(4):
        wait(0)
    with pytest.raises(EncodeAbandoned, match="stalled"):
        for _ in range(6):
            wait(0)
