"""Attacks from the broker and from job records, against real Redis and real prefork workers.

Each test does what a stranger who can write to the broker (or to the Redis
behind it) could do, checks the victim file or directory is untouched, that
the client refuses first where it can, that the job otherwise fails saying
what was refused, and that the workers go on serving the next job.
"""

import os
import threading
import time
from dataclasses import asdict, replace

import msgpack
import pytest
import zstandard
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until
from workers import start_worker, stop

from celery_animate import InvalidArgument, JobCancelled, OutputPathRefused, RenderFailed, RenderJob, wire
from celery_animate.connection import job_redis
from celery_animate.encode.segments import MAX_YIELDS
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.messages import send_chord
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.render.loading import pack_attrs
from celery_animate.stores import RedisFrameStore
from celery_animate.worker.app import (
    CLEANUP_TASK,
    ENCODE_TASK,
    PERIODIC_TASK,
    RENDER_TASK,
    SEGMENT_TASK,
    STREAM_TASK,
    app_for,
)

pytestmark = pytest.mark.cluster


def craft_job(settings, output, n_frames=4, options=None, chunk=None, spec_changes=None, send=True):
    """A job written straight into Redis, as a stranger would, bypassing every client check."""
    record = JobRecord(job_redis(settings), new_job_id())
    params = bar_params(n_frames)
    record.stage_chunk(0, chunk if chunk is not None else wire.packb(list(enumerate(params))), ttl=60)
    spec = JobSpec("animators:BarCode", pack_attrs(BarCode()), str(output), n_frames, 1,
                   RenderOptions(fps=n_frames))
    lifecycle.create(record, spec)
    fields = asdict(spec)
    fields["options"].update(options or {})
    fields.update(spec_changes or {})
    record.client.hset(record.key, "spec", wire.packb(fields))
    if send:
        send_chord(app_for(settings), settings, record.job_id, 1)
    return RenderJob(record.job_id, settings)


def serves_next_job(settings, tmp_path, name="next.mp4"):
    """The workers behind ``settings`` still render and encode a normal job correctly."""
    params = bar_params(4)
    job = BarCode().submit(tmp_path / name, params, fps=4, video_quality=10, settings=settings)
    job.wait(timeout=60)
    assert_video(tmp_path / name, serial_frames(BarCode(), params))


def failure(job, timeout=60) -> RenderFailed:
    with pytest.raises(RenderFailed) as info:
        job.wait(timeout=timeout)
    return info.value


def test_ffmpeg_arguments_cannot_write_or_read_elsewhere(use_cluster, tmp_path, redis_client):
    elsewhere = tmp_path / "elsewhere.mp4"
    injected = ["-map", "0:v", "-f", "mp4", str(elsewhere), "-map", "0:v"]
    before = set(redis_client.keys("celery_animate:job:*"))
    with pytest.raises(InvalidArgument, match="'-map' is not allowed"):
        BarCode().submit(tmp_path / "x.mp4", bar_params(4), fps=4, video_extra_ffmpeg_params=injected)
    assert set(redis_client.keys("celery_animate:job:*")) == before  # refused before enqueueing
    for args, refused in [(injected, "'-map' is not allowed"),
                          (["-vf", "drawtext=textfile=/etc/passwd"], "filter 'drawtext' is not allowed"),
                          (["-i", "/etc/passwd"], "'-i' is not allowed")]:
        job = craft_job(use_cluster.settings, tmp_path / "crafted.mp4",
                        options={"video_extra_ffmpeg_params": args})
        error = failure(job)
        assert refused in error.exc_message, error
    wait_until(lambda: not list(tmp_path.glob(".crafted*")), message="no temporary file left")
    assert not elsewhere.exists() and not (tmp_path / "crafted.mp4").exists()
    serves_next_job(use_cluster.settings, tmp_path)


