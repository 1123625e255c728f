"""``num_workers=1``: render and encode in the calling process, as parallel_animate does."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm  # widgets in Jupyter, text in a terminal

from celery_animate.config import Settings
from celery_animate.encode.encoder import encode_frames
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.frames import pack_frame
from celery_animate.ids import new_job_id
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.params import FrameIndexTracker, check_n_frames, known_length, resolved_frames
from celery_animate.paths import output_path, resolve_output
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.frame_loop import PreparedFigure, render_frames
from celery_animate.stores import DirectoryFrameStore


def render_serial(animator: AnimatorBase, output_file: str | os.PathLike[str],
                  param_by_frame: Iterable[Any], n_frames: int | None, options: RenderOptions,
                  settings: Settings, disable_progress: bool) -> RenderResult:
    """Render every frame here into a temporary frame directory, then encode them.

    Frames go through the same packing and the same encoder as on a cluster,
    so the video is the same; memory stays at one frame whatever the count.
    """
    check_n_frames(n_frames)
    output = output_path(resolve_output(output_file, settings), settings)
    total = n_frames if n_frames is not None else known_length(param_by_frame)
    tracker = FrameIndexTracker()
    job_id = new_job_id()
    with tempfile.TemporaryDirectory(prefix="celery-animate-frames-") as tmp:
        store = DirectoryFrameStore(tmp, ttl=0)
        prepared = PreparedFigure.prepare(animator)
        frames = tqdm(tracker.track(resolved_frames(param_by_frame, n_frames)), total=total,
                      desc="Rendering frames", unit="frame", disable=disable_progress)
        for frame_idx, rgb in render_frames(prepared, frames, options.savefig_params,
                                            options.reuse_figure_object,
                                            options.plotting_log_interval, settings.max_frame_pixels,
                                            options.blit and settings.auto_blit):
            store.put(job_id, frame_idx, pack_frame(rgb))
        count = tracker.finish(n_frames)
        with tqdm(total=count, desc="Encoding video", unit="frame", disable=disable_progress) as bar:
            frames = StoredFrames(store, job_id, count, max_pixels=settings.max_frame_pixels)
            return encode_frames(frames, output, options, bar.update, job_id)
