"""Job states, their transitions (the Lua scripts) and cleanup, against fakeredis."""

import json
import time

import pytest
import redis

from celery_animate import keys
from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, JobNotFound
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job import record as record_module
from celery_animate.job.record import JOB_INDEX, JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.stores import MemoryFrameStore

RESULT = RenderResult("/o.mp4", 4, 64, 48, 10, "libx264", 123, 0.5)


def new_job(client, n_frames=4, n_chunks=2, ttl=1000):
    record = JobRecord(client, new_job_id(), ttl=ttl)
    spec = JobSpec("m:C", b"\x80", "/o.mp4", n_frames, n_chunks, RenderOptions(fps=10))
    for k in range(n_chunks):
        record.stage_chunk(k, b"\x90", ttl=50)
    lifecycle.create(record, spec)
    return record, spec


def test_create_writes_a_queued_record_with_expiry_and_index(fake_redis):
    record, spec = new_job(fake_redis)
    assert record.progress().state == "queued" and record.progress().total == 4
    assert 0 < fake_redis.ttl(record.key) <= 1000
    assert fake_redis.zscore(JOB_INDEX, record.job_id) is not None
    assert record.spec() == spec


def test_happy_path_transitions(fake_redis):
    record, _ = new_job(fake_redis)
    assert lifecycle.begin_rendering(record) is True
    assert lifecycle.begin_rendering(record) is False
    assert lifecycle.report_chunk(record, 0, 2) == "rendering"
    assert lifecycle.report_chunk(record, 1, 2) == "encoding"  # the last frame is stored
    assert lifecycle.end_job(record, RESULT) is True
    state, result, _ = record.ending()
    assert state == "done" and RenderResult(**json.loads(result)) == RESULT


def test_terminal_states_are_final(fake_redis):
    record, _ = new_job(fake_redis)
    assert lifecycle.end_job(record, ValueError("bad")) is True
    for end in (lambda: lifecycle.end_job(record, RESULT),
                lambda: lifecycle.end_job(record, lifecycle.CANCEL),
                lambda: lifecycle.end_job(record, RuntimeError("again")),
                lambda: lifecycle.begin_rendering(record)):
        assert end() is False
    state, _, error = record.ending()
    info = json.loads(error)
    assert state == "failed" and info["type"] == "ValueError" and info["message"] == "bad"
    assert "ValueError: bad" in info["traceback"]


def test_record_lives_job_ttl_from_its_end(fake_redis):
    record, _ = new_job(fake_redis, ttl=1000)
    fake_redis.expire(record.key, 5)  # nearly expired while running...
    lifecycle.end_job(record, lifecycle.CANCEL)
    assert fake_redis.ttl(record.key) > 900  # ...then counted again from the end


def test_chunk_progress_counts_each_chunk_once(fake_redis):
    record, _ = new_job(fake_redis, n_frames=10)
    lifecycle.report_chunk(record, 0, 3)
    lifecycle.report_chunk(record, 0, 2)  # a re-delivered chunk reports less: ignored
    lifecycle.report_chunk(record, 0, 3)
    lifecycle.report_chunk(record, 1, 4)
    assert record.progress().rendered == 7


def test_progress_on_a_lost_record_creates_nothing(fake_redis):
    record, _ = new_job(fake_redis)
    fake_redis.flushall()
    assert lifecycle.report_chunk(record, 0, 2) is None
    assert lifecycle.end_job(record, lifecycle.CANCEL) is False
    assert fake_redis.keys("*") == []
    with pytest.raises(JobNotFound):
        record.progress()


def test_the_end_with_a_cleaner_removes_everything_the_job_owns_and_may_repeat(fake_redis, tmp_path):
    record, _ = new_job(fake_redis)
    store = MemoryFrameStore()
    for i in range(4):
        store.put(record.job_id, i, b"frame")
    fake_redis.setbit(keys.segments(record.job_id), 0, 1)
    fake_redis.set(keys.lease(record.job_id), "1:token", px=10_000)
    fake_redis.set(keys.lease_generation(record.job_id), 1)
    cleaner = lifecycle.Cleaner(store, Settings(output_root=str(tmp_path)))
    assert lifecycle.end_job(record, RuntimeError("x"), cleaner) is True
    assert len(store) == 0
    assert [key.decode() for key in fake_redis.scan_iter(keys.job_pattern(record.job_id))] == [record.key]
    assert fake_redis.zscore(keys.ENDING_JOBS, record.job_id) is None
    store.put(record.job_id, 0, b"late")  # a chunk that stored a frame after the end
    assert lifecycle.end_job(record, lifecycle.CANCEL, cleaner) is False  # ended already...
    assert len(store) == 0  # ...but what came late is removed all the same