def test_jobs_cannot_choose_where_workers_keep_frames(use_cluster, tmp_path, monkeypatch):
    victim_root = tmp_path / "victim-root"
    old = victim_root / "projects-2019"
    old.mkdir(parents=True)
    (old / "thesis.tex").write_text("years of work")
    past = time.time() - 10 * 24 * 3600
    os.utime(old, (past, past))
    # A client whose environment names a frame store: the workers ignore it.
    monkeypatch.setenv("CELERY_ANIMATE_FRAME_STORE", f"file://{victim_root}")
    params = bar_params(6)
    BarCode().make_video(tmp_path / "a.mp4", params, fps=6, num_workers=2, video_quality=10,
                         disable_progress_bar=True)
    assert_video(tmp_path / "a.mp4", serial_frames(BarCode(), params))
    # A crafted spec that names one is refused outright.
    error = failure(craft_job(use_cluster.settings, tmp_path / "b.mp4",
                              spec_changes={"frame_store": f"file://{victim_root}"}))
    assert "unknown fields ['frame_store']" in error.exc_message
    assert sorted(p.name for p in victim_root.iterdir()) == ["projects-2019"]
    assert (old / "thesis.tex").read_text() == "years of work"


def test_job_ids_that_are_paths_touch_nothing(use_cluster, extra_workers, tmp_path):
    scratch, victim = tmp_path / "scratch", tmp_path / "victim"
    scratch.mkdir()
    victim.mkdir()
    (victim / "data.txt").write_text("keep me")
    env = {"CELERY_ANIMATE_FRAME_STORE": f"file://{scratch}"}
    render = extra_workers("render-scratch", "render-scratch", **env)
    encode = extra_workers("gpu-scratch", "encode-scratch", **env)
    settings = replace(use_cluster.settings, render_queue="render-scratch", encode_queue="gpu-scratch")
    # The record of a real job, copied to the key the traversal id names.
    real = BarCode().submit(tmp_path / "real.mp4", bar_params(3), fps=3, settings=settings)
    real.wait(timeout=60)
    client = job_redis(settings)
    client.copy(f"celery_animate:job:{real.id}", "celery_animate:job:../victim")
    app = app_for(settings)
    for task, queue in [(CLEANUP_TASK, "render-scratch"), (RENDER_TASK, "render-scratch"),
                        (ENCODE_TASK, "gpu-scratch"), (STREAM_TASK, "gpu-scratch"),
                        (SEGMENT_TASK, "gpu-scratch")]:
        args = ("../victim", 0) if task in (RENDER_TASK, SEGMENT_TASK) else ("../victim",)
        app.send_task(task, args=args, queue=queue)
    logs = lambda: render.log.read_text() + encode.log.read_text()  # noqa: E731
    wait_until(lambda: logs().count("'../victim' is not a job id") >= 5, timeout=30,
               message="the workers to refuse the five messages", show=logs)
    assert (victim / "data.txt").read_text() == "keep me"
    with pytest.raises(InvalidArgument, match="is not a job id"):
        RenderJob("../victim", settings)
    serves_next_job(settings, tmp_path)


def test_forged_segments_fail_the_job_and_touch_nothing(use_cluster, tmp_path):
    app = app_for(use_cluster.settings)
    # A segment number the job does not have.
    job = craft_job(use_cluster.settings, tmp_path / "seg.mp4", n_frames=24,
                    spec_changes={"segment_frames": 8}, send=False)
    app.send_task(SEGMENT_TASK, args=(job.id, 99), queue="gpu")
    assert "segment 99 does not exist: the job has 3" in failure(job).exc_message
    # A segment size below the minimum, which would start an ffmpeg per frame.
    job = craft_job(use_cluster.settings, tmp_path / "seg.mp4", n_frames=24,
                    spec_changes={"segment_frames": 1})
    assert "segments of 1 frames are too short" in failure(job).exc_message
    # A codec in the record that is not the one this worker encodes with: the segments would
    # not join, so the job fails instead of making a video of mixed encoders.
    job = craft_job(use_cluster.settings, tmp_path / "seg.mp4", n_frames=24,
                    spec_changes={"segment_frames": 8}, send=False)
    job_redis(use_cluster.settings).hset(f"celery_animate:job:{job.id}", "codec", "h264_nvenc")
    send_chord(app, use_cluster.settings, job.id, 1, n_segments=3)
    assert "segments of one video must share an encoder" in failure(job).exc_message
    wait_until(lambda: not list(tmp_path.glob(".seg*")), message="no segment file left",
               show=lambda: list(tmp_path.iterdir()))
    assert not (tmp_path / "seg.mp4").exists()
    serves_next_job(use_cluster.settings, tmp_path)


