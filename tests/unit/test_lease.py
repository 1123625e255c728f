"""The encode lease: one holder, generations, loss, heartbeat."""

import time

import pytest

from celery_animate.encode.lease import EncodeLease
from celery_animate.errors import EncodeAbandoned
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions


@pytest.fixture
def record(fake_redis):
    record = JobRecord(fake_redis, new_job_id())
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 4, 2, RenderOptions(fps=1)))
    return record


def test_one_holder_at_a_time_and_generations_grow(record):
    first, second = EncodeLease(record), EncodeLease(record)
    assert first.acquire() and first.generation == 1
    assert not second.acquire()
    first.check()
    first.release()
    assert second.acquire() and second.generation == 2
    with pytest.raises(EncodeAbandoned):
        first.check()
    second.release()


def test_heartbeat_keeps_a_short_lease_alive(record):
    lease = EncodeLease(record, ttl=1.0)  # renewed every third of a second
    assert lease.acquire()
    time.sleep(3.5)  # more than three lease times without any frame
    lease.check()
    lease.release()
    assert not record.client.exists(lease.key)


def test_a_lease_taken_over_is_noticed_and_cannot_publish(record):
    lease = EncodeLease(record, ttl=5)
    assert lease.acquire()
    record.client.delete(lease.key)  # it expired, say while the process was stopped
    usurper = EncodeLease(record)
    assert usurper.acquire() and usurper.generation == 2
    with pytest.raises(EncodeAbandoned):
        lease.check()
    with pytest.raises(EncodeAbandoned):
        lease.commit()
    usurper.commit()
    lease.release()
    assert record.client.exists(usurper.key)  # releasing a lost lease leaves the new holder's alone
    usurper.release()


def test_commit_after_cancel_is_refused(record):
    lease = EncodeLease(record)
    assert lease.acquire()
    lifecycle.end_job(record, lifecycle.CANCEL)
    with pytest.raises(EncodeAbandoned):
        lease.commit()
    lease.release()
