"""Sending again what the broker lost of a job (fakeredis as both the broker and the job store).

Messages are sent by a real Celery app through kombu's Redis transport, whose
client is pointed at fakeredis, so they lie where and as a worker would find
them; a worker "taking" one is kombu's own ``basic_get`` with acks_late.
"""

import json
import time

import fakeredis
import pytest
from kombu.transport import redis as kombu_redis

from celery_animate import wire
from celery_animate.config import Settings
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.broker_layout import UNACKED_KEY, priority_lists, queued_and_unacked
from celery_animate.job.messages import (
    ENCODE_TASK,
    RENDER_TASK,
    SEGMENT_TASK,
    chunk_message,
    encode_callback,
)
from celery_animate.job.record import JobRecord
from celery_animate.job.recovery import LOCK_KEY, LostWork, resend_lost_work
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.stores import MemoryFrameStore
from celery_animate.worker.app import create_app

URL = "redis://127.0.0.1:1/0"
SETTINGS = Settings(broker_url=URL, result_backend=URL, visibility_timeout=2, max_deliveries=3)


def later() -> float:
    """A minute from now: every job made here has made no progress for a minute by then."""
    return time.time() + 60


@pytest.fixture
def broker(monkeypatch):
    """(fakeredis client, a Celery app that sends into it)."""
    server = fakeredis.FakeServer()
    monkeypatch.setattr(kombu_redis.Channel, "_create_client",
                        lambda self, asynchronous=False: fakeredis.FakeRedis(server=server))
    return fakeredis.FakeRedis(server=server), create_app(SETTINGS)


def rendering_job(client, chunks_done=(), sent_to=("render", "gpu")) -> JobRecord:
    """A job of 8 frames in 4 chunks of 2, rendering, whose chunks ``chunks_done`` are stored."""
    record = JobRecord(client, new_job_id())
    for k in range(4):
        record.stage_chunk(k, wire.packb([(2 * k, None), (2 * k + 1, None)]), ttl=600)
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 8, 4, RenderOptions(fps=1)))
    lifecycle.begin_rendering(record)
    for k in chunks_done:
        lifecycle.report_chunk(record, k, 2)
    if sent_to:
        record.mark_sent(*sent_to)
    return record


def send_chunks(app, record, chunks):
    for k in chunks:
        chunk_message(app, SETTINGS, record.job_id, k, priority=k).apply_async()


def on_broker(client, job_id):
    return sorted((task, args[1:]) for task, args in queued_and_unacked(client, ["render", "gpu"], 100)
                  if args[0] == job_id)


def resend(client, app, store=None, now=None, sleep=lambda s: None):
    return resend_lost_work(client, client, app, SETTINGS,
                            lifecycle.Cleaner(store or MemoryFrameStore(), SETTINGS),
                            now=now or later(), sleep=sleep)


def test_a_chunk_on_no_queue_is_sent_again_with_the_encode_callback(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0])
    send_chunks(app, record, [1, 3])  # chunk 2's message was lost
    assert resend(client, app) == {record.job_id: LostWork((2,), encoder=True)}
    assert on_broker(client, record.job_id) == [(ENCODE_TASK, []), (RENDER_TASK, [1]),
                                                (RENDER_TASK, [2]), (RENDER_TASK, [3])]
    assert record.field("recoveries") == "1"


def test_nothing_is_sent_while_every_unfinished_chunk_is_queued_or_taken(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0])
    send_chunks(app, record, [1, 2, 3])
    with app.connection_for_read() as connection:  # a worker holds one, not yet acknowledged
        assert connection.default_channel.basic_get("render", no_ack=False) is not None
        assert resend(client, app) == {}
    assert len(on_broker(client, record.job_id)) == 3 and record.field("recoveries") is None


def test_a_chunk_partly_stored_is_unfinished_and_one_without_params_is_not(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0])
    lifecycle.report_chunk(record, 1, 1)  # its worker died after one of two frames
    client.delete(record.chunk_key(3))  # nothing could render chunk 3 again
    send_chunks(app, record, [2])
    assert resend(client, app) == {record.job_id: LostWork((1,), encoder=True)}


def test_a_message_seen_on_the_second_look_is_not_sent_again(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0, 1, 3])
    # Between the looks, chunk 2's message shows up (it was moving between a queue and a worker).
    assert resend(client, app, sleep=lambda s: send_chunks(app, record, [2])) == {}
    assert on_broker(client, record.job_id) == [(RENDER_TASK, [2])]