def test_forged_encoders_in_the_queue_cannot_starve_a_long_job(use_cluster, extra_workers,
                                                               tmp_path):
    # A stranger keeps well-formed encoders of a made-up job waiting ahead of every segment (a
    # short job, to the segments): each segment gives way at most MAX_YIELDS times, then keeps
    # its process, and the job ends with the exact video.
    # Workers of their own: render tasks send segments to the encode queue of their settings.
    queues = {"CELERY_ANIMATE_ENCODE_QUEUE": "gpu-yield"}
    extra_workers("render-yield", "render-yield", concurrency=2, **queues)
    extra_workers("gpu-yield", "encode-yield", **queues)
    settings = replace(use_cluster.settings, render_queue="render-yield", encode_queue="gpu-yield",
                       segment_frames=40, window_frames=80)
    app = app_for(settings)
    forging = threading.Event()

    def forge() -> None:
        while not forging.is_set():
            app.send_task(STREAM_TASK, args=("f" * 32,), queue="gpu-yield", priority=0)
            time.sleep(0.2)

    # Two segments, each 5 s of encoding (realtime at 8 fps); 4 s of rendering, so segment
    # tasks, not the chord's callback (which never gives way), start the encoding.
    params = bar_params(80)
    job = Slow(0.1).submit(tmp_path / "long.mp4", params, fps=8, video_quality=10,
                           video_extra_ffmpeg_params=["-vf", "realtime"], settings=settings)
    forger = threading.Thread(target=forge)
    forger.start()
    try:
        job.wait(timeout=180)
    finally:
        forging.set()
        forger.join()
    assert_video(tmp_path / "long.mp4", serial_frames(BarCode(), params))
    log = (tmp_path / "encode-yield.log").read_text(errors="replace")
    yields = [log.count(f"segment {k} of job {job.id} gave its encode process") for k in (0, 1)]
    assert sum(yields) >= 1 and max(yields) <= MAX_YIELDS, yields
    serves_next_job(settings, tmp_path)


def test_a_forged_job_with_no_messages_gets_only_what_its_forger_staged_sent_again(
        use_cluster, extra_workers, tmp_path):
    # A stranger writes the record of a rendering job of 100,000 chunks whose messages are on no
    # queue, for the workers' recovery to send them all: it sends the render tasks of the two
    # chunks whose params the stranger staged, once, and the job ends (cancelled here; by the
    # stall timeout otherwise).
    env = {"CELERY_ANIMATE_RENDER_QUEUE": "render-lost", "CELERY_ANIMATE_ENCODE_QUEUE": "gpu-lost",
           "CELERY_ANIMATE_VISIBILITY_TIMEOUT": "2"}  # lost messages looked for after 5 s
    extra_workers("render-lost", "render-lost", **env)
    extra_workers("gpu-lost", "encode-lost", **env)
    settings = replace(use_cluster.settings, render_queue="render-lost", encode_queue="gpu-lost")
    record = JobRecord(job_redis(settings), new_job_id())
    params = list(enumerate(bar_params(4)))
    for k in (0, 1):
        record.stage_chunk(k, wire.packb(params[2 * k:2 * k + 2]), ttl=60)
    lifecycle.create(record, JobSpec("animators:BarCode", pack_attrs(BarCode()),
                                     str(tmp_path / "forged.mp4"), 100_000, 100_000,
                                     RenderOptions(fps=4)))
    lifecycle.begin_rendering(record)
    record.mark_sent("render-lost", "gpu-lost")

    def deliveries() -> set[str]:
        return {f.decode() for f in record.client.hkeys(record.key) if f.startswith(b"deliveries:")}

    wait_until(lambda: deliveries() == {"deliveries:0", "deliveries:1"}, timeout=60,
               message="the staged chunks rendered", show=deliveries)
    time.sleep(8)  # the next looks find nothing more to send
    assert deliveries() == {"deliveries:0", "deliveries:1"} and record.field("recoveries") == "1"
    job = RenderJob(record.job_id, settings)
    assert job.cancel()
    with pytest.raises(JobCancelled):
        job.wait(timeout=60)
    assert not (tmp_path / "forged.mp4").exists()
    serves_next_job(use_cluster.settings, tmp_path)


