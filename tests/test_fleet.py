"""Several machines, as far as one host can show them: two render nodes and an encode node.

Each node is its own `celery worker` process tree with its own node name,
talking to one Redis; with the directory store all of them share one
scratch directory. Killing one render node outright mid-job (SIGKILL to its
whole process group, as a machine that loses power) costs the chunks it held,
which are delivered again to the other node (even when it dies holding the lock
under which workers give such messages back); the video is still complete and
in order.
"""

import pytest
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until
from workers import WorkerSpec

from celery_animate.worker.app import app_for

pytestmark = pytest.mark.cluster

NODES = (WorkerSpec("render", "node-a", 2), WorkerSpec("render", "node-b", 2), WorkerSpec("gpu", "encoder"))


@pytest.fixture(params=["redis", "directory"])
def fleet(request, make_cluster):
    """Two render nodes and one encode node on a Redis of their own, with either frame store."""
    # A dead node's chunks come back in seconds.
    return make_cluster(NODES, frame_store=request.param, env={"CELERY_ANIMATE_VISIBILITY_TIMEOUT": "2"})


def busy_nodes(settings) -> set[str]:
    active = app_for(settings).control.inspect(timeout=1).active() or {}
    return {host.split("@")[0] for host, tasks in active.items()
            if any(task["name"].endswith("render_chunk") for task in tasks)}


def test_a_render_node_lost_mid_job_costs_its_chunks_not_the_video(fleet, tmp_path):
    settings = fleet.settings
    params = bar_params(64)
    job = Slow(0.1).submit(tmp_path / "fleet.mp4", params, fps=10, num_workers=4, preload_factor=4,
                           video_quality=10, settings=settings)  # 16 chunks of 4 frames, 0.4 s each
    wait_until(lambda: busy_nodes(settings) == {"node-a", "node-b"}, message="both nodes rendering")
    # As if the node died while giving back a vanished worker's messages: the lock it held
    # lives on for its expiry, and only then are the node's own messages given back.
    fleet.redis().set("unacked_mutex", "node-a's token", ex=settings.unacked_lock_seconds)
    fleet.kill("node-a")  # the node's main process and pool, no goodbye
    done_by_b = chunks_done(fleet.logs["node-b"])
    rendered_at_kill = job.progress().rendered
    result = job.wait(timeout=120)
    assert rendered_at_kill < 64 and result.n_frames == 64
    assert_video(tmp_path / "fleet.mp4", serial_frames(BarCode(), params))
    # The surviving node did the rest, the chunks the lost one held included.
    assert chunks_done(fleet.logs["node-b"]) > done_by_b
    assert fleet.processes["node-b"].poll() is None and fleet.processes["encoder"].poll() is None


def chunks_done(log) -> int:
    return sum("render_chunk" in line and "succeeded" in line
               for line in log.read_text(errors="replace").splitlines())
