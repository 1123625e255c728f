"""Faults caused to real processes: every job ends, in the right state, with nothing half-written.

Each test breaks something for real (kills, time limits, revokes, a full
disk, a cancel mid-encode, a lost record), then checks the job's end state
and message, the output path, and that the workers serve the next job.
"""

import os
import subprocess
import time
from dataclasses import replace

import pytest
from animators import HD, BarCode, DiesAt, NoisyHD, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until

from celery_animate import (
    DiskFull,
    EmbeddedCluster,
    JobCancelled,
    JobNotFound,
    RenderFailed,
    Settings,
)
from celery_animate.worker.app import app_for

pytestmark = pytest.mark.cluster


def ends_failed(job, timeout=120) -> RenderFailed:
    """The job fails within ``timeout`` seconds; its error."""
    started = time.monotonic()
    with pytest.raises(RenderFailed) as info:
        job.wait(timeout=timeout)
    assert time.monotonic() - started < timeout
    return info.value


def serves_next_job(settings, tmp_path, name="next.mp4"):
    params = bar_params(4)
    BarCode().submit(tmp_path / name, params, fps=4, video_quality=10, settings=settings).wait(timeout=60)
    assert_video(tmp_path / name, serial_frames(BarCode(), params))


def test_a_poison_chunk_fails_the_job_after_bounded_deliveries(use_cluster, tmp_path):
    job = DiesAt(13).submit(tmp_path / "poison.mp4", bar_params(20), fps=10, num_workers=2,
                            preload_factor=2)  # chunks of 5 frames: 13 is in chunk 2 (frames 10-14)
    error = ends_failed(job)
    assert error.exc_type == "celery_animate.errors.WorkerLost"
    assert "chunk 2 (frames 10-14) was started 3 times and its worker process died each time" \
        in error.exc_message
    assert not (tmp_path / "poison.mp4").exists()
    wait_until(lambda: list(tmp_path.iterdir()) == [], message="no temporary file left")
    serves_next_job(use_cluster.settings, tmp_path)


def test_a_hard_time_limit_fails_the_job(use_cluster, extra_workers, tmp_path):
    extra_workers("render-limited", "limited", args=("--time-limit=2",))
    settings = replace(use_cluster.settings, render_queue="render-limited")
    job = Slow(1.0).submit(tmp_path / "slow.mp4", bar_params(8), fps=4, num_workers=1,
                           preload_factor=1, settings=settings)  # one chunk of 8 s
    error = ends_failed(job)
    assert error.exc_type == "celery_animate.errors.TaskKilled"
    assert "killed by a time limit (--time-limit) or revoke(terminate=True)" in error.exc_message
    assert not (tmp_path / "slow.mp4").exists()
    serves_next_job(settings, tmp_path)


def test_a_soft_time_limit_fails_the_job_saying_so(use_cluster, extra_workers, tmp_path):
    extra_workers("render-soft", "soft", args=("--soft-time-limit=2",))
    settings = replace(use_cluster.settings, render_queue="render-soft")
    job = Slow(1.0).submit(tmp_path / "soft.mp4", bar_params(8), fps=4, num_workers=1,
                           preload_factor=1, settings=settings)
    error = ends_failed(job)
    assert "chunk 0 ran past the render worker's soft time limit" in error.exc_message
    serves_next_job(settings, tmp_path)


def test_revoke_terminate_fails_the_job(use_cluster, tmp_path):
    job = Slow(0.5).submit(tmp_path / "revoked.mp4", bar_params(16), fps=4, num_workers=1,
                           preload_factor=1)  # one chunk of 8 s
    app = app_for(use_cluster.settings)

    def running_chunks():
        active = app.control.inspect(timeout=1).active() or {}
        return [task["id"] for tasks in active.values() for task in tasks
                if task["name"] == "celery_animate.render_chunk" and job.id in str(task["args"])]

    wait_until(lambda: running_chunks(), timeout=30, message="the chunk to run")
    for task_id in running_chunks():
        app.control.revoke(task_id, terminate=True, signal="SIGKILL")
    error = ends_failed(job)
    assert error.exc_type == "celery_animate.errors.TaskKilled"
    assert not (tmp_path / "revoked.mp4").exists()
    serves_next_job(use_cluster.settings, tmp_path)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs, or a skip where mounting is not allowed (tests run as root in CI)."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs: {proc.stderr}")
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