def test_periodic_prune_stays_in_its_directory(use_cluster, tmp_path):
    out, victim_dir = tmp_path / "out", tmp_path / "victim2"
    out.mkdir()
    victim_dir.mkdir()
    victim = victim_dir / "a-20260101T000000Z.mp4"
    victim.write_bytes(b"an old video")
    result = app_for(use_cluster.settings).send_task(
        PERIODIC_TASK, args=("animators:BarCode", str(out / "sub" / "dir"), 4),
        kwargs={"keep": 0, "prefix": "../../../victim2/a"}, queue="render")
    wait_until(result.ready, timeout=30, message="the periodic task to end")
    assert result.state == "FAILURE" and "plain file-name stem" in str(result.result)
    assert victim.read_bytes() == b"an old video"
    result.forget()


def test_deep_params_fail_the_job_not_the_worker(use_cluster, tmp_path):
    deep = 1
    for _ in range(250):
        deep = (deep,)
    with pytest.raises(InvalidArgument, match="params of frame 1 nest more than 32 levels deep"):
        BarCode().submit(tmp_path / "x.mp4", [{"y": 0}, deep], fps=1)
    # Staged by hand: 250 tuples deep in 1.2 kB, which used to crash the unpacking process.
    payload = msgpack.packb(1)
    for _ in range(250):
        payload = msgpack.packb(msgpack.ExtType(2, payload))
    chunk = msgpack.packb([[0, msgpack.ExtType(2, payload)]])
    error = failure(craft_job(use_cluster.settings, tmp_path / "deep.mp4", n_frames=1, chunk=chunk))
    assert "nests tuples deeper than" in error.exc_message
    serves_next_job(use_cluster.settings, tmp_path)


def test_frame_size_limits(use_cluster, extra_workers, tmp_path):
    with pytest.raises(InvalidArgument, match="dpi"):
        BarCode().submit(tmp_path / "x.mp4", bar_params(2), fps=2, savefig_params={"dpi": 10**6})
    extra_workers("render-small", "render-small", CELERY_ANIMATE_MAX_FRAME_PIXELS="10000")
    settings = replace(use_cluster.settings, render_queue="render-small")
    error = failure(BarCode().submit(tmp_path / "big.mp4", bar_params(2), fps=2, settings=settings))
    assert error.exc_type == "celery_animate.errors.FrameTooLarge"
    assert "frame 0 is 256x128 pixels, more than this worker's limit of 10000" in error.exc_message
    serves_next_job(use_cluster.settings, tmp_path)


