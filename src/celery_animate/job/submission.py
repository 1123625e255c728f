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
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from celery import Celery

from celery_animate import announcement, wire
from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.errors import InvalidArgument
from celery_animate.formats import MAX_STILLS, check_stills_only, format_of, segmentable
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.messages import LOWEST_PRIORITY, send_chord
from celery_animate.job.record import ChunkStager, JobRecord
from celery_animate.job.spec import JobSpec, plan_segments
from celery_animate.options import RenderOptions, animation_index, as_int, as_priority, video_position
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
            on_done: Any = None, webhook: str | None = None, extra_outputs: Sequence[str] = (),
            stills: Sequence[int] = ()) -> str:
    """Stage, record and send a job whose animator (``module:Class`` and packed attributes) and
    ``output`` (as the job records it) the caller has checked; return its id.

    ``workers_hint`` and ``chunks_per_worker`` only size the chunks. ``on_done`` (a Celery
    signature of the caller's own task, with its queue set) and ``webhook`` (a URL under a
    prefix of ``settings.webhook_allow``) announce the job's end (:mod:`celery_animate.announcement`).
    ``extra_outputs`` (checked like ``output``) are encoded from the same frames; ``stills``
    are animation frame indices kept as PNGs beside ``output`` (see :func:`still_positions`).
    Raises ``ValueError``/``TypeError`` subclasses for bad params, ``priority``, ``on_done`` or
    ``webhook`` (nothing is then left in Redis), and Redis or broker errors as they come (what
    was staged is deleted).
    """
    priority = as_priority(priority, LOWEST_PRIORITY)
    stored_on_done = None if on_done is None else announcement.on_done_from_signature(on_done).to_json()
    if webhook is not None:
        webhook = announcement.check_webhook_url(webhook, settings.webhook_allow)
    check_stills_only([output, *extra_outputs], list(stills))
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
        # A GIF needs one palette from every frame; more outputs need every frame once more.
        whole = not segmentable(format_of(output)) or bool(extra_outputs)
        spec = JobSpec(animator_path, animator_attrs, output, total, n_chunks, options,
                       total if whole else plan_segments(total, settings.segment_length),
                       list(extra_outputs), still_positions(stills, options, total))
        identical = None
        if options.cache and on_done is None and webhook is None:
            # The same job running already (a cell run twice, a form sent twice): follow it.
            identical = _fingerprint(spec, stager)
            running = lifecycle.attach_identical(record, spec, identical, settings.frame_ttl)
            if running is not None:
                lifecycle.abandon_submission(record, stager.count, None)
                return running
        lifecycle.create(record, spec, identical)
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


def _fingerprint(spec: JobSpec, stager: ChunkStager) -> str:
    """A digest of everything that makes a job what it is: its spec and every staged chunk."""
    digest = stager.digest.copy()
    digest.update(spec.pack())
    return digest.hexdigest()


def still_positions(stills: Sequence[int], options: RenderOptions, n_frames: int) -> list[int]:
    """The video positions of the animation frames ``stills`` names (``make_video``'s
    ``stills=``), in order. Raises :class:`InvalidArgument` for more than
    :data:`MAX_STILLS`, a repeated frame, or one the video does not show."""
    if len(stills) > MAX_STILLS:
        raise InvalidArgument(f"stills names {len(stills)} frames; {MAX_STILLS} at most")
    positions = []
    for frame_idx in stills:
        index = as_int(frame_idx, "stills", minimum=0)
        position = video_position(options, index)
        if animation_index(options, position) != index or not 0 <= position < n_frames:
            raise InvalidArgument(f"stills names frame {index}, which this video does not show")
        if position in positions:
            raise InvalidArgument(f"stills names frame {index} twice")
        positions.append(position)
    return positions


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
