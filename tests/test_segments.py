"""Segmented encoding and the render window, on real workers.

A long job is encoded in segments by two encode nodes at once and joined by
stream copy: the video must be frame-exact. The window must bound the frames
waiting in the store for a job whose encoder is its bottleneck, and a single
worker process that serves both queues must still finish such a job.
"""

import os
import signal
import threading
import time

import pytest
from animators import BarCode, Slow, bar_params
from helpers import assert_video, decode, serial_frames, wait_until
from workers import WorkerSpec

from celery_animate.encode.join import packets
from celery_animate.stores import open_frame_store
from celery_animate.worker.app import app_for

pytestmark = pytest.mark.cluster

SEGMENT, WINDOW = 16, 16
#: A render node with two processes and one encode node.
ONE_ENCODER = (WorkerSpec("render", "render-a", 2), WorkerSpec("gpu", "enc-1"))


def small_segments(**extra: str) -> dict[str, str]:
    return {"CELERY_ANIMATE_SEGMENT_FRAMES": str(SEGMENT), "CELERY_ANIMATE_WINDOW_FRAMES": str(WINDOW),
            "CELERY_ANIMATE_VISIBILITY_TIMEOUT": "5", **extra}


@pytest.fixture
def nodes(make_cluster):
    """``nodes(workers, store="redis", **env)`` -> a PrivateCluster of its own, with small segments
    and window and ``env`` in every worker's environment."""
    def start(workers, store: str = "redis", **env_extra: str):
        return make_cluster(workers, frame_store=store, env=small_segments(**env_extra))

    return start


def segment_runs(log) -> int:
    return sum("encode_segment" in line and "succeeded" in line
               for line in log.read_text(errors="replace").splitlines())


@pytest.mark.parametrize("store", ["redis", "directory"])
def test_segments_encoded_by_two_encode_nodes_join_into_the_exact_video(nodes, store, tmp_path):
    # A window of three segments lets segments wait for an encoder while another encodes, and
    # ffmpeg's realtime filter keeps each encode busy 1.6 s (16 frames at 10 fps): a node that
    # is encoding holds no other segment (prefetch 1, late ack), so the other node must take
    # the next one.
    cluster = nodes((*ONE_ENCODER, WorkerSpec("gpu", "enc-2")), store,
                    CELERY_ANIMATE_WINDOW_FRAMES=str(3 * SEGMENT))
    settings = cluster.settings
    params = bar_params(80)  # five segments of 16 frames
    job = BarCode(tag="seg").submit(tmp_path / "seg.mp4", params, fps=10, video_quality=10,
                                    video_extra_ffmpeg_params=["-vf", "realtime"], settings=settings)
    store_of_workers = open_frame_store(settings)  # the store the workers write, asked by its own API

    def stored_frames() -> list[int]:
        return sorted(set(range(80)) - set(store_of_workers.missing(job.id, 80)))

    def leftovers() -> list:
        found = [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4" and p.name != "seg.mp4"]
        found += stored_frames()
        if store == "directory":  # anything at all in the scratch directory: the job's folder, temp files
            found += list(cluster.scratch.iterdir())
        return found

    # The check below sees the job's frames while it runs, so it fails if any were left.
    wait_until(lambda: stored_frames() and (store == "redis" or list(cluster.scratch.iterdir())),
               message="frames in the workers' store while the job runs")
    result = job.wait(timeout=180)
    assert result.n_frames == 80
    assert_video(tmp_path / "seg.mp4", serial_frames(BarCode(), params))
    found = packets(tmp_path / "seg.mp4")
    assert sorted(found.pts) == [found.durations[0] * i for i in range(80)]  # no seams in time
    runs = [segment_runs(cluster.logs[name]) for name in ("enc-1", "enc-2")]
    assert sum(runs) >= 5 and min(runs) >= 1, runs  # both nodes encoded segments
    # Segment files and frames are gone (just after the job's end: wait() may return first);
    # only the video is left.
    wait_until(lambda: not leftovers(), message="segments and frames to be deleted", show=leftovers)
    assert (tmp_path / "seg.mp4").is_file()


def test_the_window_bounds_the_frames_waiting_for_a_slow_encoder(nodes, tmp_path):
    cluster = nodes(ONE_ENCODER)
    settings, client = cluster.settings, cluster.redis()
    params = bar_params(96)
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], len(client.keys("celery_animate:frame:*")))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # ffmpeg's realtime filter paces the encoder at 24 frames/s; rendering is far faster.
        job = BarCode(tag="window").submit(
            tmp_path / "window.mp4", params, fps=24, num_workers=2, preload_factor=12,
            video_extra_ffmpeg_params=["-vf", "realtime"], settings=settings)  # chunks of 2
        job.wait(timeout=180)
    finally:
        done.set()
        sampler.join()
    assert_video(tmp_path / "window.mp4", serial_frames(BarCode(), params))
    # At most the window past the segment being encoded, a chunk that started inside it, and
    # a finished segment's frames on their way out.
    assert 0 < peak[0] <= WINDOW + 4 + SEGMENT, peak[0]


