"""Concurrent jobs share the render workers: a short job never waits for a long one to finish."""

import pytest
from animators import BarCode, Slow, bar_params
from helpers import assert_video, serial_frames, wait_until

from celery_animate import InvalidArgument
from celery_animate.job.messages import chunk_priority

pytestmark = pytest.mark.cluster


def test_a_short_job_goes_ahead_of_a_long_ones_later_chunks(use_cluster, tmp_path):
    long = Slow(0.1).submit(tmp_path / "long.mp4", bar_params(240), fps=24, num_workers=2,
                            preload_factor=24, priority=3)  # 48 chunks of 5 frames, 24 s of work
    wait_until(lambda: long.progress().rendered >= 5, message="the long job to start")
    params = bar_params(6)
    short = BarCode(tag="short").submit(tmp_path / "short.mp4", params, fps=6, video_quality=10,
                                        priority=3)
    wait_until(lambda: short.progress().rendered == 6, message="the short job to be rendered")
    progress = long.progress()
    assert progress.state == "rendering" and progress.rendered < 200, progress
    long.cancel()  # frees the one encode process, which the long job's encoder holds
    short.wait(timeout=120)
    assert_video(tmp_path / "short.mp4", serial_frames(BarCode(), params))


def test_priorities_are_checked_and_step_down_per_wave(use_cluster, tmp_path):
    assert [chunk_priority(0, k, wave=2) for k in range(6)] == [0, 0, 1, 1, 2, 2]
    assert chunk_priority(7, 40, wave=2) == 9
    for bad in (-1, 10, 2.5):
        with pytest.raises(InvalidArgument, match="priority"):
            BarCode().submit(tmp_path / "x.mp4", [1], fps=1, priority=bad)
