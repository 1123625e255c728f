"""Submitting a job: validate, stage params in chunks, create its record, send the chord.

Params are read from ``param_by_frame`` one chunk at a time and staged in
Redis; the chord's messages carry only ``(job_id, chunk_no)``. Nothing is
enqueued until every chunk has been read and checked, so a bad frame
(duplicate index, gap, a value msgpack cannot carry) raises here and leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

import redis

from celery_animate import wire
from celery_animate.client.render_job import RenderJob
from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.errors import ConfigurationError, InvalidArgument
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.messages import LOWEST_PRIORITY, send_chord
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec, plan_segments
from celery_animate.options import RenderOptions, as_int
from celery_animate.params import (
    FrameIndexTracker,
    check_n_frames,
    choose_chunk_size,
    chunked,
    known_length,
    resolved_frames,
)
from celery_animate.paths import resolve_output
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.loading import animator_path, check_allowed, pack_attrs
from celery_animate.worker.app import app_for

#: Waves of chunks (one chunk per worker) the render window holds (see largest_chunk).
WAVES_PER_WINDOW = 4


def submit_job(
    animator: AnimatorBase,
    output_file: str | os.PathLike[str],
    param_by_frame: Iterable[Any],
    options: RenderOptions,
    settings: Settings,
    *,
    n_frames: int | None = None,
    workers_hint: int = 2,
    chunks_per_worker: int = 8,
    priority: int = 0,
) -> RenderJob:
    """Validate and enqueue a render; return at once with its :class:`RenderJob`.

    ``workers_hint`` and ``chunks_per_worker`` only size the chunks. Only an
    embedded cluster (``settings.embedded``), whose workers were forked from
    this process, can use an animator class defined in ``__main__``.
    Raises ``ValueError``/``TypeError`` for bad params, ``ConfigurationError``
    for a cluster that cannot run this animator.
    """
    priority = as_int(priority, "priority", minimum=0)
    if priority > LOWEST_PRIORITY:
        raise InvalidArgument(f"priority must be from 0 (first) to {LOWEST_PRIORITY} (last), got {priority}")
    path = animator_path(animator)
    if path.startswith("__main__:") and not settings.embedded:
        raise ConfigurationError(
            f"{type(animator).__qualname__} is defined in the script being run (__main__), which "
            "workers of a remote cluster cannot import. Move the class into a module that is "
            "installed on the workers and import it from there, or unset CELERY_BROKER_URL to "
            "render on the embedded cluster."
        )
    # The workers would refuse it; saying so now costs the user nothing.
    check_allowed(path, settings.allowed_animators)
    attrs = pack_attrs(animator)
    check_n_frames(n_frames)
    output = resolve_output(output_file, settings)
    known = n_frames if n_frames is not None else known_length(param_by_frame)
    chunk_size = choose_chunk_size(known, workers_hint, chunks_per_worker,
                                   largest=largest_chunk(settings, known, workers_hint))

    job_id = new_job_id()
    record = JobRecord(job_redis(settings), job_id, settings.job_ttl)
    tracker = FrameIndexTracker()
    stager = record.stager(settings.frame_ttl)
    try:
        frames = tracker.track(resolved_frames(param_by_frame, n_frames))
        for chunk in chunked(frames, chunk_size):
            stager.add(_pack_chunk(chunk))
        stager.flush()
        n_chunks = stager.count
        total = tracker.finish(n_frames)
        spec = JobSpec(path, attrs, output, total, n_chunks, options,
                       plan_segments(total, settings.segment_length))
        lifecycle.create(record, spec)
        send_chord(app_for(settings), settings, job_id, n_chunks, priority, workers_hint,
                   spec.n_segments)
    except BaseException as exc:
        lifecycle.abandon_submission(record, stager.count, exc)
        raise
    # Lets workers send again what the broker loses (celery_animate.job.recovery); without it the
    # job still ends, by the watchdog's stall timeout. The job runs already: not worth a raise.
    with contextlib.suppress(redis.RedisError):
        record.mark_sent(settings.render_queue, settings.encode_queue)
    return RenderJob(job_id, settings)


def largest_chunk(settings: Settings, n_frames: int | None, workers: int) -> int:
    """Most frames per chunk: half an encode segment; for a job that may be segmented, also a
    wave of chunks (one per worker) of at most a quarter of the render window.

    The window must hold the wave being rendered, the segment it completes, the segment being
    encoded, and the stragglers of the wave before: with waves of half the window, encoders that
    keep up still held rendering back (tasks paused for the window, came back late, and held
    their segments back in turn: 61-68 % of the ideal throughput for 32 processes, against 94 %
    with waves of a quarter; ``bench/fleet_sim.py``).
    """
    largest = settings.segment_length // 2
    if n_frames is None or plan_segments(n_frames, settings.segment_length) < n_frames:
        largest = min(largest, settings.window_frames // (WAVES_PER_WINDOW * max(1, workers)))
    return max(1, largest)


def _pack_chunk(chunk: list[tuple[int, Any]]) -> bytes:
    try:
        return wire.packb(chunk)
    except (TypeError, ValueError, OverflowError):
        for frame_idx, params in chunk:
            wire.check_packable(params, f"params of frame {frame_idx}")
        raise