# 60 frames are one encode pass; 130 are three segments, encoded on the encoder's own disk and
# joined beside the output.
@pytest.mark.parametrize("n_frames", [60, 130])
def test_a_full_disk_fails_the_job_by_name_and_keeps_the_old_video(use_cluster, small_disk, tmp_path,
                                                                  n_frames):
    out = small_disk / "video.mp4"
    old = bar_params(3)
    BarCode().submit(out, old, fps=3, video_quality=10).wait(timeout=60)
    good = out.read_bytes()
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # leave about 100 kB free
        f.write(b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize - 100_000))
    job = HD().submit(out, bar_params(n_frames), fps=30, video_quality=1)  # several MB of video
    error = ends_failed(job)
    assert error.exc_type == "celery_animate.errors.DiskFull", error
    assert f"no space left on the device of {small_disk}" in error.exc_message
    assert out.read_bytes() == good  # the earlier video is untouched
    wait_until(lambda: sorted(p.name for p in small_disk.iterdir()) == ["filler", "video.mp4"],
               message="no temporary file left", show=lambda: list(small_disk.iterdir()))
    assert issubclass(DiskFull, OSError)
    serves_next_job(use_cluster.settings, tmp_path)


def test_cancel_after_the_last_frame_rendered_means_no_video(use_cluster, tmp_path):
    out = tmp_path / "cancelled.mp4"
    BarCode().submit(out, bar_params(3), fps=3, video_quality=10).wait(timeout=60)
    good = out.read_bytes()
    # ffmpeg's realtime filter paces the encode at 10 frames/s: 4 s for 40 frames.
    job = BarCode(tag="late-cancel").submit(out, bar_params(40), fps=10, video_quality=10,
                                            video_extra_ffmpeg_params=["-vf", "realtime"])
    wait_until(lambda: job.progress().rendered == 40 and job.progress().encoded >= 8,
               message="rendering to finish while encoding goes on", show=job.progress)
    assert job.progress().state == "encoding" and job.cancel() is True
    with pytest.raises(JobCancelled):
        job.wait(timeout=30)
    time.sleep(5)  # longer than the encode had left
    assert out.read_bytes() == good
    wait_until(lambda: sorted(p.name for p in tmp_path.iterdir()) == ["cancelled.mp4"],
               message="no temporary file left", show=lambda: list(tmp_path.iterdir()))
    assert job.progress().state == "cancelled"
    serves_next_job(use_cluster.settings, tmp_path)


def test_a_lost_job_record_ends_the_job_and_leaks_nothing(use_cluster, tmp_path, redis_client):
    job = Slow(0.2).submit(tmp_path / "lost.mp4", bar_params(20), fps=5, num_workers=2,
                           preload_factor=2)
    wait_until(lambda: job.progress().rendered >= 2, message="rendering to start")
    redis_client.delete(f"celery_animate:job:{job.id}")  # evicted, or lost in a restart
    with pytest.raises(JobNotFound, match="Redis lost it"):
        job.wait(timeout=30)
    time.sleep(6)  # the running chunks report progress, the encoder polls: nothing comes back
    assert not redis_client.exists(f"celery_animate:job:{job.id}")
    wait_until(lambda: not redis_client.keys(f"celery_animate:frame:{job.id}:*"), timeout=60,
               message="the frames of the lost job to be removed")
    assert not (tmp_path / "lost.mp4").exists()
    # What it staged outlives it only until its TTL, like everything a job creates.
    leftovers = redis_client.keys(f"celery_animate:*{job.id}*")
    assert all(redis_client.ttl(key) > 0 for key in leftovers), leftovers
    if leftovers:  # later tests expect a tidy Redis
        redis_client.delete(*leftovers)
    serves_next_job(use_cluster.settings, tmp_path)


def test_a_slow_encode_keeps_its_lease_and_one_encoder_publishes(use_cluster, extra_workers, tmp_path):
    """Twelve seconds between progress reports (the old lock lived 10 s), on a -c 2 encode worker
    where the chord's callback waits beside the streaming encoder."""
    extra_workers("gpu-two", "encode-two", concurrency=2)
    settings = replace(use_cluster.settings, encode_queue="gpu-two")
    params, out = bar_params(10), tmp_path / "out"
    out.mkdir()
    job = BarCode().submit(out / "slow.mp4", params, fps=0.75, video_quality=10, settings=settings,
                           video_extra_ffmpeg_params=["-vf", "realtime"])
    result = job.wait(timeout=120)
    assert result.n_frames == 10 and result.encode_seconds > 12
    assert_video(out / "slow.mp4", serial_frames(BarCode(), params))
    assert sorted(p.name for p in out.iterdir()) == ["slow.mp4"]


