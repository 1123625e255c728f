"""Every way a job ends leaves nothing of it behind, on a split cluster, within seconds.

Render and encode workers are separate nodes (as a deployment has them), with
each frame store. After the end, beside the output there is the video (done),
or what was there before (failed, cancelled: an older video is never
replaced); in Redis there is the job's record, with its expiry, and nothing
else of the job: no frame, no staged params, no segment mark, no lease; in
the scratch directory, nothing of the job. The checks run right after the end
and allow the few seconds an encode worker's watchdog takes to remove what
the process that ended the job could not reach.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until
from workers import WorkerSpec, private_cluster

from celery_animate import JobCancelled, RenderFailed, keys
from celery_animate.client.render_job import RenderJob

pytestmark = pytest.mark.cluster

SEGMENT = 16
#: Render and encode on separate nodes, two processes each.
SPLIT_NODES = (WorkerSpec("render", "render", 2), WorkerSpec("gpu", "encode", 2))
SMALL_SEGMENTS = {"CELERY_ANIMATE_SEGMENT_FRAMES": str(SEGMENT),
                  "CELERY_ANIMATE_WINDOW_FRAMES": str(3 * SEGMENT),
                  "CELERY_ANIMATE_VISIBILITY_TIMEOUT": "5"}
#: Paces each encode at this many frames a second (ffmpeg's realtime filter), so an encode is
#: still running when the test ends the job.
SLOW_ENCODE = ["-vf", "realtime"]
OLD_VIDEO = b"an older video that a failed or cancelled job must leave as it is"


@pytest.fixture(scope="module", params=["redis", "directory"])
def split(request, tmp_path_factory):
    with private_cluster(tmp_path_factory.mktemp(f"split-{request.param}"), SPLIT_NODES,
                         frame_store=request.param, env=SMALL_SEGMENTS) as cluster:
        yield cluster


def leftovers(cluster, job_id: str, out_dir: Path, expected: set[str]) -> list[str]:
    """What of the job is left that should not be: files in ``out_dir`` other than ``expected``
    names, keys of the job other than its record, a record without expiry, the job still listed
    as running or as waiting for its data to be removed, and its frames in the scratch store."""
    client = cluster.redis()
    found = [f"file {path.name}" for path in out_dir.iterdir() if path.name not in expected]
    record = keys.job(job_id)
    found += [f"key {key.decode()}" for key in client.scan_iter(f"*{job_id}*", count=1000)
              if key.decode() != record]
    if client.ttl(record) < 0:
        found.append(f"record {record} without expiry ({client.ttl(record)})")
    lists = (keys.ACTIVE_JOBS, keys.ENDING_JOBS, keys.ANNOUNCE_JOBS)
    found += [f"listed in {name}" for name in lists if client.zscore(name, job_id) is not None]
    found += [f"key {key.decode()} without expiry" for key in client.scan_iter(f"{keys.PREFIX}:*")
              if key.decode() not in (keys.JOB_INDEX, *lists) and client.ttl(key) < 0]
    if cluster.scratch is not None:
        found += [f"scratch {path}" for path in cluster.scratch.rglob("*") if job_id in str(path)]
    return found


def assert_nothing_left(cluster, job: RenderJob, out_dir: Path, expected: set[str]) -> None:
    wait_until(lambda: not leftovers(cluster, job.id, out_dir, expected), timeout=15,
               message=f"job {job.id} to leave nothing behind",
               show=lambda: leftovers(cluster, job.id, out_dir, expected))


def cancel_and_check(cluster, job: RenderJob, out_dir: Path, expected: set[str]) -> None:
    """Cancel the running job; it ends cancelled and leaves nothing (the old video stays)."""
    assert job.cancel() is True
    with pytest.raises(JobCancelled):
        job.wait(timeout=30)
    assert_nothing_left(cluster, job, out_dir, expected)
    if expected:
        assert (out_dir / "video.mp4").read_bytes() == OLD_VIDEO


def old_video(out_dir: Path) -> Path:
    path = out_dir / "video.mp4"
    path.write_bytes(OLD_VIDEO)
    return path


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """An output directory of the test's own (its tmp_path holds the workers' logs too)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_done_leaves_the_video_and_nothing_else(split, tmp_path):
    params = bar_params(4 * SEGMENT)
    job = BarCode(tag="done").submit(tmp_path / "video.mp4", params, fps=10, video_quality=10,
                                     settings=split.settings)
    job.wait(timeout=120)
    assert_video(tmp_path / "video.mp4", serial_frames(BarCode(), params))
    assert_nothing_left(split, job, tmp_path, {"video.mp4"})


@pytest.mark.parametrize("fail_at", [2, 4 * SEGMENT - 3], ids=["early", "late"])
def test_a_user_exception_in_a_chunk_fails_the_job_and_leaves_nothing(split, tmp_path, fail_at):
    # Late: the first segments are encoded into files beside the output by then.
    output = old_video(tmp_path)
    job = BarCode(tag="fails", fail_at=fail_at).submit(output, bar_params(4 * SEGMENT), fps=10,
                                                       settings=split.settings)
    with pytest.raises(RenderFailed, match=f"boom at frame {fail_at}"):
        job.wait(timeout=120)
    assert_nothing_left(split, job, tmp_path, {"video.mp4"})
    assert output.read_bytes() == OLD_VIDEO