def test_a_compression_bomb_in_the_frame_store_fails_the_job(use_cluster, tmp_path):
    settings = replace(use_cluster.settings, render_queue="render-nobody")  # frames planted instead
    job = craft_job(settings, tmp_path / "bomb.mp4", n_frames=1, send=False)
    bomb = zstandard.ZstdCompressor(level=1).compress(b"\x00" * 200_000_000)  # 200 MB in ~6 kB
    job_redis(settings).set(RedisFrameStore.key(job.id, 0), msgpack.packb([16, 16, "zstd", bomb]))
    lifecycle.report_chunk(JobRecord(job_redis(settings), job.id), 0, 1)
    app_for(settings).send_task(ENCODE_TASK, args=(job.id,), queue="gpu")
    error = failure(job)
    assert error.exc_type == "celery_animate.errors.InvalidFrame"
    assert "declares 200000000 bytes of pixels, not 768" in error.exc_message
    assert not (tmp_path / "bomb.mp4").exists()
    serves_next_job(use_cluster.settings, tmp_path)


def test_output_root_holds_against_symlinks(use_cluster, extra_workers, tmp_path, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "victim.mp4").write_bytes(b"the good old video")
    (root / "planted.mp4").symlink_to(outside / "victim.mp4")
    (root / "linked-dir").symlink_to(outside)
    env = {"CELERY_ANIMATE_OUTPUT_ROOT": str(root)}
    extra_workers("gpu-rooted", "encode-rooted", **env)
    settings = replace(use_cluster.settings, encode_queue="gpu-rooted", output_root=str(root))
    for name in ("planted.mp4", "linked-dir/new.mp4", "../outside/victim.mp4"):
        with pytest.raises(OutputPathRefused, match="outside CELERY_ANIMATE_OUTPUT_ROOT"):
            BarCode().submit(name, bar_params(2), fps=2, settings=settings)
        error = failure(craft_job(settings, name, n_frames=2))
        assert "outside CELERY_ANIMATE_OUTPUT_ROOT" in error.exc_message
    assert (outside / "victim.mp4").read_bytes() == b"the good old video"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.mp4"]
    params = bar_params(4)
    BarCode().submit("inside.mp4", params, fps=4, video_quality=10, settings=settings).wait(timeout=60)
    assert_video(root / "inside.mp4", serial_frames(BarCode(), params))


def test_remote_control_can_be_turned_off(use_cluster, extra_workers, tmp_path):
    extra_workers("render-quiet-probe", "answers")
    log = tmp_path / "deaf.log"
    # Started by hand: extra_workers waits for a ping reply, which this worker never sends.
    deaf = start_worker({**use_cluster.env, "CELERY_ANIMATE_REMOTE_CONTROL": "false"}, "render-quiet",
                        1, "deaf", log)
    try:
        wait_until(lambda: "ready" in log.read_text(), timeout=60, message="the worker to start",
                   show=log.read_text)
        replies = app_for(use_cluster.settings).control.ping(timeout=1) or []
        names = {host.split("@")[0] for reply in replies for host in reply}
        assert "answers" in names and "deaf" not in names
        # It still works: remote control is not how jobs reach it.
        settings = replace(use_cluster.settings, render_queue="render-quiet")
        serves_next_job(settings, tmp_path)
    finally:
        stop(deaf)


def test_a_forged_extra_output_or_still_outside_the_root_publishes_nothing(use_cluster,
                                                                         extra_workers, tmp_path):
    """A record asking for a second output (or a still) outside the workers' output root fails
    before the first output is written: no job publishes some outputs, then finds it may not."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    extra_workers("gpu-more", "encode-more", CELERY_ANIMATE_OUTPUT_ROOT=str(root))
    settings = replace(use_cluster.settings, encode_queue="gpu-more", output_root=str(root))
    forged = [{"extra_outputs": [str(outside / "extra.gif")]},
              {"extra_outputs": ["../outside/extra.gif"]}]
    for changes in forged:
        error = failure(craft_job(settings, "first.mp4", n_frames=2, spec_changes=changes))
        assert "outside CELERY_ANIMATE_OUTPUT_ROOT" in error.exc_message
    # A still is named beside the first output: it cannot leave the root the output is in.
    job = craft_job(settings, "stilled.mp4", n_frames=2, spec_changes={"stills": [1]})
    assert job.wait(timeout=60).stills == [str(root / "stilled-00001.png")]
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["stilled-00001.png", "stilled.mp4"]
