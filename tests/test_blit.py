"""Blitting with animated_artists(): the same raw pixels as a full redraw, frame by frame."""

import numpy as np
import pytest
from animators import BarCode, BlittedBarCode, RestylesMidway, bar_params
from helpers import assert_video, serial_frames

from celery_animate.render.frame_loop import PreparedFigure, render_frames
from examples.wave import BlittedWaveAnimation, WaveAnimation, param_by_frame


def blitted(animator, params):
    prepared = PreparedFigure.prepare(animator)
    assert prepared.animated  # blitting is really on
    return [rgb for _, rgb in render_frames(prepared, enumerate(params))]


@pytest.mark.parametrize("animator, reference, params", [
    (BlittedWaveAnimation(), WaveAnimation(), param_by_frame(24)),
    (BlittedBarCode(), BarCode(), bar_params(12)),
])
def test_blitted_frames_equal_full_redraws(animator, reference, params):
    got, want = blitted(animator, params), serial_frames(reference, params)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"frame {i}: {np.count_nonzero(a != b)} values differ"


def test_background_is_redrawn_when_static_content_changes():
    params = bar_params(8)
    got = blitted(RestylesMidway(), params)
    reference = RestylesMidway()
    prepared = PreparedFigure(reference, reference.setup_figure())
    want = [rgb for _, rgb in render_frames(prepared, enumerate(params))]
    assert not np.array_equal(want[3], want[4])  # the change is visible
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs"


def test_bad_animated_artists_are_named():
    class Wrong(BarCode):
        def animated_artists(self):
            return ["not an artist"]

    with pytest.raises(TypeError, match=r"animated_artists\(\) must return artists"):
        PreparedFigure.prepare(Wrong())


@pytest.mark.cluster
def test_blitting_on_the_cluster(use_cluster, tmp_path):
    params = bar_params(30)
    BlittedBarCode().make_video(tmp_path / "blit.mp4", params, fps=10, num_workers=2,
                                video_quality=10, disable_progress_bar=True)
    assert_video(tmp_path / "blit.mp4", serial_frames(BarCode(), params))