def test_a_job_ended_without_a_cleaner_waits_to_be_purged_by_one(fake_redis):
    record, _ = new_job(fake_redis)
    store = MemoryFrameStore()
    store.put(record.job_id, 0, b"frame")
    assert lifecycle.end_job(record, lifecycle.CANCEL) is True
    assert len(store) == 1 and fake_redis.exists(record.chunk_key(0))
    cleaner = lifecycle.Cleaner(store, Settings())
    assert lifecycle.purge_ended(fake_redis, cleaner, record.ttl, now=time.time()) == []  # in its grace
    later = time.time() + lifecycle.PURGE_GRACE_SECONDS + 1
    assert lifecycle.purge_ended(fake_redis, cleaner, record.ttl, now=later) == [record.job_id]
    assert len(store) == 0 and not fake_redis.exists(record.chunk_key(0))
    assert lifecycle.purge_ended(fake_redis, cleaner, record.ttl, now=later) == []


def test_forged_ids_on_the_purge_list_are_dropped(fake_redis):
    fake_redis.zadd(keys.ENDING_JOBS, {"../../etc": 0, "f" * 32: 0})
    cleaner = lifecycle.Cleaner(MemoryFrameStore(), Settings())
    assert lifecycle.purge_ended(fake_redis, cleaner, 60, now=time.time()) == ["f" * 32]
    assert fake_redis.zcard(keys.ENDING_JOBS) == 0


def test_cancel_is_refused_once_publishing(fake_redis):
    record, _ = new_job(fake_redis)
    fake_redis.set(f"{record.key}:lease", "1:tok")
    assert lifecycle.commit_publish(record, f"{record.key}:lease", "2:other") is False
    assert lifecycle.commit_publish(record, f"{record.key}:lease", "1:tok") is True
    assert lifecycle.end_job(record, lifecycle.CANCEL) is False
    assert lifecycle.end_job(record, RESULT) is True


def test_commit_refused_after_cancel(fake_redis):
    record, _ = new_job(fake_redis)
    fake_redis.set(f"{record.key}:lease", "1:tok")
    assert lifecycle.end_job(record, lifecycle.CANCEL) is True
    assert lifecycle.commit_publish(record, f"{record.key}:lease", "1:tok") is False


def test_abandoned_submission_leaves_nothing_staged(fake_redis):
    record = JobRecord(fake_redis, new_job_id())
    record.stage_chunk(0, b"x", ttl=50)
    lifecycle.abandon_submission(record, 1, RuntimeError("broker down"))
    assert fake_redis.keys("*") == []


def test_chunks_are_staged_in_batches_and_an_abandoned_submission_deletes_them(fake_redis,
                                                                               monkeypatch):
    monkeypatch.setattr(record_module, "STAGE_BATCH_BYTES", 10)
    record = JobRecord(fake_redis, new_job_id())
    stager = record.stager(ttl=50)
    for k in range(7):
        stager.add(bytes([k]) * 4)
    # Two batches of three reached Redis (12 bytes each); the seventh waits for flush().
    assert sorted(fake_redis.keys("*:chunk:*")) == sorted(
        record.chunk_key(k).encode() for k in range(6))
    stager.flush()
    assert [fake_redis.get(record.chunk_key(k)) for k in range(7)] == [bytes([k]) * 4 for k in range(7)]
    assert 0 < fake_redis.ttl(record.chunk_key(6)) <= 50
    stager.add(b"never flushed")  # a submission that fails here deletes what it staged, and this
    lifecycle.abandon_submission(record, stager.count, RuntimeError("a bad frame"))
    assert fake_redis.keys("*") == []


@pytest.mark.parametrize("bad", ["../victim", "0" * 31, "A" * 32, "g" * 32, 7, None, "0" * 32 + "\n"])
def test_job_ids_are_checked(fake_redis, bad):
    with pytest.raises(InvalidArgument, match="is not a job id"):
        JobRecord(fake_redis, bad)


@pytest.mark.parametrize("end", [lambda r: lifecycle.end_job(r, RESULT),
                                 lambda r: lifecycle.end_job(r, ValueError("bad")),
                                 lambda r: lifecycle.end_job(r, lifecycle.CANCEL)],
                         ids=["done", "failed", "cancelled"])
def test_a_job_s_end_wakes_those_waiting_for_it(fake_redis, end):
    record, _ = new_job(fake_redis)
    with record.end_signal() as signal:
        lifecycle.begin_rendering(record)
        lifecycle.report_chunk(record, 0, 2)
        assert signal.sleep(0.05) is False  # a change of state that is not an end wakes no one
        assert end(record) is True
        assert signal.sleep(3600) is True
        assert end(record) is False  # ended once, published once
        assert signal.sleep(0.05) is False


def test_an_end_signal_without_redis_is_a_plain_sleep():
    client = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    with JobRecord(client, new_job_id()).end_signal() as signal:
        assert signal.sleep(0.01) is False
