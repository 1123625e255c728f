"""The render window of a segmented job: who waits, and why nothing can wait forever."""

import time
from dataclasses import replace

import pytest

from celery_animate import keys
from celery_animate.config import Settings
from celery_animate.encode.lease import EncodeLease
from celery_animate.errors import InvalidArgument
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import MAX_SEGMENTS, JobSpec, plan_segments
from celery_animate.job.submission import largest_chunk
from celery_animate.job.window import (
    CACHED_PAUSE_SECONDS,
    FIRST_PAUSE_SECONDS,
    MAX_PAUSE_SECONDS,
    MIN_PAUSE_SECONDS,
    PAUSE_SECONDS,
    STALL_SECONDS,
    pause,
)
from celery_animate.options import RenderOptions
from celery_animate.params import choose_chunk_size

SETTINGS = Settings(window_frames=20)


def job(fake_redis, n_frames=100, segment_frames=10, options=None):
    record = JobRecord(fake_redis, new_job_id())
    spec = JobSpec("m:C", b"\x80", "/o.mp4", n_frames, 10, options or RenderOptions(fps=1),
                   segment_frames)
    lifecycle.create(record, spec)
    return record, spec


def test_frames_past_the_window_wait_until_segments_are_encoded(fake_redis):
    record, spec = job(fake_redis)
    assert not must_wait(record, spec, SETTINGS, 19)
    assert must_wait(record, spec, SETTINGS, 20)
    record.finish_segment(1, 10)  # out of order: the first unfinished segment is still 0
    assert must_wait(record, spec, SETTINGS, 20)
    record.finish_segment(0, 10)
    assert not must_wait(record, spec, SETTINGS, 39) and must_wait(record, spec, SETTINGS, 40)
    assert record.progress().encoded == 20
    assert not record.finish_segment(0, 10) and record.progress().encoded == 20  # counted once


def must_wait(record, spec, settings, first_frame) -> bool:
    return pause(record, spec, settings, first_frame) > 0


def test_tasks_far_ahead_wait_longer(fake_redis):
    record, spec = job(fake_redis, n_frames=10_000)
    # No segment finished yet: the encoders' pace is unknown, a short wait per segment ahead.
    first = FIRST_PAUSE_SECONDS
    assert pause(record, spec, SETTINGS, 20) == first and pause(record, spec, SETTINGS, 29) == first
    assert pause(record, spec, SETTINGS, 30) == 2 * first
    assert pause(record, spec, SETTINGS, 9_990) == MAX_PAUSE_SECONDS


def test_tasks_wait_as_long_as_the_encoders_take_per_segment_and_never_much_longer(fake_redis):
    record, spec = job(fake_redis, n_frames=10_000)
    record.finish_segment(0, 10)
    record.note_segment_seconds(0.4)  # the last segment took its encoder 0.4 s
    assert pause(record, spec, SETTINGS, 30) == pytest.approx(0.4)
    assert pause(record, spec, SETTINGS, 40) == pytest.approx(0.8)
    record.note_segment_seconds(7.0)  # slow encoders: still asked again every second per segment
    assert pause(record, spec, SETTINGS, 30) == PAUSE_SECONDS
    record.note_segment_seconds(0.001)  # segments from the cache: not a storm of retries either
    assert pause(record, spec, SETTINGS, 30) == MIN_PAUSE_SECONDS


def test_a_cached_job_asks_again_soon_while_it_finds_its_frames(fake_redis):
    record, spec = job(fake_redis, n_frames=10_000, options=RenderOptions(fps=1, cache=True))
    assert pause(record, spec, SETTINGS, 20) == CACHED_PAUSE_SECONDS
    record.add_seconds({"frames_drawn": 5, "frames_from_cache": 10})
    assert pause(record, spec, SETTINGS, 20) == CACHED_PAUSE_SECONDS
    record.add_seconds({"frames_drawn": 30})  # a first run: drawing, like any job
    assert pause(record, spec, SETTINGS, 20) == FIRST_PAUSE_SECONDS
    record.finish_segment(0, 10)
    record.note_segment_seconds(0.5)
    assert pause(record, spec, SETTINGS, 30) == pytest.approx(0.5)
    # A re-run: the one segment encoded anew (its changed frames) sets no pace for the rest.
    record.add_seconds({"frames_from_cache": 100})
    assert pause(record, spec, SETTINGS, 30) == CACHED_PAUSE_SECONDS


def test_the_window_is_never_shorter_than_a_segment(fake_redis):
    record, spec = job(fake_redis, segment_frames=50)
    assert not must_wait(record, spec, SETTINGS, 49) and must_wait(record, spec, SETTINGS, 50)


def test_nothing_waits_on_encoders_that_make_no_progress(fake_redis):
    record, spec = job(fake_redis)
    fake_redis.hset(record.key, "encoded_at", time.time() - STALL_SECONDS - 1)
    assert not must_wait(record, spec, SETTINGS, 90)
    record.note_encoding()
    assert must_wait(record, spec, SETTINGS, 90)


