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
from animators import BarCode, bar_params, decode_index
from helpers import assert_video, decode, serial_frames
from workers import SPLIT, private_cluster

from celery_animate.encode.join import packets

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
