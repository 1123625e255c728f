"""``num_workers=1``: render and encode in the calling process, as parallel_animate does."""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from celery_animate import wire
from celery_animate.client.progress import progress_bar
from celery_animate.config import Settings
from celery_animate.encode.encoder import encode_frames, publish_bytes
from celery_animate.encode.more_outputs import stills_only_result
from celery_animate.encode.pvio_adapter import require_pvio
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.errors import InvalidArgument
from celery_animate.formats import STILLS, check_stills_only, format_of, still_name
from celery_animate.frames import pack_frame, unpack_frame
from celery_animate.ids import new_job_id
from celery_animate.job.submission import still_positions
from celery_animate.options import RenderOptions, RenderResult, animation_index, video_position
from celery_animate.params import EMPTY_MESSAGE, FrameIndexTracker, check_param_by_frame, resolved_frames
from celery_animate.paths import output_list, output_path, resolve_output
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.frame_loop import PreparedFigure, render_frames
from celery_animate.render.grab import apply_savefig_params, still_png
from celery_animate.render.loading import pack_attrs
from celery_animate.stores import DirectoryFrameStore


def render_serial(animator: AnimatorBase, output_file: str | os.PathLike[str] | list,
                  param_by_frame: Iterable[Any], n_frames: int | None, options: RenderOptions,
                  settings: Settings, disable_progress: bool,
                  stills: Iterable[int] = ()) -> RenderResult:
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
    names = [resolve_output(o, settings) for o in output_list(output_file)]
    output, *extras = [output_path(name, settings) for name in names]
    stills = list(stills)
    check_stills_only(names, stills)
    if total is not None:  # a bad frame number fails before anything is drawn
        still_positions(stills, options, total)
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
        positions = still_positions(stills, options, count)
        results = []
        for target in (output, *extras) if format_of(output) != STILLS else ():
            desc = "Encoding video" if target is output else f"Encoding {target.name}"
            with progress_bar(total=count, desc=desc, unit="frame",
                              disable=disable_progress) as bar:
                frames = StoredFrames(store, job_id, count, max_pixels=settings.max_frame_pixels)
                results.append(encode_frames(frames, target, options, bar.update, job_id))
        apply_savefig_params(prepared.figure, options.savefig_params)
        width, height = prepared.figure.canvas.get_width_height(physical=True)
        kept, started = [], time.monotonic()
        for position, payload in zip(positions, store.get_many(job_id, positions), strict=True):
            png = still_png(unpack_frame(payload, settings.max_frame_pixels), width, height)
            name = still_name(names[0], animation_index(options, position))
            kept.append((publish_bytes(png, output_path(name, settings), job_id, 0, lambda: None),
                         png))
        if not results:  # stills only
            return stills_only_result(kept, options.fps, started)
        return replace(results[0], outputs=[r.output for r in results],
                       stills=[location for location, _ in kept])


def _packable(frames: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """Pass ``(frame_idx, params)`` through, raising as a cluster would for params it cannot carry."""
    for frame_idx, params in frames:
        wire.check_packable(params, f"params of frame {frame_idx}")
        yield frame_idx, params