def test_a_slow_encoder_that_is_alive_keeps_the_window_closed(fake_redis):
    # An encoder starved on a loaded machine: no progress for longer than STALL_SECONDS, but its
    # heartbeat keeps its segment's lease alive. The store must not grow with the job.
    record, spec = job(fake_redis)
    fake_redis.hset(record.key, "encoded_at", time.time() - STALL_SECONDS - 1)
    lease = EncodeLease(record, part=":seg0")
    assert lease.acquire()
    try:
        assert must_wait(record, spec, SETTINGS, 20) and must_wait(record, spec, SETTINGS, 90)
    finally:
        lease.release()
    # Its lease is gone (released, or lapsed with a dead holder): nothing holds the window.
    assert not must_wait(record, spec, SETTINGS, 90)


def test_an_encoder_alive_on_a_later_segment_or_the_whole_video_holds_the_window_too(fake_redis):
    record, spec = job(fake_redis)
    record.finish_segment(0, 10)
    fake_redis.hset(record.key, "encoded_at", time.time() - STALL_SECONDS - 1)
    for part in (":seg2", ""):  # a segment inside the window; the chord's callback's lease
        fake_redis.set(keys.lease(record.job_id, part), "1:token", px=10_000)
        assert must_wait(record, spec, SETTINGS, 40), part
        fake_redis.delete(keys.lease(record.job_id, part))
    # A lease of a segment behind the window (finished) or far past it says nothing of it.
    for part in (":seg0", ":seg9"):
        fake_redis.set(keys.lease(record.job_id, part), "1:token", px=10_000)
    assert not must_wait(record, spec, SETTINGS, 40)


def test_a_dead_encoders_lease_lapses_and_opens_the_window(fake_redis):
    record, spec = job(fake_redis)
    fake_redis.hset(record.key, "encoded_at", time.time() - STALL_SECONDS - 1)
    fake_redis.set(keys.lease(record.job_id, ":seg0"), "1:token", px=50)  # never renewed
    assert must_wait(record, spec, SETTINGS, 90)
    time.sleep(0.1)
    assert not must_wait(record, spec, SETTINGS, 90)


def test_a_job_of_one_segment_never_waits(fake_redis):
    record, spec = job(fake_redis, segment_frames=100)
    assert spec.n_segments == 1 and not must_wait(record, spec, SETTINGS, 99)


def test_segments_are_planned_equal_and_short_jobs_keep_one():
    assert plan_segments(100, 120) == 100
    assert plan_segments(300, 120) == 100  # three equal segments, not 120 + 120 + 60
    assert plan_segments(241, 120) == 81
    assert plan_segments(1000, 1) == 8  # never shorter than the minimum
    assert -(-10**9 // plan_segments(10**9, 8)) == MAX_SEGMENTS


@pytest.mark.parametrize("segment_frames", [0, 3, -5, "8", 1.5])
def test_a_spec_with_forged_segments_is_refused(segment_frames):
    good = JobSpec("m:C", b"\x80", "out.mp4", 1000, 10, RenderOptions(fps=1), 100)
    fields = {**good.__dict__, "options": good.options.__dict__, "segment_frames": segment_frames}
    with pytest.raises(InvalidArgument):
        JobSpec.from_fields(fields)
    assert JobSpec.from_fields({**fields, "segment_frames": 100}).n_segments == 10


def test_a_spec_with_too_many_segments_is_refused():
    spec = replace(JobSpec("m:C", b"\x80", "out.mp4", 10**6, 10, RenderOptions(fps=1)), segment_frames=8)
    with pytest.raises(InvalidArgument, match="segments"):
        JobSpec.unpack(spec.pack())


def test_segment_length_depends_on_the_cluster_unless_set():
    assert Settings.from_env({}).segment_length == 60
    assert replace(Settings.from_env({}), embedded=True).segment_length == 3600
    chosen = Settings.from_env({"CELERY_ANIMATE_SEGMENT_FRAMES": "90"})
    assert replace(chosen, embedded=True).segment_length == 90


def test_a_wave_of_chunks_fits_a_quarter_of_the_window_so_encoders_that_keep_up_hold_nothing_back(
        fake_redis):
    # 32 render processes, a window of 256 frames: chunks sized by the job alone (8 frames, a
    # wave of 256) make the wave after each encoded one wait for the window.
    settings = Settings(window_frames=256, segment_frames=60)
    workers, n_frames = 32, 2048
    chunk = choose_chunk_size(n_frames, workers, 8, largest_chunk(settings, n_frames, workers))
    assert chunk == 2
    record = JobRecord(fake_redis, new_job_id())
    spec = JobSpec("m:C", b"\x80", "/o.mp4", n_frames, n_frames // chunk, RenderOptions(fps=1),
                   plan_segments(n_frames, settings.segment_length))
    lifecycle.create(record, spec)
    wave = workers * chunk
    finished = 0
    for rendered in range(wave, n_frames, wave):
        # Encoders one segment behind the rendered frames: all but the last complete segment.
        while finished < rendered // spec.segment_frames - 1:
            record.finish_segment(finished, spec.segment_frames)
            finished += 1
        waiting = [first for first in range(rendered, rendered + wave, chunk)
                   if pause(record, spec, settings, first)]
        assert waiting == [], f"after {rendered} frames"


def test_only_jobs_that_may_be_segmented_size_chunks_by_the_window():
    settings = Settings(window_frames=120, segment_frames=3600)
    assert largest_chunk(settings, 600, 2) == 1800  # one segment: the window never applies
    assert largest_chunk(settings, 6000, 2) == 15  # a wave of 30 frames: a quarter of 120
    assert largest_chunk(settings, None, 2) == 15  # a generator of unknown length may be long
    assert largest_chunk(settings, 6000, 1000) == 1