def test_cancelled_before_rendering_leaves_nothing(split, tmp_path):
    # No worker consumes this render queue: the job's chunks never start.
    settings = replace(split.settings, render_queue="nobody")
    job = BarCode(tag="never").submit(tmp_path / "video.mp4", bar_params(4 * SEGMENT), fps=10,
                                      settings=settings)
    assert job.progress().state == "queued"
    cancel_and_check(split, job, tmp_path, set())


def test_cancelled_while_rendering_leaves_nothing(split, tmp_path):
    output = old_video(tmp_path)
    job = Slow(0.1).submit(output, bar_params(6 * SEGMENT), fps=10, settings=split.settings)
    wait_until(lambda: job.progress().rendered >= SEGMENT + 2, timeout=60,
               message="a segment's worth of frames to be rendered")
    assert job.progress().state == "rendering"
    cancel_and_check(split, job, tmp_path, {"video.mp4"})


def test_cancelled_after_rendering_while_the_video_is_encoded_leaves_nothing(split, tmp_path):
    # A job of one segment: its streaming encoder is still at work when the last frame is stored.
    old_video(tmp_path)
    job = BarCode(tag="rendered").submit(tmp_path / "video.mp4", bar_params(SEGMENT - 4), fps=3,
                                         video_extra_ffmpeg_params=SLOW_ENCODE,
                                         settings=split.settings)  # 4 s of encoding
    wait_until(lambda: job.progress().state == "encoding", timeout=60,
               message="every frame to be rendered")
    cancel_and_check(split, job, tmp_path, {"video.mp4"})


def test_cancelled_while_a_segment_is_encoded_leaves_nothing(split, tmp_path):
    output = old_video(tmp_path)
    client = split.redis()
    job = BarCode(tag="encoding").submit(output, bar_params(4 * SEGMENT), fps=4,
                                         video_extra_ffmpeg_params=SLOW_ENCODE,
                                         settings=split.settings)  # each segment encodes 4 s
    wait_until(lambda: client.exists(keys.lease(job.id, ":seg0")), timeout=60,
               message="segment 0 to be encoding")
    cancel_and_check(split, job, tmp_path, {"video.mp4"})


def test_the_stall_timeout_fails_a_stuck_job_and_leaves_nothing(make_cluster, out_dir):
    # One frame takes 6 s; the watchdog gives a rendering job 3 s without progress.
    cluster = make_cluster(SPLIT_NODES, env={**SMALL_SEGMENTS, "CELERY_ANIMATE_STALL_TIMEOUT": "3"})
    job = Slow(6.0).submit(out_dir / "video.mp4", bar_params(2), fps=10, settings=cluster.settings)
    with pytest.raises(RenderFailed, match="JobStalled"):
        job.wait(timeout=60)
    assert_nothing_left(cluster, job, out_dir, set())


def test_a_time_limit_fails_the_job_and_leaves_nothing(make_cluster, out_dir):
    cluster = make_cluster((WorkerSpec("render", "limited", 1, args=("--time-limit=2",)),
                            WorkerSpec("gpu", "encode", 1)), env=SMALL_SEGMENTS)
    job = Slow(1.0).submit(out_dir / "video.mp4", bar_params(8), fps=4, num_workers=1,
                           preload_factor=1, settings=cluster.settings)  # one chunk of 8 s
    with pytest.raises(RenderFailed, match="TaskKilled"):
        job.wait(timeout=60)
    assert_nothing_left(cluster, job, out_dir, set())


def test_recovery_giving_up_fails_the_job_and_an_encode_worker_removes_its_data(make_cluster,
                                                                                  out_dir):
    # No encode worker yet: the rendered job's encode messages wait on the gpu queue, and a
    # stranger (or `celery purge`) deletes them again and again. Recovery sends them again once
    # (CELERY_ANIMATE_MAX_DELIVERIES=1), then fails the job. The render node cannot see the
    # output directory, so the data waits for an encode worker, which removes it on arrival.
    env = {**SMALL_SEGMENTS, "CELERY_ANIMATE_VISIBILITY_TIMEOUT": "4",
           "CELERY_ANIMATE_MAX_DELIVERIES": "1"}
    cluster = make_cluster((WorkerSpec("render", "render", 2),), env=env)
    client = cluster.redis()
    job = BarCode(tag="lost").submit(out_dir / "video.mp4", bar_params(8), fps=10,
                                     settings=cluster.settings)
    stop = threading.Event()

    def purge_encode_queue() -> None:
        while not stop.wait(0.05):
            client.delete(*(key for key in client.scan_iter("gpu*") if client.type(key) == b"list"),
                          "nonexistent-key")

    purger = threading.Thread(target=purge_encode_queue, daemon=True)
    purger.start()
    try:
        with pytest.raises(RenderFailed, match="MessagesLost"):
            job.wait(timeout=90)
    finally:
        stop.set()
        purger.join()
    assert client.zscore(keys.ENDING_JOBS, job.id) is not None  # no one could remove it yet
    cluster.start(WorkerSpec("gpu", "encode", 1))
    assert_nothing_left(cluster, job, out_dir, set())
