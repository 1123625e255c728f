"""The watchdog fails running jobs that stopped making progress, and only those."""

import json

from celery_animate.config import Settings
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.job.watchdog import fail_stalled_jobs
from celery_animate.keys import ACTIVE_JOBS
from celery_animate.options import RenderOptions
from celery_animate.stores import MemoryFrameStore

SETTINGS = Settings(stall_timeout=60)


def job(client, state=None):
    record = JobRecord(client, new_job_id())
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 4, 2, RenderOptions(fps=1)))
    if state == "rendering":
        lifecycle.begin_rendering(record)
    if state == "encoding":
        lifecycle.begin_rendering(record)
        lifecycle.report_chunk(record, 0, 2)
        lifecycle.report_chunk(record, 1, 2)
    return record


def progress_at(client, record):
    return float(client.hget(record.key, "progress_at"))


def test_stalled_running_jobs_fail_with_the_stage_named(fake_redis):
    rendering, encoding, queued = job(fake_redis, "rendering"), job(fake_redis, "encoding"), job(fake_redis)
    store = MemoryFrameStore()
    store.put(rendering.job_id, 0, b"frame")
    later = progress_at(fake_redis, encoding) + 61
    cleaner = lifecycle.Cleaner(store, SETTINGS)
    assert fail_stalled_jobs(fake_redis, SETTINGS, cleaner, now=later - 30) == []
    assert sorted(fail_stalled_jobs(fake_redis, SETTINGS, cleaner, now=later)) == sorted(
        [rendering.job_id, encoding.job_id])
    state, _, error = rendering.ending()
    assert state == "failed" and "no progress while rendering for" in json.loads(error)["message"]
    assert "encode workers' logs" in json.loads(encoding.ending()[2])["message"]
    assert queued.progress().state == "queued"  # waiting for a worker is not a stall
    assert len(store) == 0  # the stalled job's frames were removed by the cleaner given
    assert fake_redis.zrange(ACTIVE_JOBS, 0, -1) == [queued.job_id.encode()]


def test_an_encoder_holding_its_lease_is_not_stalled(fake_redis):
    encoding = job(fake_redis, "encoding")
    fake_redis.set(f"{encoding.key}:lease", "1:token")
    assert fail_stalled_jobs(fake_redis, SETTINGS, None, now=10**10) == []


def test_progress_resets_the_clock_and_lost_records_leave_the_set(fake_redis):
    rendering, gone = job(fake_redis, "rendering"), job(fake_redis, "rendering")
    start = progress_at(fake_redis, rendering)
    fake_redis.hset(rendering.key, "progress_at", start + 50)  # a chunk reported progress
    fake_redis.delete(gone.key)
    assert fail_stalled_jobs(fake_redis, SETTINGS, None, now=start + 70) == []
    assert fake_redis.zrange(ACTIVE_JOBS, 0, -1) == [rendering.job_id.encode()]


def test_counters_never_recreate_a_lost_record(fake_redis):
    record = job(fake_redis, "rendering")
    fake_redis.delete(record.key)
    assert record.add_encoded(8) is False
    record.add_seconds({"render": 1.0})
    record.mark_started()
    record.set_stat("x", 1)
    assert record.count_delivery(0) == 0
    assert not fake_redis.exists(record.key)