def test_jobs_with_recent_progress_or_sent_elsewhere_or_not_yet_sent_are_left_alone(broker):
    client, app = broker
    elsewhere = rendering_job(client, sent_to=("render-hd", "gpu"))
    unsent = rendering_job(client, sent_to=None)
    recent = rendering_job(client)
    assert resend(client, app, now=float(recent.field("progress_at")) + 1) == {}
    client.delete(LOCK_KEY)
    assert resend(client, app) == {recent.job_id: LostWork((0, 1, 2, 3), encoder=True)}
    assert on_broker(client, elsewhere.job_id) == on_broker(client, unsent.job_id) == []


def test_an_encoding_job_with_no_message_left_gets_its_encode_callback(broker):
    client, app = broker
    waiting, segmenting = rendering_job(client, [0, 1, 2, 3]), rendering_job(client, [0, 1, 2, 3])
    assert waiting.state() == "encoding"
    app.signature(SEGMENT_TASK, args=(segmenting.job_id, 0), queue="gpu").apply_async()
    assert resend(client, app) == {waiting.job_id: LostWork(encoder=True)}
    assert on_broker(client, waiting.job_id) == [(ENCODE_TASK, [])]


def test_an_encode_callback_on_the_broker_is_not_sent_twice(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0, 1])
    encode_callback(app, SETTINGS, record.job_id, priority=0).apply_async()
    assert resend(client, app) == {record.job_id: LostWork((2, 3), encoder=False)}
    assert [task for task, _ in on_broker(client, record.job_id)].count(ENCODE_TASK) == 1


def test_one_worker_looks_at_a_time(broker):
    client, app = broker
    record = rendering_job(client)
    client.set(LOCK_KEY, "1")
    assert resend(client, app) == {}
    assert on_broker(client, record.job_id) == []


def test_messages_lost_round_after_round_fail_the_job_and_delete_its_data(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0, 1, 3])
    store = MemoryFrameStore()
    store.put(record.job_id, 0, b"frame")
    for round_no in range(1, SETTINGS.max_deliveries + 1):
        assert resend(client, app, store) == {record.job_id: LostWork((2,), encoder=True)}
        assert record.field("recoveries") == str(round_no)
        # The broker loses them again; the lock expires.
        client.delete(*priority_lists("render"), *priority_lists("gpu"), UNACKED_KEY, LOCK_KEY)
    assert resend(client, app, store) == {record.job_id: LostWork((2,), encoder=True)}
    state, _, error = record.ending()
    error = json.loads(error)
    assert state == "failed" and error["type"].endswith("MessagesLost")
    assert "vanished from the broker 4 times" in error["message"]
    assert on_broker(client, record.job_id) == []  # nothing sent in the last round
    assert not client.exists(record.chunk_key(2)) and len(store) == 0


def test_what_a_stranger_put_on_the_broker_is_skipped_not_an_error(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0, 1, 3])
    client.set("render:5", "not a list")
    client.lpush("render", "not json", json.dumps({"headers": {"task": RENDER_TASK}}))
    client.hset("unacked", "tag", "[1, 2")
    assert resend(client, app) == {record.job_id: LostWork((2,), encoder=True)}


def test_an_encoder_encoding_what_is_stored_again_does_not_hide_lost_chunks(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0])
    now = float(record.field("rendered_at")) + 30
    client.hset(record.key, "progress_at", now - 1)  # an encoder started over on frames 0 and 1
    assert resend(client, app, now=now) == {record.job_id: LostWork((1, 2, 3), encoder=True)}


def test_a_pass_holds_the_lock_throughout_and_for_an_interval_after(broker):
    client, app = broker
    record = rendering_job(client, chunks_done=[0, 1, 3])
    meanwhile = []  # another worker's pass between this one's two looks
    lost = resend(client, app, sleep=lambda s: meanwhile.append(resend(client, app)))
    assert meanwhile == [{}] and lost == {record.job_id: LostWork((2,), encoder=True)}
    assert [task for task, _ in on_broker(client, record.job_id)] == [ENCODE_TASK, RENDER_TASK]
    assert 0 < client.ttl(LOCK_KEY) <= SETTINGS.restore_interval
