"""Messages the broker loses cost seconds, not the job (real Redis, real prefork workers).

kombu's Redis transport takes a message off its queue before it notes it as
taken; a worker machine that dies in between loses it, as does a purged
queue. Each test loses messages that way mid-job, from outside, and checks
that the job still ends with the exact video, its lost work sent again by the
workers' watchdogs (``celery_animate.job.recovery``).
"""

import subprocess
import sys

import pytest
import redis
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until
from workers import ROOT, WorkerSpec

from celery_animate.job.broker_layout import priority_lists

pytestmark = pytest.mark.cluster

#: A worker vanished with a message gives it back after 2 s; lost messages are looked for after
#: 5 s without progress (recovery.lost_after).
VISIBILITY = {"CELERY_ANIMATE_VISIBILITY_TIMEOUT": "2"}


def take_next(broker: redis.Redis, queue: str) -> bytes:
    """Take the message a worker would be served next, as a worker that dies holding it does."""
    for name in priority_lists(queue):
        if (message := broker.rpop(name)) is not None:
            return message
    raise AssertionError(f"queue {queue} is empty")


def purge(env: dict[str, str], queue: str) -> None:
    subprocess.run([sys.executable, "-m", "celery", "-A", "celery_animate", "purge", "-f",
                    "-Q", queue], env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)


def queued(broker: redis.Redis, queue: str) -> int:
    return sum(broker.llen(name) for name in priority_lists(queue))


@pytest.mark.parametrize("loss", ["one chunk taken by a dying worker", "render queue purged"])
def test_render_messages_lost_mid_job_are_sent_again(make_cluster, tmp_path, loss):
    cluster = make_cluster([WorkerSpec("render", "render", 1), WorkerSpec("gpu", "encoder", 1)],
                           env=VISIBILITY)
    broker, env, settings = cluster.redis(), cluster.env, cluster.settings
    params = bar_params(24)
    job = Slow(0.1).submit(tmp_path / "lost.mp4", params, fps=10, num_workers=1, preload_factor=12,
                           settings=settings)  # 12 chunks of 2 frames, one render process
    wait_until(lambda: job.progress().rendered >= 2 and queued(broker, "render") >= 4,
               message="the job rendering with chunks waiting")
    if loss == "render queue purged":
        purge(env, "render")
        assert queued(broker, "render") == 0
    else:
        take_next(broker, "render")
    result = job.wait(timeout=120)
    assert result.n_frames == 24
    assert_video(tmp_path / "lost.mp4", serial_frames(BarCode(), params))
    logs = "".join(path.read_text(errors="replace") for path in cluster.logs.values())
    assert "lost from the broker, sent again (round 1 of at most 3)" in logs


def test_an_encode_callback_lost_before_any_encoder_took_it_is_sent_again(make_cluster, tmp_path):
    # No encoder yet: the encode messages wait in the queue.
    cluster = make_cluster([WorkerSpec("render", "render", 2)], env=VISIBILITY)
    broker, env, settings = cluster.redis(), cluster.env, cluster.settings
    params = bar_params(12)
    job = BarCode().submit(tmp_path / "lost.mp4", params, fps=10, num_workers=2, settings=settings)
    wait_until(lambda: job.progress().state == "encoding" and queued(broker, "gpu") == 2,
               message="every frame rendered, the stream encoder and the chord's callback queued")
    purge(env, "gpu")  # both of the job's encoders are lost
    cluster.start(WorkerSpec("gpu", "encoder", 1))
    result = job.wait(timeout=120)
    assert result.n_frames == 12
    assert_video(tmp_path / "lost.mp4", serial_frames(BarCode(), params))
    logs = "".join(path.read_text(errors="replace") for path in cluster.logs.values())
    assert "the encode callback, lost from the broker, sent again" in logs
