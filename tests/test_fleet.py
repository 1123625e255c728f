"""Several machines, as far as one host can show them: two render nodes and an encode node.

Each node is its own `celery worker` process tree with its own node name,
talking to one Redis; with the directory store all of them share one
scratch directory. Killing one render node outright mid-job (SIGKILL to its
whole process group, as a machine that loses power) costs the chunks it held,
which are delivered again to the other node (even when it dies holding the lock
under which workers give such messages back); the video is still complete and
in order.
"""

import os
import signal

import pytest
import redis
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until
from workers import cluster_env, start_worker, stop, wait_for_workers

from celery_animate import Settings
from celery_animate.client.embedded.redis_server import RedisServer
from celery_animate.worker.app import app_for

pytestmark = pytest.mark.cluster


@pytest.fixture(params=["redis", "directory"])
def fleet(request, tmp_path):
    """(settings, {node name: worker process}) for two render nodes and one encode node."""
    extra = {"CELERY_ANIMATE_VISIBILITY_TIMEOUT": "2"}  # a dead node's chunks come back in seconds
    if request.param == "directory":
        scratch = tmp_path / "shared-scratch"
        scratch.mkdir()
        extra["CELERY_ANIMATE_FRAME_STORE"] = scratch.as_uri()
    with RedisServer() as server:
        env = cluster_env(server.url, **extra)
        nodes = {
            "node-a": start_worker(env, "render", 2, "node-a", tmp_path / "node-a.log"),
            "node-b": start_worker(env, "render", 2, "node-b", tmp_path / "node-b.log"),
            "encoder": start_worker(env, "gpu", 1, "encoder", tmp_path / "encoder.log"),
        }
        settings = Settings.from_env(env)
        try:
            wait_for_workers(settings, list(nodes))
            yield settings, nodes
        finally:
            for worker in nodes.values():
                stop(worker)


def busy_nodes(settings) -> set[str]:
    active = app_for(settings).control.inspect(timeout=1).active() or {}
    return {host.split("@")[0] for host, tasks in active.items()
            if any(task["name"].endswith("render_chunk") for task in tasks)}


def test_a_render_node_lost_mid_job_costs_its_chunks_not_the_video(fleet, tmp_path):
    settings, nodes = fleet
    params = bar_params(64)
    job = Slow(0.1).submit(tmp_path / "fleet.mp4", params, fps=10, num_workers=4, preload_factor=4,
                           video_quality=10, settings=settings)  # 16 chunks of 4 frames, 0.4 s each
    wait_until(lambda: busy_nodes(settings) == {"node-a", "node-b"}, message="both nodes rendering")
    # As if the node died while giving back a vanished worker's messages: the lock it held
    # lives on for its expiry, and only then are the node's own messages given back.
    redis.Redis.from_url(settings.broker_url).set("unacked_mutex", "node-a's token",
                                                  ex=settings.unacked_lock_seconds)
    os.killpg(nodes["node-a"].pid, signal.SIGKILL)  # the node's main process and pool, no goodbye
    done_by_b = chunks_done(tmp_path / "node-b.log")
    rendered_at_kill = job.progress().rendered
    result = job.wait(timeout=120)
    assert rendered_at_kill < 64 and result.n_frames == 64
    assert_video(tmp_path / "fleet.mp4", serial_frames(BarCode(), params))
    # The surviving node did the rest, the chunks the lost one held included.
    assert chunks_done(tmp_path / "node-b.log") > done_by_b
    assert nodes["node-b"].poll() is None and nodes["encoder"].poll() is None


def chunks_done(log) -> int:
    return sum("render_chunk" in line and "succeeded" in line
               for line in log.read_text(errors="replace").splitlines())
