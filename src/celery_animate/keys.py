"""Every Redis key and pub/sub channel name celery-animate uses, in one place.

All names start with :data:`PREFIX`. A job's own keys all start with
:func:`job` of its id (the hash, then ``:chunk:<n>``, ``:segments``,
``:lease...``), so :func:`job_pattern` finds them all with one SCAN; its
frames in the Redis frame store live apart, under ``celery_animate:frame:``.

The strings are part of the stored data: records written by an older
version must still be found, so a name here never changes silently.

The functions assume a checked job id (see :func:`celery_animate.ids.check_job_id`:
32 lowercase hex digits); they do not check it themselves, and given
anything else they build a name from it all the same. Lua scripts never
build names: their callers pass every key (and channel) in ``KEYS``.
"""

from __future__ import annotations

PREFIX = "celery_animate"

#: Sorted set of job ids, scored by submission time (s since the epoch).
JOB_INDEX = "celery_animate:jobs"
#: Sorted set of the jobs that have not ended (the ``transition`` script removes them).
ACTIVE_JOBS = "celery_animate:active"
#: Sorted set of the jobs that ended but whose data is not yet removed, scored by their end
#: (s since the epoch); ``job.lifecycle.purge`` takes them out.
ENDING_JOBS = "celery_animate:ending"
#: Sorted set of the ended jobs whose end is still to be announced (their record has an
#: ``on_done`` or ``webhook`` field), scored by their end; a worker's watchdog takes each off
#: (``job.announce``) and announces it.
ANNOUNCE_JOBS = "celery_animate:announce"
#: The lock held by the worker that runs a recovery pass.
RECOVERY_LOCK = "celery_animate:recovery"

_JOB = f"{PREFIX}:job:"
_FRAME = f"{PREFIX}:frame:"
_SEGMENT = f"{PREFIX}:segment:"
_CACHE = f"{PREFIX}:cache:"


def job(job_id: str) -> str:
    """The job's hash (its spec, state, counters and timings)."""
    return f"{_JOB}{job_id}"


def ended_channel(job_id: str) -> str:
    """The pub/sub channel the job's terminal state is published on when it ends."""
    return f"{job(job_id)}:ended"


def chunk(job_id: str, chunk_no: int) -> str:
    """The staged params of chunk ``chunk_no`` (a string beside the hash)."""
    return f"{job(job_id)}:chunk:{int(chunk_no)}"


def segments(job_id: str) -> str:
    """The bitmap of the job's encoded segments: bit ``k`` is set once segment ``k`` is kept."""
    return f"{job(job_id)}:segments"


def lease(job_id: str, part: str = "") -> str:
    """An encode lease: ``part`` is ``""`` for the video's, ``":seg<k>"`` for segment ``k``'s."""
    return f"{job(job_id)}:lease{part}"


def lease_generation(job_id: str, part: str = "") -> str:
    """The generation counter of the encode lease :func:`lease` names (same ``part``)."""
    return f"{lease(job_id, part)}:generation"


def frame(job_id: str, frame_idx: int) -> str:
    """One frame of the job in the Redis frame store."""
    return f"{_FRAME}{job_id}:{frame_idx}"


def segment_blob(job_id: str, segment: int) -> str:
    """Encoded segment ``segment`` of the job (its video file's bytes) in the Redis frame store,
    beside the frames, until the segments are joined."""
    return f"{_SEGMENT}{job_id}:{int(segment)}"


def identical_job(fingerprint: str) -> str:
    """The id of the running job whose spec and params have this fingerprint (hex digest)."""
    return f"{PREFIX}:identical:{fingerprint}"


def cache_entry(namespace: str, name: str) -> str:
    """One entry of the frame cache of the workers whose cache key gives ``namespace``."""
    return f"{_CACHE}{namespace}:{name}"


def cache_recency(namespace: str) -> str:
    """The sorted set of a cache's entry keys, scored by their last use (microseconds, Redis's
    clock): the least recently used come first."""
    return f"{_CACHE}{namespace}"


def cache_sizes(namespace: str) -> str:
    """The hash of a cache's entry keys to their sizes in bytes, with their sum in ``total``."""
    return f"{_CACHE}{namespace}:sizes"


def job_pattern(job_id: str) -> str:
    """A SCAN ``MATCH`` pattern for every key that starts with :func:`job` of the id: the hash,
    staged chunks, the segment bitmap, leases and their generation counters (not frames).

    A checked id has a fixed length, so no other job's key matches; glob characters in the
    id, which a checked one never has, are escaped all the same.
    """
    escaped = "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in job_id)
    return f"{_JOB}{escaped}*"
