"""Faults against real processes: killed workers, lost frames, failing user code, load."""

import os
import signal
import threading
from dataclasses import replace

import pytest
from animators import BarCode, CrashOnce, Grows, SetupFails, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until

from celery_animate import RenderFailed
from celery_animate.worker.app import app_for

pytestmark = pytest.mark.cluster


def frame_keys(redis_client, job_id):
    return redis_client.keys(f"celery_animate:frame:{job_id}:*")


def test_pool_process_killed_mid_chunk_is_redelivered(use_cluster, tmp_path):
    marker = tmp_path / "crashed"
    params = bar_params(40)
    (tmp_path / "out").mkdir()
    result = CrashOnce(str(marker), crash_at=13).make_video(
        tmp_path / "out" / "crash.mp4", params, fps=10, num_workers=2, preload_factor=4,
        video_quality=10, disable_progress_bar=True)
    assert marker.exists()  # the process really died mid-chunk
    assert result.n_frames == 40
    assert_video(tmp_path / "out" / "crash.mp4", serial_frames(BarCode(), params))


def test_whole_render_worker_killed_and_restarted(use_cluster, extra_workers, tmp_path):
    settings = replace(use_cluster.settings, render_queue="render-restart")
    fast_redelivery = {"CELERY_ANIMATE_VISIBILITY_TIMEOUT": "2"}
    first = extra_workers("render-restart", "doomed", concurrency=2, **fast_redelivery)
    params = bar_params(48)
    job = Slow(0.15).submit(tmp_path / "restart.mp4", params, fps=10, num_workers=2,
                            preload_factor=4, video_quality=10, settings=settings)
    wait_until(lambda: job.progress().rendered >= 8, message="rendering to start")
    os.killpg(first.pid, signal.SIGKILL)  # main process and pool, no goodbye
    rendered_at_kill = job.progress().rendered
    extra_workers("render-restart", "restarted", concurrency=2, **fast_redelivery)
    result = job.wait(timeout=120)
    assert rendered_at_kill < 48 and result.n_frames == 48
    assert_video(tmp_path / "restart.mp4", serial_frames(BarCode(), params))


def test_encode_worker_killed_mid_encode_is_retried(use_cluster, tmp_path):
    params = bar_params(30)
    # ffmpeg's realtime filter paces the encode at 10 frames/s, leaving 3 s to kill it.
    job = BarCode(tag="encode-kill").submit(
        tmp_path / "enc.mp4", params, fps=10, video_quality=10,
        video_extra_ffmpeg_params=["-vf", "realtime"])
    wait_until(lambda: job.progress().encoded >= 3, message="encoding to start")
    stats = app_for(use_cluster.settings).control.inspect(timeout=2).stats()
    (encode_pool,) = [s["pool"]["processes"] for host, s in stats.items() if host.startswith("encode@")]
    os.kill(encode_pool[0], signal.SIGKILL)
    assert not (tmp_path / "enc.mp4").exists()
    result = job.wait(timeout=120)
    assert result.n_frames == 30
    assert_video(tmp_path / "enc.mp4", serial_frames(BarCode(), params))
    assert [p.name for p in tmp_path.iterdir()] == ["enc.mp4"]  # the crashed attempt's temp file is gone


def test_lost_frames_fail_the_job_by_name(use_cluster, extra_workers, tmp_path, redis_client):
    settings = replace(use_cluster.settings, encode_queue="gpu-held")  # nobody encodes yet
    job = BarCode().submit(tmp_path / "lost.mp4", bar_params(12), fps=4, settings=settings)
    wait_until(lambda: job.progress().rendered == 12, message="all frames rendered")
    redis_client.delete(f"celery_animate:frame:{job.id}:3", f"celery_animate:frame:{job.id}:7",
                        f"celery_animate:frame:{job.id}:8")
    worker = extra_workers("gpu-held", "late-encoder", CELERY_ANIMATE_ALLOWED_ANIMATORS="")
    with pytest.raises(RenderFailed) as info:
        job.wait(timeout=60)
    assert info.value.exc_type == "celery_animate.errors.FramesMissing"
    assert "3 of 12 frames are missing from the frame store (indices 3, 7-8)" in info.value.exc_message
    assert not (tmp_path / "lost.mp4").exists()
    # The job's end is published before its data is deleted: wait() may return first.
    wait_until(lambda: not frame_keys(redis_client, job.id), message="frames to be deleted",
               show=lambda: frame_keys(redis_client, job.id))
    # A worker without an allowlist says so when it starts.
    assert "CELERY_ANIMATE_ALLOWED_ANIMATORS is not set" in worker.log.read_text()


@pytest.mark.parametrize("animator, exc_type, message", [
    (SetupFails(), "RuntimeError", "no data file for the background"),
    (Grows(), "celery_animate.errors.FigureSizeChanged", "frame 3 is 320x128 pixels but earlier"),
])
def test_failing_user_code_fails_fast_and_leaves_nothing(use_cluster, tmp_path, redis_client,
                                                         animator, exc_type, message):
    job = animator.submit(tmp_path / "x.mp4", bar_params(60), fps=10, preload_factor=6)
    with pytest.raises(RenderFailed) as info:
        job.wait(timeout=60)
    assert info.value.exc_type == exc_type and message in info.value.exc_message
    assert "Traceback" in info.value.remote_traceback
    assert job.progress().rendered < 60  # the remaining chunks were skipped
    wait_until(lambda: not frame_keys(redis_client, job.id), message="frames to be deleted")
    wait_until(lambda: not redis_client.keys(f"celery_animate:job:{job.id}:chunk:*"),
               message="staged params to be deleted")
    # The streaming encoder notices too and removes its temporary file.
    wait_until(lambda: list(tmp_path.iterdir()) == [], message="the encoder's temporary file to go",
               show=lambda: list(tmp_path.iterdir()))


def test_abandoned_frames_expire(use_cluster, extra_workers, tmp_path, redis_client):
    # Nobody encodes this job: its frames stay until the render workers' TTL (2 s here) ends them.
    extra_workers("render-ttl", "short-ttl", CELERY_ANIMATE_FRAME_TTL="2")
    settings = replace(use_cluster.settings, render_queue="render-ttl", encode_queue="gpu-never",
                       frame_ttl=2)
    job = BarCode().submit(tmp_path / "never.mp4", bar_params(6), fps=6, settings=settings)
    wait_until(lambda: job.progress().rendered == 6, message="frames rendered")
    assert frame_keys(redis_client, job.id)
    wait_until(lambda: not frame_keys(redis_client, job.id), timeout=10, message="frames to expire")
    assert not redis_client.keys(f"celery_animate:job:{job.id}:chunk:*")


def test_twenty_jobs_from_four_threads(use_cluster, tmp_path):
    jobs, errors = {}, []

    def client(thread_no):
        try:
            for k in range(5):
                n = 6 + (thread_no * 5 + k) % 5
                params = [{"y": p["y"] + 0.05 * (thread_no * 5 + k)} for p in bar_params(n)]
                job = BarCode().submit(tmp_path / f"load-{thread_no}-{k}.mp4", params, fps=6,
                                       video_quality=10)
                jobs[job.id] = (job, params, tmp_path / f"load-{thread_no}-{k}.mp4")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(jobs) == 20
    for job, params, path in jobs.values():
        assert job.wait(timeout=180).output == str(path)
        assert_video(path, serial_frames(BarCode(), params))
