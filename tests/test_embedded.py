"""The embedded default: a private Redis and a forked prefork worker, always stopped afterwards."""

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until

from celery_animate import EmbeddedCluster, RenderFailed, Settings
from celery_animate.client.embedded.scratch import SHARED_MEMORY
from celery_animate.render.loading import animator_path, pack_attrs


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


def test_frames_wait_in_private_folders_that_go_with_the_cluster(
        no_cluster_configured, tmp_path):
    animator = Slow(0.05)
    params = bar_params(24)
    with EmbeddedCluster(2, prewarm=[(animator_path(animator), pack_attrs(animator))]) as cluster:
        scratch, spill = cluster.scratch, cluster.spill
        assert cluster.settings.frame_store == scratch.as_uri()
        assert cluster.settings.frame_spill == spill.as_uri()
        assert scratch.parent == SHARED_MEMORY and spill.parent == Path(tempfile.gettempdir())
        for folder in (scratch, spill):
            assert folder.name.startswith(f"celery-animate-{os.getpid()}-")
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        job = animator.submit(tmp_path / "out.mp4", params, fps=8, settings=cluster.settings)
        # While it renders, the job's frames are files in the folder.
        wait_until(lambda: any((scratch / job.id).glob("*.frame")), timeout=60,
                   message="a frame in the shared-memory folder")
        job.wait(timeout=120)
        assert not (scratch / job.id).exists()  # the job's end took its frames
    assert not scratch.exists() and not spill.exists()
    assert_video(tmp_path / "out.mp4", serial_frames(Slow(0.0), params))


def test_a_configured_frame_store_is_kept(no_cluster_configured, tmp_path):
    frames = tmp_path / "frames"
    settings = Settings(frame_store=frames.as_uri())
    with EmbeddedCluster(1, settings) as cluster:
        assert cluster.scratch is None and cluster.settings.frame_store == frames.as_uri()
        assert cluster.spill is None and cluster.settings.frame_spill is None
        BarCode().submit(tmp_path / "out.mp4", bar_params(6), fps=4,
                         settings=cluster.settings).wait(timeout=120)
    assert_video(tmp_path / "out.mp4", serial_frames(BarCode(), bar_params(6)))


def test_the_folder_of_a_killed_client_goes_at_the_next_start(no_cluster_configured, tmp_path):
    # A client killed with SIGKILL cannot remove its folder; the next cluster on the machine does.
    code = ("import time; from celery_animate import EmbeddedCluster; "
            "c = EmbeddedCluster(1).start(); print(c.scratch, c.spill, flush=True); "
            "time.sleep(60)")
    client = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={k: v for k, v in os.environ.items() if not k.startswith("CELERY_")})
    left = [Path(folder) for folder in client.stdout.readline().split()]
    assert len(left) == 2 and all(folder.is_dir() for folder in left)
    client.kill()
    client.wait()
    assert all(folder.is_dir() for folder in left)
    with EmbeddedCluster(1) as cluster:
        assert not any(folder.exists() for folder in left)
        assert cluster.scratch.is_dir() and cluster.spill.is_dir()


def test_a_worker_that_never_starts_fails_the_follow_check(no_cluster_configured):
    with EmbeddedCluster(1, startup_timeout=0.0, wait_ready=False) as cluster:
        time.sleep(0.05)
        if cluster._workers[0].ready():
            pytest.skip("the worker started within the sleep")
        with pytest.raises(RuntimeError, match="did not start within 0 s"):
            cluster.check_alive()


def test_a_worker_that_exits_while_starting_is_reported_as_not_started(no_cluster_configured):
    with EmbeddedCluster(1, startup_timeout=60, wait_ready=False) as cluster:
        os.killpg(cluster._workers[0].pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        with pytest.raises(RuntimeError, match="exit"):
            while time.monotonic() < deadline:
                cluster.check_alive()
                time.sleep(0.02)


def test_a_cluster_stopped_as_soon_as_it_forked_leaves_no_worker(no_cluster_configured):
    # A caller whose submit fails at once stops the cluster before its workers ran a line.
    for _ in range(5):
        cluster = EmbeddedCluster(1, wait_ready=False).start()
        pids = [worker.pid for worker in cluster._workers]
        started = time.monotonic()
        cluster.stop()
        assert time.monotonic() - started < 4  # killed, not waited out
        assert not any(alive(pid) for pid in pids)