def test_hd_jobs_on_a_two_process_encode_worker(use_cluster, extra_workers, tmp_path):
    """The README's `-Q gpu -c 2` encode worker: streaming encoder and chord callback side by side."""
    extra_workers("gpu-pair", "encode-pair", concurrency=2)
    settings = replace(use_cluster.settings, encode_queue="gpu-pair")
    params, out = bar_params(40), tmp_path / "out"
    out.mkdir()
    expected = serial_frames(HD(), params)
    for run in range(4):
        HD().submit(out / f"hd-{run}.mp4", params, fps=30, video_quality=10,
                    settings=settings).wait(timeout=120)
        assert_video(out / f"hd-{run}.mp4", expected, size=(1280, 720))
    assert sorted(p.name for p in out.iterdir()) == [f"hd-{run}.mp4" for run in range(4)]


def test_the_watchdog_fails_a_job_whose_tasks_vanished(use_cluster, extra_workers, tmp_path):
    extra_workers("render-void", "watchful", CELERY_ANIMATE_STALL_TIMEOUT="3")
    settings = replace(use_cluster.settings, render_queue="render-void", encode_queue="gpu-void")
    job = BarCode().submit(tmp_path / "void.mp4", bar_params(4), fps=4, settings=settings)
    wait_until(lambda: job.progress().state == "encoding", message="the frames to be rendered")
    # Nobody consumes gpu-void: the encode never starts, the job must still end.
    error = ends_failed(job, timeout=60)
    assert error.exc_type == "celery_animate.errors.JobStalled"
    assert "no progress while encoding for" in error.exc_message
    assert not (tmp_path / "void.mp4").exists()


def test_redis_restarted_mid_job(make_cluster, tmp_path):
    """A Redis without persistence restarts: the job's record and queues are gone. The client
    is told so, nothing is recreated, and the same workers serve the next job."""
    cluster = make_cluster()  # a Redis of its own to restart
    settings = cluster.settings
    job = Slow(0.2).submit(tmp_path / "lost.mp4", bar_params(20), fps=5, settings=settings)
    wait_until(lambda: job.progress().rendered >= 2, message="rendering to start")
    cluster.server.restart()
    with pytest.raises(JobNotFound, match="Redis lost it"):
        job.wait(timeout=60)
    time.sleep(5)  # chunks that were running retry, report, poll: nothing comes back
    client = cluster.redis()
    assert client.keys(f"celery_animate:*{job.id}*") == []
    assert not (tmp_path / "lost.mp4").exists()
    serves_next_job(settings, tmp_path)  # the workers reconnected by themselves


def test_a_full_frame_store_fails_the_job_by_name_and_leaves_nothing(small_disk, tmp_path):
    # The embedded cluster's frame store is a folder in shared memory; here a 3 MiB tmpfs, which
    # a field of noise (incompressible, about 0.7 MB a frame) fills within a few frames.
    with EmbeddedCluster(2, Settings(frame_store=small_disk.as_uri())) as cluster:
        job = NoisyHD().submit(tmp_path / "noise.mp4", bar_params(24), fps=8,
                               settings=cluster.settings)
        error = ends_failed(job)
        assert error.exc_type == "celery_animate.errors.FrameStoreFull", error
        assert f"the frame store {small_disk} is full" in error.exc_message
        wait_until(lambda: list(small_disk.iterdir()) == [], message="no frame left",
                   show=lambda: list(small_disk.rglob("*")))
        assert not (tmp_path / "noise.mp4").exists()
        serves_next_job(cluster.settings, tmp_path)



def test_a_full_frame_store_spills_into_its_second_folder_and_the_job_renders(small_disk, tmp_path):
    # The embedded default's case: shared memory (here the 3 MiB tmpfs) fills, the rest of the
    # frames go to a folder on disk, and the video has every frame. A job of one segment keeps
    # all its frames until its video is kept, and the tmpfs holds four of these at most: the
    # other twenty went through the spill folder.
    spill = tmp_path / "spill"
    spill.mkdir()
    params = bar_params(24)
    settings = Settings(frame_store=small_disk.as_uri(), frame_spill=spill.as_uri())
    with EmbeddedCluster(2, settings) as cluster:
        # Near-lossless, so the noise's pixels can be compared.
        NoisyHD().submit(tmp_path / "noise.mp4", params, fps=8, video_quality=1,
                         settings=cluster.settings).wait(timeout=180)
        wait_until(lambda: list(small_disk.iterdir()) == [] and list(spill.iterdir()) == [],
                   message="no frame left in either folder",
                   show=lambda: list(small_disk.rglob("*")) + list(spill.rglob("*")))
    assert_video(tmp_path / "noise.mp4", serial_frames(NoisyHD(), params), size=(1280, 720),
                 brightness_only=True)