def test_a_segment_being_encoded_gives_way_to_a_short_job_and_is_encoded_again(nodes, tmp_path):
    # One encode process; the long job's segments of 40 frames take 5 s each to encode (ffmpeg's
    # realtime filter at 8 fps), and it renders for 4 s, so its chord's callback comes after the
    # short job's encoder. A short job submitted while segment 0 encodes gets the process within
    # a few frames instead of after the segment; the segment is encoded again afterwards.
    cluster = nodes(ONE_ENCODER, CELERY_ANIMATE_SEGMENT_FRAMES="40", CELERY_ANIMATE_WINDOW_FRAMES="80")
    settings = cluster.settings
    long_params, short_params = bar_params(80), bar_params(6)
    long = Slow(0.1).submit(tmp_path / "long.mp4", long_params, fps=8, video_quality=10,
                            video_extra_ffmpeg_params=["-vf", "realtime"],
                            settings=settings)  # chunks of 5, priorities 0 to 7
    client = cluster.redis()
    wait_until(lambda: client.hexists(f"celery_animate:job:{long.id}", "encoding_by:seg0"),
               timeout=60, message="segment 0 to be encoding")
    short = BarCode(tag="short").submit(tmp_path / "short.mp4", short_params, fps=6,
                                        video_quality=10, settings=settings)
    short.wait(timeout=60)
    assert_video(tmp_path / "short.mp4", serial_frames(BarCode(), short_params))
    long.wait(timeout=120)
    assert_video(tmp_path / "long.mp4", serial_frames(BarCode(), long_params))
    found = packets(tmp_path / "long.mp4")
    assert sorted(found.pts) == [found.durations[0] * i for i in range(80)]
    log = cluster.logs["enc-1"].read_text(errors="replace").splitlines()

    def line_of(text: str) -> int:
        found = [i for i, line in enumerate(log) if text in line]
        assert found, f"no {text!r} in the encode worker's log"
        return found[0]

    yielded = line_of(f"segment 0 of job {long.id} gave its encode process")
    # The short video was written before segment 0's file: it did not wait for the segment.
    assert yielded < line_of("short.mp4: 6 frames") < line_of(f".long.{long.id[:12]}.s00000.mp4")


def test_one_process_serving_both_queues_finishes_a_segmented_job(nodes, tmp_path):
    settings = nodes([WorkerSpec("render,gpu", "solo")]).settings
    params = bar_params(48)
    job = BarCode(tag="solo").submit(tmp_path / "solo.mp4", params, fps=10, num_workers=1,
                                     preload_factor=6, settings=settings)  # chunks of 4
    job.wait(timeout=240)
    assert len(decode(tmp_path / "solo.mp4")) == 48
    assert_video(tmp_path / "solo.mp4", serial_frames(BarCode(), params))


