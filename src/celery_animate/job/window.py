"""Backpressure: how far rendering may run ahead of encoding in a segmented job.

Frames wait in the frame store from when a render task stores them until the
segment they belong to is encoded and kept (then they are deleted). Render
tasks whose frames lie too far past the first segment not yet encoded wait,
by retrying themselves later, which gives their worker slot back.

The window holds while an encoder of the job is alive, however slowly it
goes: a starved encoder on a loaded machine (its heartbeat still renews its
encode lease every few seconds) must not let rendering run ahead and the
store grow with the job. Only when the encoders made no progress for
:data:`STALL_SECONDS` and none of them holds a live lease does it open.
"""

from __future__ import annotations

from celery_animate import keys
from celery_animate.config import Settings
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec

#: Seconds without encoder progress after which render tasks stop waiting for the window, unless
#: an encoder of the job is alive (holds a live encode lease).
STALL_SECONDS = 30.0
#: Seconds a render task that must wait waits before it asks again, per segment it is ahead of
#: the window, and at most; but per segment no longer than the job's encoders take for one,
#: nor shorter than MIN_PAUSE_SECONDS.
PAUSE_SECONDS, MAX_PAUSE_SECONDS, MIN_PAUSE_SECONDS = 1.0, 30.0, 0.05
#: Seconds per segment ahead a task waits before any segment of its job is finished (the
#: encoders' pace is not known yet): short, since a task told to wait whole seconds per segment
#: comes back long after the encoders needed its frames (a 600-frame job took 7.7 s instead of
#: 4.2 s). A job that takes at least as many frames from the frame cache as it draws (a
#: re-run), whose segments mostly come from the cache a few hundredths of a second each, waits
#: the shortest pause per segment throughout.
FIRST_PAUSE_SECONDS, CACHED_PAUSE_SECONDS = 0.25, 0.05
#: Segments whose encode leases :func:`encoder_alive` asks about, at most (a window of a
#: thousand segments is no bound worth one more key per question).
MAX_LEASES_ASKED = 1000


def pause(record: JobRecord, spec: JobSpec, settings: Settings, first_frame: int) -> float:
    """Seconds a render task whose lowest frame is ``first_frame`` should wait for the encoders
    before it asks again; 0 when it may render now.

    Frames may be stored up to ``settings.window_frames`` (at least one
    segment) past the first segment not yet encoded. The chunk holding that
    segment's first frame never waits, so rendering always reaches what the
    encoders need next; and no chunk waits once encoders made no progress for
    :data:`STALL_SECONDS` while none is alive (:func:`encoder_alive`: none
    running, or all busy elsewhere), so a job never hangs on the window. A
    slow encoder that is alive keeps it closed. A job of one segment never
    waits: its frames stay until its one encode is kept. Tasks far ahead wait longer (one
    :data:`PAUSE_SECONDS` per segment, or the seconds the last segment took its encoder when
    that was shorter), so a long job's waiting tasks do not flood the broker.
    """
    window = max(settings.window_frames, spec.segment_frames)
    if spec.n_segments == 1 or first_frame < window:  # inside the window, wherever it is now
        return 0.0
    first_unfinished = record.first_unfinished_segment()
    end = first_unfinished * spec.segment_frames + window
    if first_frame < end:
        return 0.0
    idle = record.seconds_since_encoding()
    if idle is None or (idle >= STALL_SECONDS
                        and not encoder_alive(record, spec, first_unfinished, end)):
        return 0.0
    ahead = (first_frame - end) // spec.segment_frames + 1
    # Encoders that take segments from the frame cache finish one in a few hundredths of a
    # second: a task that waited whole seconds per segment would hold the job back for nothing.
    # A re-run's segments mostly come from the cache, and those that do not say nothing of the
    # next: a pace taken from the one segment encoded anew held the rest back for its length.
    if from_cache_so_far(record, spec):
        pace = CACHED_PAUSE_SECONDS
    else:  # before a segment is finished the encoders' pace is not known yet
        pace = record.segment_seconds() or FIRST_PAUSE_SECONDS
    per_segment = max(MIN_PAUSE_SECONDS, min(PAUSE_SECONDS, pace))
    return min(MAX_PAUSE_SECONDS, per_segment * ahead)


def from_cache_so_far(record: JobRecord, spec: JobSpec) -> bool:
    """Whether a job that uses the frame cache has, so far, taken at least as many frames from
    it as it drew (none yet counts): its segments are likely to come from the cache too."""
    if not spec.options.cache:
        return False
    drawn, cached = record.client.hmget(record.key, "stat:frames_drawn", "stat:frames_from_cache")
    return float(drawn or 0) <= float(cached or 0)


def encoder_alive(record: JobRecord, spec: JobSpec, first: int, end: int) -> bool:
    """Whether an encoder of the job holds a live encode lease: the job's own (the chord's
    callback) or that of a segment from ``first`` (the first unfinished one) with frames below
    ``end`` (the window's end; at most :data:`MAX_LEASES_ASKED` segments). A lease is renewed
    every third of its lifetime by a heartbeat thread whatever the encode's pace, and lapses
    within its lifetime (10 s) once its holder died. One EXISTS of a few keys; Redis errors
    propagate."""
    last = min(spec.n_segments, -(-end // spec.segment_frames), first + MAX_LEASES_ASKED)
    names = [keys.lease(record.job_id), *(keys.lease(record.job_id, f":seg{k}")
                                          for k in range(first, last))]
    return int(record.client.exists(*names)) > 0
