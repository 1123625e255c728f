"""Reading the encode queue for another job's encoder waiting ahead of a segment (fakeredis)."""

import json

import pytest

from celery_animate.encode.contention import PEEK, other_job_waiting
from celery_animate.encode.segments import MAX_YIELDS, yielding_reporter
from celery_animate.errors import SegmentYielded
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.broker_layout import priority_lists
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.worker.app import RENDER_TASK, SEGMENT_TASK, STREAM_TASK

MINE, THEIRS = "a" * 32, "b" * 32


def message(task: str, *args) -> bytes:
    """A message as kombu's Redis transport stores it (the parts read here)."""
    return json.dumps({"body": "", "headers": {"task": task, "argsrepr": repr(args)},
                       "properties": {}}).encode()


@pytest.fixture
def queue(fake_redis):
    def push(priority: int, raw: bytes) -> None:
        fake_redis.lpush(priority_lists("gpu", priority + 1)[-1], raw)
    return push


def test_another_job_s_encoder_ahead_of_the_segment_is_seen(fake_redis, queue):
    queue(0, message(STREAM_TASK, THEIRS))
    assert other_job_waiting(fake_redis, "gpu", 3, MINE)
    assert not other_job_waiting(fake_redis, "gpu", 0, MINE)  # priority 0 has nothing ahead


@pytest.mark.parametrize("priority, raw", [
    (1, message(SEGMENT_TASK, MINE, 4)),  # the same job's next segment
    (1, message(SEGMENT_TASK, THEIRS, 2)),  # another long job's segment waits its turn
    (1, message(STREAM_TASK, MINE)),  # this job's own encoder
    (5, message(STREAM_TASK, THEIRS)),  # behind us
    (1, message(RENDER_TASK, THEIRS, 0)),  # not an encoder
    (1, b"\\x80 not json"),
    (1, json.dumps({"headers": None}).encode()),
])
def test_nothing_else_counts(fake_redis, queue, priority, raw):
    queue(priority, raw)
    assert not other_job_waiting(fake_redis, "gpu", 3, MINE)


def test_a_priority_a_message_claims_reads_at_most_the_ten_lists_there_are():
    assert priority_lists("gpu", 10**9) == priority_lists("gpu", 10) == ["gpu"] + [
        f"gpu:{p}" for p in range(1, 10)]
    assert priority_lists("gpu", -5) == []


def test_a_queue_key_that_is_not_a_list_holds_no_encoder(fake_redis):
    fake_redis.set("gpu", message(STREAM_TASK, THEIRS))
    assert not other_job_waiting(fake_redis, "gpu", 3, MINE)


def test_only_the_messages_served_next_are_read(fake_redis, queue):
    queue(1, message(STREAM_TASK, THEIRS))  # pushed first: served first
    for k in range(PEEK):
        queue(1, message(SEGMENT_TASK, MINE, k))
    assert other_job_waiting(fake_redis, "gpu", 3, MINE)
    for k in range(PEEK):
        fake_redis.rpush(priority_lists("gpu", 2)[-1], message(SEGMENT_TASK, MINE, k))
    assert not other_job_waiting(fake_redis, "gpu", 3, MINE)


def test_a_segment_s_yields_are_counted_per_segment(fake_redis):
    record = JobRecord(fake_redis, new_job_id())
    assert record.count_yield(0) == 0  # no record: nothing to count
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 8, 1, RenderOptions(fps=1), 4))
    assert [record.count_yield(0) for _ in range(3)] == [1, 2, 3]
    assert record.count_yield(1) == 1
    fake_redis.hset(record.key, "yields:2", "many")  # a stranger's value: no more yields
    assert record.count_yield(2) > MAX_YIELDS


def test_a_segment_gives_way_at_most_max_yields_times_and_only_in_its_first_half(fake_redis,
                                                                                 queue):
    record = JobRecord(fake_redis, new_job_id())
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 80, 1, RenderOptions(fps=1), 40))
    queue(0, message(STREAM_TASK, THEIRS))  # forged or real: it never leaves the queue here
    reported = []
    encoded = yielding_reporter(reported.append, record, fake_redis, "gpu", segment=0, priority=3,
                        n_frames=40)
    encoded(24)  # past half the segment: finishing costs less than starting again
    for _ in range(MAX_YIELDS):
        with pytest.raises(SegmentYielded):
            encoded(8)
    encoded(8)  # the segment has given way enough: it keeps its process now
    assert reported == [24] + [8] * (MAX_YIELDS + 1)
