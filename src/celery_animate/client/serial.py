"""``num_workers=1``: render and encode in the calling process, as parallel_animate does."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from celery_animate import wire
from celery_animate.client.progress import progress_bar
from celery_animate.config import Settings
from celery_animate.encode.encoder import encode_frames
from celery_animate.encode.pvio_adapter import require_pvio
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.errors import InvalidArgument
from celery_animate.frames import pack_frame
from celery_animate.ids import new_job_id
from celery_animate.options import RenderOptions, RenderResult, animation_index, video_position
from celery_animate.params import EMPTY_MESSAGE, FrameIndexTracker, check_param_by_frame, resolved_frames
from celery_animate.paths import output_path, resolve_output
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.frame_loop import PreparedFigure, render_frames
from celery_animate.render.loading import pack_attrs
from celery_animate.stores import DirectoryFrameStore


def render_serial(animator: AnimatorBase, output_file: str | os.PathLike[str],
                  param_by_frame: Iterable[Any], n_frames: int | None, options: RenderOptions,
                  settings: Settings, disable_progress: bool) -> RenderResult:
    """Render every frame here into a temporary frame directory, then encode them.

    Frames go through the same packing and the same encoder as on a cluster,
    so the video is the same; memory stays at one frame whatever the count.

    The checks are a cluster's, though nothing is sent: the animator's attributes must be
    packable (:class:`UnpackableError` naming the attribute), and so must each frame's params
    (naming the frame and the path inside its params); frame indices must be ``0 .. n-1`` once
    each, at least one and at least ``n_frames``. A list or a tuple is checked whole before
    ``setup()`` runs, as ``enqueue`` checks it before sending anything. A generator can be read
    only once: each frame is checked as it is read, before it is rendered, and what is only
    known at its end (a missing index, fewer frames than ``n_frames``) stops the job before
    anything is encoded. Then :class:`ConfigurationError` if the encoder is not installed here,
    before ``setup()``.
    """
    total = check_param_by_frame(param_by_frame, n_frames)
    pack_attrs(animator)  # a worker could not rebuild it: refuse it with one as with many
    output = output_path(resolve_output(output_file, settings), settings)
    tracker = FrameIndexTracker()
    if isinstance(param_by_frame, Sequence):  # its indices were checked whole just above
        for _ in _packable(resolved_frames(param_by_frame, n_frames)):
            pass
        frames = tracker.track(resolved_frames(param_by_frame, n_frames))
    else:
        frames = _packable(tracker.track(resolved_frames(param_by_frame, n_frames)))
    first = next(frames, None)  # read before setup(): an empty generator fails at once
    if first is None:
        raise InvalidArgument(EMPTY_MESSAGE)
    require_pvio()  # this process encodes: say what to install before rendering anything
    job_id = new_job_id()
    with tempfile.TemporaryDirectory(prefix="celery-animate-frames-") as tmp:
        store = DirectoryFrameStore(tmp, ttl=0)
        prepared = PreparedFigure.prepare(animator)
        frames = progress_bar(iterable=itertools.chain([first], frames), total=total,
                              desc="Rendering frames", unit="frame", disable=disable_progress)
        animation = ((animation_index(options, position), params) for position, params in frames)
        for frame_idx, rgb in render_frames(prepared, animation, options.savefig_params,
                                            options.reuse_figure_object,
                                            options.plotting_log_interval, settings.max_frame_pixels,
                                            options.blit and settings.auto_blit):
            store.put(job_id, video_position(options, frame_idx), pack_frame(rgb))
        count = tracker.finish(n_frames)
        with progress_bar(total=count, desc="Encoding video", unit="frame",
                          disable=disable_progress) as bar:
            frames = StoredFrames(store, job_id, count, max_pixels=settings.max_frame_pixels)
            return encode_frames(frames, output, options, bar.update, job_id)


def _packable(frames: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """Pass ``(frame_idx, params)`` through, raising as a cluster would for params it cannot carry."""
    for frame_idx, params in frames:
        wire.check_packable(params, f"params of frame {frame_idx}")
        yield frame_idx, params
