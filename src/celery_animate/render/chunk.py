"""Rendering one chunk of a job into the frame store: the work behind the render task.

A chunk is safe to render twice: frames are overwritten with identical bytes
and progress counts each chunk once. It stops (deleting the frames it wrote)
when its job ends meanwhile, and waits (raising :class:`TryLater`) while its
frames lie beyond the job's render window.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from celery_animate.cache import FrameCache
from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, TryLater, WorkerLost
from celery_animate.frames import pack_frame, unpack_frame
from celery_animate.job import kept_video, lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.job.window import pause
from celery_animate.options import animation_index, video_position
from celery_animate.params import describe_ranges
from celery_animate.render.cache_key import FrameKeys
from celery_animate.render.frame_loop import FigureCache, PreparedFigure, render_frames
from celery_animate.render.grab import apply_savefig_params, poster_png, still_png
from celery_animate.render.kept_lookup import video_is_kept
from celery_animate.states import QUEUED, TERMINAL_STATES
from celery_animate.stores import FrameStore

logger = logging.getLogger(__name__)

#: Seconds between a chunk's progress reports to the job, and between its shown progress.
REPORT_SECONDS, SHOW_SECONDS = 0.25, 2.0


@dataclass
class ChunkOutcome:
    """What a chunk did: the frames it stored (none when its job ended meanwhile), and the
    encode segments whose frames are now all stored (their encoders may start)."""

    frames: list[int]
    completed_segments: list[int]
    ended: bool = False


def render_chunk(record: JobRecord, spec: JobSpec, state: str, chunk_no: int, settings: Settings,
                 store: FrameStore, figures: FigureCache,
                 show: Callable[[int, int], None] = lambda done, total: None,
                 cache: FrameCache | None = None) -> ChunkOutcome:
    """Render chunk ``chunk_no`` of the job (in ``state``, not ended) into ``store``.

    With a frame ``cache`` (this worker's) and a job that asks for it, frames found there are
    copied into ``store`` instead of drawn, and the frames drawn are kept there; when the cache
    keeps the job's whole video (:mod:`celery_animate.render.kept_lookup`), the chunk stores
    nothing and counts its frames as done.

    ``show(done, total)`` is called every :data:`SHOW_SECONDS` with the frames stored so far.
    Raises :class:`TryLater` while the chunk must wait for the render window;
    :class:`InvalidArgument` for a chunk the job does not have; :class:`WorkerLost` when the
    chunk was delivered more than ``settings.max_deliveries`` times (its process died each
    time); and whatever the user's ``setup()`` or ``update()`` raises.
    """
    if type(chunk_no) is not int or not 0 <= chunk_no < spec.n_chunks:
        raise InvalidArgument(f"chunk {chunk_no!r} does not exist: the job has {spec.n_chunks}")
    frames = record.load_chunk(chunk_no, spec.n_frames)
    noted = kept_video.noted_outcome(record, spec, cache)
    if noted is not None and noted.found:  # before the window: it never opens for this job
        return _counted_as_done(record, chunk_no, frames)
    wait = pause(record, spec, settings, min(index for index, _ in frames))
    if wait:
        raise TryLater(wait, f"chunk {chunk_no} waits for the render window")
    deliveries = record.count_delivery(chunk_no)
    if deliveries > settings.max_deliveries:
        raise WorkerLost(
            f"chunk {chunk_no} (frames {describe_ranges(sorted(i for i, _ in frames))}) was started "
            f"{deliveries - 1} times and its worker process died each time (killed by a signal "
            "such as SIGKILL or the out-of-memory killer, or crashed in native code): see the "
            "render workers' logs, and make update() survive those frames")
    if state == QUEUED:  # the job's first chunks; later ones skip these two round trips
        lifecycle.begin_rendering(record)
        record.mark_started()
    clock = time.perf_counter()
    prepared = figures.get(spec.animator_path, spec.animator_attrs, settings.allowed_animators)
    seconds = {"setup": time.perf_counter() - clock, "render": 0.0, "store_put": 0.0}
    options = spec.options
    written: list[int] = []
    # The chunk holds the video's frames; update() gets the animation's index of each.
    animation = [(animation_index(options, position), params) for position, params in frames]
    keys = _cache_keys(spec, prepared, cache)
    if keys is not None and video_is_kept(record, spec, keys, store, settings, noted):
        return _counted_as_done(record, chunk_no, frames)
    names: dict[int, str] = {}
    if keys is not None:
        clock = time.perf_counter()
        names = {frame_idx: keys.frame(frame_idx, params) for frame_idx, params in animation}
        hit = copy_cached(record, spec, store, keys.cache, names, prepared, settings)
        written.extend(video_position(options, frame_idx) for frame_idx in hit)
        animation = [(frame_idx, params) for frame_idx, params in animation if frame_idx not in hit]
        seconds["cache_get"] = time.perf_counter() - clock
        seconds["frames_from_cache"] = len(hit)
        if not animation or time.perf_counter() - clock > REPORT_SECONDS:
            state = lifecycle.report_chunk(record, chunk_no, len(written))
            if state is None or state in TERMINAL_STATES:
                lifecycle.discard_frames(store, record.job_id, written)
                return ChunkOutcome([], [], ended=True)
    seconds["frames_drawn"] = len(animation)
    clock = reported = shown = time.perf_counter()
    for frame_idx, rgb in render_frames(prepared, animation, options.savefig_params,
                                        options.reuse_figure_object,
                                        options.plotting_log_interval, settings.max_frame_pixels,
                                        options.blit and settings.auto_blit):
        stored = time.perf_counter()
        seconds["render"] += stored - clock
        position = video_position(options, frame_idx)
        payload = pack_frame(rgb)
        store.put(record.job_id, position, payload)
        if frame_idx in names:
            keys.cache.put(names[frame_idx], payload)  # type: ignore[union-attr]
        if position == 0 or position in spec.stills:
            keep_pictures(record, spec, position, rgb, prepared)
        written.append(position)
        # Progress (and news of an ended job) every REPORT_SECONDS, not every frame; shown
        # progress every SHOW_SECONDS: each is a Redis round trip.
        ended = False
        last = len(written) == len(frames)
        if stored - reported > REPORT_SECONDS or last:
            reported = stored
            state = lifecycle.report_chunk(record, chunk_no, len(written))
            ended = state is None or state in TERMINAL_STATES
        if stored - shown > SHOW_SECONDS and not last:
            shown = stored
            show(len(written), len(frames))
        clock = time.perf_counter()
        seconds["store_put"] += clock - stored
        if ended:
            # The job's data may be purged already: take back what this chunk stored.
            lifecycle.discard_frames(store, record.job_id, written)
            return ChunkOutcome([], [], ended=True)
    record.add_seconds(seconds)
    return ChunkOutcome(written, completed_segments(spec, store, record.job_id, written))


def _counted_as_done(record: JobRecord, chunk_no: int, frames: list) -> ChunkOutcome:
    """The outcome of a chunk of a job whose video is kept: the chord's callback publishes it, so
    the chunk's frames count as done without being stored."""
    state = lifecycle.report_chunk(record, chunk_no, len(frames))
    return ChunkOutcome([], [], ended=state is None or state in TERMINAL_STATES)


def _cache_keys(spec: JobSpec, prepared: PreparedFigure, cache: FrameCache | None) -> FrameKeys | None:
    """The keys of the job's frames in this worker's ``cache``; None when the job does not ask
    for the cache, this worker has none (said once in its log), or the animator's source is
    not found."""
    if not spec.options.cache:
        return None
    if cache is None:
        _warn_no_cache_secret()
        return None
    return FrameKeys.build(cache, prepared.animator, spec.animator_path, spec.animator_attrs,
                           spec.options, prepared.rc)


@functools.cache
def _warn_no_cache_secret() -> None:
    logger.warning("a job asks for the frame cache, but this worker has no "
                   "CELERY_ANIMATE_CACHE_SECRET: it draws every frame (set the same secret on "
                   "every worker to share a cache)")


def copy_cached(record: JobRecord, spec: JobSpec, store: FrameStore, cache: FrameCache,
                names: dict[int, str], prepared: PreparedFigure, settings: Settings) -> set[int]:
    """Copy the frames found in ``cache`` (``names``: animation frame index to entry name) into
    the job's frames in ``store``; return the indices of those found. They are the job's like
    drawn ones, so the render window counts them and the job's end deletes them."""
    found = cache.get_many(list(names.values()))
    copies = [(video_position(spec.options, frame_idx), payload)
              for frame_idx, payload in zip(names, found, strict=True) if payload is not None]
    store.put_many(record.job_id, copies)  # type: ignore[arg-type]
    for position, payload in copies:
        if position == 0 or position in spec.stills:
            keep_pictures(record, spec, position,
                          unpack_frame(payload, settings.max_frame_pixels), prepared)
    return {frame_idx for frame_idx, payload in zip(names, found, strict=True) if payload is not None}


def keep_pictures(record: JobRecord, spec: JobSpec, position: int, rgb: np.ndarray,
                  prepared: PreparedFigure) -> None:
    """Keep the poster (of the video's first frame: a web page can show it while the rest is
    made) and the still of ``position`` if the job asks for one, cut to the figure's size."""
    if position == 0:
        record.set_poster(poster_png(rgb))
    if position in spec.stills:
        apply_savefig_params(prepared.figure, spec.options.savefig_params)  # its size at this dpi
        width, height = prepared.figure.canvas.get_width_height(physical=True)
        record.set_still(position, still_png(rgb, width, height))


def completed_segments(spec: JobSpec, store: FrameStore, job_id: str, written: list[int]) -> list[int]:
    """The segments of a segmented job that ``written`` frames fell into and whose frames are now
    all stored. Two chunks finishing one segment together may both find it; the segment's lease
    and its finished mark make the second encode a no-op."""
    if spec.n_segments == 1:
        return []
    return [segment for segment in sorted({index // spec.segment_frames for index in written})
            if store.has_all(job_id, spec.segment_range(segment).stop,
                             start=spec.segment_range(segment).start)]
