"""The embedded default: a private Redis and a forked prefork worker, always stopped afterwards."""

import os
import signal
import time

import pytest
from animators import BarCode, bar_params

from celery_animate import EmbeddedCluster, RenderFailed


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still has a pid; it is gone for our purpose.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


@pytest.fixture
def no_cluster_configured(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CELERY_"):
            monkeypatch.delenv(key)


def test_failure_on_the_embedded_cluster_stops_it(no_cluster_configured, tmp_path, monkeypatch):
    started = []
    real_start = EmbeddedCluster.start

    def spy(self):
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(EmbeddedCluster, "start", spy)
    with pytest.raises(RenderFailed, match="ZeroDivisionError: boom at frame 3"):
        BarCode(fail_at=3).make_video(tmp_path / "x.mp4", bar_params(8), fps=4, num_workers=2,
                                      disable_progress_bar=True)
    (cluster,) = started
    assert cluster.settings.embedded and cluster.settings.broker_url.startswith("redis://:")
    assert cluster._workers == [] and cluster.redis._process is None
    assert list(tmp_path.iterdir()) == []


def test_a_dead_embedded_worker_is_noticed_and_everything_stops():
    with EmbeddedCluster(1) as cluster:
        worker_pid, redis_pid = cluster._workers[0].pid, cluster.redis._process.pid
        cluster.check_alive()
        os.killpg(worker_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        with pytest.raises(RuntimeError, match="exited unexpectedly"):
            while time.monotonic() < deadline:
                cluster.check_alive()
                time.sleep(0.05)
    assert not alive(worker_pid) and not alive(redis_pid)
