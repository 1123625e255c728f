"""Enqueueing a job: stage its params in chunks, create its record, send its messages.

Params are read from ``param_by_frame`` one chunk at a time and staged in
Redis; the chord's messages carry only ``(job_id, chunk_no)``. Nothing is
sent until every chunk has been read and checked, so a bad frame (duplicate
index, gap, a value msgpack cannot carry) raises here and leaves nothing
behind. The callers (``client.submit`` for users, the periodic task for beat)
validate the animator and the output first; this module takes them as data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import redis
from celery import Celery

from celery_animate import announcement, wire
from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.formats import format_of, segmentable
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.messages import LOWEST_PRIORITY, send_chord
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec, plan_segments
from celery_animate.options import RenderOptions, as_priority
from celery_animate.params import (
    FrameIndexTracker,
    check_param_by_frame,
    choose_chunk_size,
    chunked,
    known_length,
    resolved_frames,
)

#: Waves of chunks (one chunk per worker) the render window holds (see largest_chunk).
WAVES_PER_WINDOW = 4


def enqueue(app: Celery, settings: Settings, animator_path: str, animator_attrs: bytes, output: str,
            param_by_frame: Iterable[Any], options: RenderOptions, *, n_frames: int | None = None,
            workers_hint: int = 2, chunks_per_worker: int = 8, priority: int = 0,
            on_done: Any = None, webhook: str | None = None) -> str:
    """Stage, record and send a job whose animator (``module:Class`` and packed attributes) and
    ``output`` (as the job records it) the caller has checked; return its id.

    ``workers_hint`` and ``chunks_per_worker`` only size the chunks. ``on_done`` (a Celery
    signature of the caller's own task, with its queue set) and ``webhook`` (a URL under a
    prefix of ``settings.webhook_allow``) announce the job's end (:mod:`celery_animate.announcement`).
    Raises ``ValueError``/``TypeError`` subclasses for bad params, ``priority``, ``on_done`` or
    ``webhook`` (nothing is then left in Redis), and Redis or broker errors as they come (what
    was staged is deleted).
    """
    priority = as_priority(priority, LOWEST_PRIORITY)
    stored_on_done = None if on_done is None else announcement.on_done_from_signature(on_done).to_json()
    if webhook is not None:
        webhook = announcement.check_webhook_url(webhook, settings.webhook_allow)
    check_param_by_frame(param_by_frame, n_frames)  # before the chunk size: it divides by the count
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
        whole = not segmentable(format_of(output))  # e.g. a GIF: one palette from every frame
        spec = JobSpec(animator_path, animator_attrs, output, total, n_chunks, options,
                       total if whole else plan_segments(total, settings.segment_length))
        lifecycle.create(record, spec)
        record.set_announcements(stored_on_done, webhook)  # before any message: no end comes sooner
        send_chord(app, settings, job_id, n_chunks, priority, workers_hint, spec.n_segments)
    except BaseException as exc:
        lifecycle.abandon_submission(record, stager.count, exc)
        raise
    # Lets workers send again what the broker loses (job.recovery); without it the job still
    # ends, by the watchdog's stall timeout. The job runs already: not worth a raise.
    with contextlib.suppress(redis.RedisError):
        record.mark_sent(settings.render_queue, settings.encode_queue)
    return job_id


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