def test_an_encoder_killed_mid_segment_costs_that_segment_not_the_video(nodes, tmp_path):
    settings = nodes(ONE_ENCODER).settings
    params = bar_params(48)
    # ffmpeg's realtime filter paces each segment's encode at 10 frames/s: 1.6 s per segment.
    job = BarCode(tag="seg-kill").submit(tmp_path / "kill.mp4", params, fps=10, video_quality=10,
                                         video_extra_ffmpeg_params=["-vf", "realtime"],
                                         settings=settings)
    wait_until(lambda: job.progress().encoded >= SEGMENT, message="a first segment encoded")
    stats = app_for(settings).control.inspect(timeout=2).stats()
    (pool,) = [s["pool"]["processes"] for host, s in stats.items() if host.startswith("enc-1@")]
    os.kill(pool[0], signal.SIGKILL)
    result = job.wait(timeout=180)
    assert result.n_frames == 48
    assert_video(tmp_path / "kill.mp4", serial_frames(BarCode(), params))
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4"] == ["kill.mp4"]


@pytest.mark.parametrize("store", ["redis", "directory"])
def test_encoders_share_segments_only_through_the_frame_store(nodes, store, tmp_path):
    # Each node gets a temporary directory of its own, as it would on a machine of its own; the
    # output directory is sampled all along: no segment (nor its partial file) may ever appear
    # there, so no encoder can rely on another's files. Two encode nodes each encode segments;
    # the one that joins reads the other's from the store alone.
    machines = {name: tmp_path / f"machine-{name}" for name in ("render-a", "enc-1", "enc-2")}
    for folder in machines.values():
        folder.mkdir()
    workers = [WorkerSpec("render" if name.startswith("render") else "gpu", name,
                          2 if name.startswith("render") else 1, env={"TMPDIR": str(folder)})
               for name, folder in machines.items()]
    cluster = nodes(workers, store, CELERY_ANIMATE_WINDOW_FRAMES=str(3 * SEGMENT))
    out = tmp_path / "out"
    out.mkdir()
    params = bar_params(80)  # five segments of 16 frames
    job = BarCode(tag="shared").submit(out / "seg.mp4", params, fps=10, video_quality=10,
                                       video_extra_ffmpeg_params=["-vf", "realtime"],
                                       settings=cluster.settings)
    store_of_workers = open_frame_store(cluster.settings)
    seen: set[str] = set()
    peak_stored, done = [0], threading.Event()

    def stored_segments() -> list[int]:
        return [k for k in range(5) if store_of_workers.get_segment(job.id, k) is not None]

    def sample() -> None:
        while not done.is_set():
            seen.update(path.name for path in out.iterdir())
            peak_stored[0] = max(peak_stored[0], len(stored_segments()))
            time.sleep(0.01)
        seen.update(path.name for path in out.iterdir())  # once more, after the end

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = job.wait(timeout=180)
    finally:
        done.set()
        sampler.join()
    assert result.n_frames == 80
    assert_video(out / "seg.mp4", serial_frames(BarCode(), params))
    found = packets(out / "seg.mp4")
    assert sorted(found.pts) == [found.durations[0] * i for i in range(80)]
    assert peak_stored[0] >= 1  # the sampler saw segments waiting in the store for the join
    segment_files = [name for name in seen if f".{job.id[:12]}.s" in name]
    assert segment_files == [] and "seg.mp4" in seen, sorted(seen)
    for name in ("enc-1", "enc-2"):
        wrote = [line for line in cluster.logs[name].read_text(errors="replace").splitlines()
                 if f".{job.id[:12]}.s" in line and "wrote" in line]
        assert wrote, f"{name} encoded no segment"  # both nodes encoded segments...
        assert all(str(machines[name]) in line for line in wrote), wrote  # ...each on its own disk

    def leftovers() -> list:
        found = stored_segments() + sorted(p.name for p in out.iterdir() if p.name != "seg.mp4")
        return found + [p for folder in machines.values() for p in folder.glob("celery-animate-*")]

    # The stored segments, and every encoder's temporary directory, are gone after the job ends.
    wait_until(lambda: not leftovers(), timeout=15, message="segments to be deleted", show=leftovers)
