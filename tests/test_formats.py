"""Formats besides H.264 MP4, chosen by the output's extension, on real workers.

A split cluster whose MP4s would be encoded in segments of 16 frames renders
40 frames of the bar-code figure to a GIF, a WebM and a zip of PNGs: each
decodes to exactly the job's frames, in order, within the format's measured
tolerance of the serial render, and is written whole (no segment), atomically.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import redis
from animators import BarCode, bar_params, decode_index
from helpers import assert_video, decode, serial_frames, wait_until
from workers import SPLIT, private_cluster

from celery_animate.encode.join import packets
from celery_animate.errors import InvalidArgument

pytestmark = pytest.mark.cluster

#: Mean absolute difference (0-255) allowed per frame. The bar-code figure has a handful of
#: colours plus anti-aliased edges: its GIF (one 256-colour palette, dithered) measured 0.001
#: at worst and its VP9 WebM (crf 32) 0.93; PNG is lossless.
TOLERANCE = {".gif": 0.5, ".webm": 2.0, ".zip": 0.0}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    env = {"CELERY_ANIMATE_SEGMENT_FRAMES": "16", "CELERY_ANIMATE_WINDOW_FRAMES": "32"}
    with private_cluster(tmp_path_factory.mktemp("formats"), SPLIT, env=env) as cluster:
        yield cluster


@pytest.mark.parametrize("suffix", [".gif", ".webm", ".zip"])
def test_each_format_holds_every_frame_in_order(cluster, tmp_path, suffix):
    params = bar_params(40)
    output = tmp_path / f"bars{suffix}"
    job = BarCode(tag=f"format{suffix}").submit(output, params, fps=10, settings=cluster.settings)
    result = job.wait(timeout=120)
    assert result.n_frames == 40 and result.output == str(output)
    assert result.encoder == {".gif": "gif", ".webm": "libvpx-vp9", ".zip": "png"}[suffix]
    expected = serial_frames(BarCode(), params)
    frames = assert_video(output, expected, max_error=TOLERANCE[suffix] + 1e-9)
    errors = [float(np.abs(got.astype(np.int16) - want.astype(np.int16)).mean())
              for got, want in zip(frames, expected, strict=True)]
    print(f"{suffix}: mean abs error per frame, worst {max(errors):.3f}")
    assert [p.name for p in tmp_path.iterdir()] == [output.name]  # no partial, no segment
    if suffix == ".zip":
        with zipfile.ZipFile(output) as archive:
            assert archive.namelist() == [f"{k:05d}.png" for k in range(40)]


def test_a_gif_says_the_frame_rate_its_delays_allow(cluster, tmp_path):
    output = tmp_path / "fast.gif"
    result = BarCode(tag="gif-rate").submit(output, bar_params(12), fps=30,
                                            settings=cluster.settings).wait(timeout=120)
    assert result.fps == pytest.approx(100 / 3)  # 3 hundredths of a second per frame
    found = packets(output)
    assert len(found.pts) == 12
    assert len(set(found.durations)) == 1  # every frame shown for the same time
    assert len(decode(output)) == 12


@pytest.mark.parametrize("frames", [range(3, 40, 4), slice(None, None, 10), slice(30, None)])
def test_a_partial_render_draws_only_its_frames_each_with_its_own_index(cluster, tmp_path, frames):
    params = bar_params(40)
    chosen = frames if isinstance(frames, range) else range(40)[frames]
    output = tmp_path / "part.mp4"
    result = BarCode(tag="partial").submit(output, params, fps=10, video_quality=10, frames=frames,
                                           settings=cluster.settings).wait(timeout=120)
    assert result.n_frames == len(chosen)
    # The bar code each frame shows is the index update() got: the animation's own.
    everything = serial_frames(BarCode(), params)
    got = decode(output)
    assert [decode_index(frame) for frame in got] == list(chosen)
    for have, index in zip(got, chosen, strict=True):
        assert np.abs(have.astype(np.int16) - everything[index].astype(np.int16)).mean() < 4.0


def test_a_partial_render_in_this_process_is_the_same(tmp_path):
    params = bar_params(20)
    result = BarCode().make_video(tmp_path / "p.gif", params, fps=10, num_workers=1,
                                  frames=range(1, 20, 6), disable_progress_bar=True)
    assert result.n_frames == 4
    assert [decode_index(frame) for frame in decode(tmp_path / "p.gif")] == [1, 7, 13, 19]


@pytest.mark.parametrize(("frames", "match"), [(range(50, 60), "selects none"),
                                               (slice(None, None, -1), "forward"),
                                               ([1, 2], "range or a slice")])
def test_a_partial_render_that_selects_nothing_is_refused(tmp_path, frames, match):
    with pytest.raises(ValueError, match=match):
        BarCode().make_video(tmp_path / "x.mp4", bar_params(10), fps=10, num_workers=1,
                             frames=frames, disable_progress_bar=True)
    with pytest.raises(ValueError, match="sequence"):
        BarCode().make_video(tmp_path / "x.mp4", iter(bar_params(10)), fps=10, num_workers=1,
                             frames=range(2), disable_progress_bar=True)


def assert_stills(paths: list[str], expected: list[np.ndarray], frames: list[int]) -> None:
    """Each still is exactly its frame of the serial render (PNG is lossless)."""
    from PIL import Image

    assert [p.rsplit("-", 1)[1] for p in paths] == [f"{k:05d}.png" for k in frames]
    for path, k in zip(paths, frames, strict=True):
        still = np.asarray(Image.open(path).convert("RGB"))
        assert still.shape == expected[k].shape and np.array_equal(still, expected[k])


def test_several_outputs_and_stills_come_from_one_render(cluster, tmp_path):
    params = bar_params(40)
    outputs = [tmp_path / "run.mp4", tmp_path / "run.gif", tmp_path / "run.zip"]
    job = BarCode(tag="many").submit(outputs, params, fps=10, settings=cluster.settings,
                                     stills=[0, 17, 39])
    result = job.wait(timeout=180)
    assert result.output == str(outputs[0]) and result.outputs == [str(o) for o in outputs]
    assert job.stats()["frames_drawn"] == 40  # every frame drawn once for all three
    expected = serial_frames(BarCode(), params)
    for output in outputs:
        assert_video(output, expected, max_error=TOLERANCE.get(output.suffix, 0.0) + 4.0)
    assert_stills(result.stills, expected, [0, 17, 39])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([o.name for o in outputs] + [f"run-{k:05d}.png" for k in (0, 17, 39)])
    # The job's record outlives it (its result), but not the full-size stills it carried.
    client = redis.Redis.from_url(cluster.settings.broker_url)
    wait_until(lambda: not [f for f in client.hkeys(f"celery_animate:job:{job.id}")
                            if f.startswith(b"still:")], 30, "the stills leave the record")


def test_a_segmented_job_keeps_its_stills_too(cluster, tmp_path):
    params = bar_params(40)  # segments of 16 frames: the stills come from the render tasks
    result = BarCode(tag="stills").submit(tmp_path / "seg.mp4", params, fps=10,
                                          settings=cluster.settings, stills=[3, 33]).wait(timeout=120)
    assert_stills(result.stills, serial_frames(BarCode(), params), [3, 33])


def test_several_outputs_and_stills_in_this_process(tmp_path):
    params = bar_params(12)
    outputs = [tmp_path / "one.mp4", tmp_path / "one.webm"]
    result = BarCode().make_video(outputs, params, fps=10, num_workers=1, stills=[5],
                                  disable_progress_bar=True)
    expected = serial_frames(BarCode(), params)
    assert result.outputs == [str(o) for o in outputs]
    for output in outputs:
        assert_video(output, expected, max_error=TOLERANCE.get(output.suffix, 0.0) + 4.0)
    assert_stills(result.stills, expected, [5])


def test_a_png_output_writes_the_stills_alone_from_only_the_frames_they_need(cluster, tmp_path):
    params = bar_params(40)
    job = BarCode(tag="alone").submit(tmp_path / "run.png", params, fps=10,
                                      settings=cluster.settings, stills=[39, 9, 24])
    result = job.wait(timeout=120)
    # From the first still to the last by their common step (15): frames 9, 24 and 39 only.
    assert job.stats()["frames_drawn"] == 3 and job.progress().total == 3
    assert_stills(result.stills, serial_frames(BarCode(), params), [39, 9, 24])
    assert (result.output, result.outputs, result.n_frames, result.encoder) == (
        result.stills[0], [], 3, "png")
    assert (result.width, result.height) == serial_frames(BarCode(), params[:1])[0].shape[1::-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run-{k:05d}.png" for k in (9, 24, 39)]
    (tmp_path / "one").mkdir()
    serial = BarCode().make_video(tmp_path / "one" / "s.png", params, fps=10, num_workers=1,
                                  stills=[2, 5], disable_progress_bar=True)
    assert_stills(serial.stills, serial_frames(BarCode(), params), [2, 5])
    assert (serial.outputs, serial.n_frames) == ([], 2)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["s-00002.png", "s-00005.png"]


@pytest.mark.parametrize("stills, outputs, match", [
    ([40], ["a.mp4"], "does not show"),
    ([3, 3], ["a.mp4"], "twice"),
    ([], ["a.mp4", "a.mp4"], "twice"),
    ([], [], "list of 1"),
    ([], ["a.png"], "names no frame"),
    ([1], ["a.mp4", "a.png"], "only output"),
])
def test_bad_stills_and_outputs_are_refused_before_anything_is_drawn(tmp_path, stills, outputs,
                                                                      match):
    with pytest.raises(InvalidArgument, match=match):
        BarCode().make_video([tmp_path / o for o in outputs], bar_params(40), fps=10,
                             num_workers=1, stills=stills, disable_progress_bar=True)
    assert list(tmp_path.iterdir()) == []
