"""A job's lifecycle: the only module that changes a job's state, ends it, or deletes its data.

States are in :mod:`celery_animate.states`. Every change goes through the
``transition`` Lua script, which refuses to leave a terminal state, so a job
ends exactly once however many tasks race to end it; the record then lives
``job_ttl`` seconds from that end. Every end path (done, failed, cancelled,
stalled, lost) goes through :func:`end_job`, and everything a job owns is
removed by :func:`purge` and nothing else: at once where the ending process
can reach it all, else by an encode worker's watchdog a second later
(:func:`purge_ended`), which the ``transition`` script makes possible by
listing each ended job until it is purged.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from celery_animate import keys
from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, JobNotFound, OutputPathRefused
from celery_animate.job.record import JOB_INDEX, JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.lua import run_script
from celery_animate.options import RenderResult
from celery_animate.paths import output_path, remove_partials, remove_segments
from celery_animate.states import CANCELLED, DONE, FAILED, QUEUED, RENDERING, TERMINAL_STATES
from celery_animate.stores import FrameStore
from celery_animate.stores.base import index_batches


def _run_lua(record: JobRecord, name: str, *args: Any) -> Any:
    return run_script(record.client, name, [record.key], list(args))


def _transition(record: JobRecord, state: str, only_from: str | None = None, **fields: Any) -> bool:
    """Set ``state`` (and ``fields``) unless the job already ended; True if it changed.

    With ``only_from``, change it only if the job is in that state now.
    """
    args: list[Any] = [record.job_id, only_from or "", record.ttl, "state", state,
                       "progress_at", time.time()]
    for name, value in fields.items():
        args += [name, value]
    script_keys = [record.key, keys.ACTIVE_JOBS, record.ended_channel, keys.ENDING_JOBS, keys.ANNOUNCE_JOBS]
    return run_script(record.client, "transition", script_keys, args) == 1


def create(record: JobRecord, spec: JobSpec, identical: str | None = None) -> None:
    """Write the record of a new job in state ``queued`` and list it in the job index; with the
    ``identical`` fingerprint it noted (:func:`attach_identical`), for its purge to remove."""
    now = time.time()
    with record.client.pipeline() as pipe:
        pipe.hset(record.key, mapping={
            "spec": spec.pack(), "state": QUEUED, "total": spec.n_frames,
            "rendered": 0, "encoded": 0, "created": now, "progress_at": now, "output": spec.output,
            # The render window counts encoder idleness from here (see window.pause).
            "encoded_at": now, **({"identical": identical} if identical else {}),
        })
        pipe.expire(record.key, record.ttl)
        pipe.zadd(JOB_INDEX, {record.job_id: now})
        pipe.zadd(keys.ACTIVE_JOBS, {record.job_id: now})
        pipe.zremrangebyscore(JOB_INDEX, "-inf", now - record.ttl)  # their records expired
        pipe.execute()


def attach_identical(record: JobRecord, spec: JobSpec, fingerprint: str, ttl: int) -> str | None:
    """Note the new job (its record not yet created) as the one with ``fingerprint`` (a digest
    of its spec and params) while it runs; if another job that has not ended already has it
    and its spec equals ``spec``, return that job's id instead (the caller then abandons its
    submission and follows that job). The note lives ``ttl`` seconds at most and goes when its
    job is purged (:func:`create` keeps the fingerprint in the record for that)."""
    key = keys.identical_job(fingerprint)
    client = record.client
    for _ in range(2):  # once more if the note named a job that is gone
        if client.set(key, record.job_id, nx=True, ex=ttl):
            return None
        other = (client.get(key) or b"").decode()
        try:
            running = JobRecord(client, other, record.ttl)
            if running.state() not in (*TERMINAL_STATES, None) and running.spec() == spec:
                return other
        except (InvalidArgument, JobNotFound):  # not a job id (forged), or its record is gone
            pass
        client.delete(key)  # a stale or forged note: take it over
    return None


def begin_rendering(record: JobRecord) -> bool:
    """The first chunk started: ``queued`` → ``rendering``."""
    return _transition(record, RENDERING, only_from=QUEUED)


def report_chunk(record: JobRecord, chunk_no: int, frames_done: int) -> str | None:
    """Record that chunk ``chunk_no`` has ``frames_done`` frames stored; return the job's state
    (``None`` when the record is gone). Storing the last frame moves the job to ``encoding``."""
    state = _run_lua(record, "chunk_progress", chunk_no, frames_done, time.time())
    return state.decode() if state is not None else None


def commit_publish(record: JobRecord, lease_key: str, lease_value: str) -> bool:
    """Right before an encoder renames its video into place: True if the job is still running
    and the lease is still the encoder's. From then on a cancel (:func:`end_job`) is refused."""
    return run_script(record.client, "commit_publish", [record.key, lease_key], [lease_value]) == 1


def describe_exception(exc: BaseException) -> dict[str, str]:
    """``{"type", "message", "traceback"}`` of ``exc``, as a failed job's record keeps them.

    The exception's notes (PEP 678: the frame whose ``update()`` raised it) follow its message in
    brackets, so that what only shows at the end of a traceback is in the message too.
    """
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    message = str(exc)
    notes = [note for note in getattr(exc, "__notes__", ()) if isinstance(note, str)]
    if notes:
        message = f"{message} ({'; '.join(notes)})" if message else "; ".join(notes)
    return {"type": name, "message": message, "traceback": "".join(traceback.format_exception(exc))}


# -- a job's end ----------------------------------------------------------------------------
class Cancel:
    """The outcome of a job that someone cancelled (see :data:`CANCEL`)."""


#: Pass to :func:`end_job` to cancel a job.
CANCEL = Cancel()


@dataclass(frozen=True)
class Cleaner:
    """What a process needs to remove a job's data: the frame store and the settings of a
    machine that also sees the job's output directory (an encode worker, the embedded client),
    where a job's partial files and encoded segments lie."""

    store: FrameStore
    settings: Settings


def end_job(record: JobRecord, outcome: RenderResult | BaseException | Cancel,
            cleaner: Cleaner | None = None) -> bool:
    """End the job, once, and remove everything it owns: the one way a job ends.

    ``outcome`` is its video (``done``), the exception it failed with (``failed``,
    with type, message and traceback kept in the record) or :data:`CANCEL`. Returns
    True if this call ended it; False if it had ended before, its record is gone, or
    (for a cancel) its video was already being put in place, which it then still is.

    With a ``cleaner``, this process then removes the job's data (:func:`purge`),
    also when another process ended it first: a task that wrote something after
    the end takes it away again. Without one (a client, a render worker that may
    not see the output directory), an encode worker's watchdog removes it within
    about a second (:func:`purge_ended`). Redis errors propagate.
    """
    now = time.time()
    if isinstance(outcome, Cancel):
        changed = _transition(record, CANCELLED, finished=now)
    elif isinstance(outcome, BaseException):
        changed = _transition(record, FAILED, error=json.dumps(describe_exception(outcome)),
                              finished=now)
    else:
        changed = _transition(record, DONE, result=json.dumps(asdict(outcome)), finished=now)
    if cleaner is not None and record.state() in TERMINAL_STATES:
        purge(record, cleaner)
    return changed


def purge(record: JobRecord, cleaner: Cleaner) -> None:
    """Remove everything the ended job owns, wherever it lies: its frames, encoded segments and
    copy of a kept video in the frame store, staged params, the stills kept in its record,
    segment marks, encode leases and their generation counters in Redis, and its partial files and any encoded
    segments an older version kept beside the output; then take it off the list of jobs to
    purge.

    Safe to repeat (what is gone stays gone) and never touches the output itself.
    Only call it for an ended job. A record that is gone or unreadable (expired, lost,
    forged) only leaves that list: nothing of it can be found. Redis errors propagate.
    """
    client = record.client
    try:
        spec = record.spec()
    except (JobNotFound, InvalidArgument):
        spec = None
    if spec is not None:
        cleaner.store.delete_job(record.job_id, spec.n_frames)
        # One more than it has: a kept video's copy lies after them (kept_video.kept_slot).
        cleaner.store.delete_segments(record.job_id, spec.n_segments + 1)
        _delete_staged(record, spec.n_chunks)
        if spec.stills:  # full-size PNGs: published by now, or never to be
            client.hdel(record.key, *(f"still:{position}" for position in spec.stills))
        parts = ["", *(f":seg{k}" for k in range(spec.n_segments))]
        for start in range(0, len(parts), 1000):
            batch = parts[start:start + 1000]
            client.unlink(*(keys.lease(record.job_id, part) for part in batch),
                          *(keys.lease_generation(record.job_id, part) for part in batch))
        for output in spec.outputs:
            remove_files(output, record.job_id, cleaner.settings)
    client.unlink(keys.segments(record.job_id))
    fingerprint = record.field("identical")
    if fingerprint and re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        key = keys.identical_job(fingerprint)
        if client.get(key) == record.job_id.encode():  # a later job's note stays
            client.unlink(key)
    cleaner.store.sweep()
    client.zrem(keys.ENDING_JOBS, record.job_id)


def remove_files(output: str, job_id: str, settings: Settings) -> None:
    """Delete the job's partial files and encoded segments beside ``output`` (as the job records
    it, resolved with ``settings``): the part of :func:`purge` that needs no Redis, for a client
    whose embedded Redis is gone with its workers. For an object-store output they lie in this
    machine's staging directory, beside its stand-in path (see :func:`output_path`): what a killed
    encoder left there before its upload goes too. Never touches the output itself."""
    # A worker that may not write there never wrote there: nothing of the job lies there.
    with contextlib.suppress(InvalidArgument, OutputPathRefused, OSError):
        path = output_path(output, settings)
        remove_segments(path, job_id)
        remove_partials(path, job_id)


def purge_if_ended(record: JobRecord, cleaner: Cleaner) -> None:
    """:func:`purge` the job if it ended and was not purged yet (one ZSCORE otherwise): for the
    tasks that find their job ended, many of which may run for one job."""
    if record.client.zscore(keys.ENDING_JOBS, record.job_id) is not None:
        purge(record, cleaner)


#: Seconds after its end before an encode worker's watchdog purges a job nobody purged: the
#: tasks still running for it notice the end and stop first.
PURGE_GRACE_SECONDS = 1.0
#: Jobs purged in one :func:`purge_ended` call, at most.
PURGE_BATCH = 100


def purge_ended(client: redis.Redis, cleaner: Cleaner, ttl: int, now: float | None = None) -> list[str]:
    """Purge the jobs that ended at least :data:`PURGE_GRACE_SECONDS` ago and that no one purged
    (ended by a client, a render worker, or a worker that died before it could); return their
    ids. Ids that are not job ids (a stranger's writes) are dropped. Redis errors propagate."""
    now = time.time() if now is None else now
    purged = []
    for raw in client.zrangebyscore(keys.ENDING_JOBS, "-inf", now - PURGE_GRACE_SECONDS,
                                    start=0, num=PURGE_BATCH):
        try:
            record = JobRecord(client, raw.decode(), ttl)
        except (InvalidArgument, UnicodeDecodeError):
            client.zrem(keys.ENDING_JOBS, raw)
            continue
        purge(record, cleaner)
        purged.append(record.job_id)
    return purged


def running_jobs(client: redis.Redis, ttl: int) -> Iterator[tuple[JobRecord, str, float]]:
    """``(record, state, last progress time)`` of each job that has not ended. Ids whose record is
    gone (expired, lost) or that are not job ids (a stranger's writes) are dropped from the list."""
    for raw in client.zrange(keys.ACTIVE_JOBS, 0, -1):
        try:
            record = JobRecord(client, raw.decode(), ttl)
        except (InvalidArgument, UnicodeDecodeError):
            client.zrem(keys.ACTIVE_JOBS, raw)
            continue
        state, progress_at = client.hmget(record.key, "state", "progress_at")
        if state is None:
            client.zrem(keys.ACTIVE_JOBS, raw)
            continue
        yield record, state.decode(), float(progress_at or 0)


def discard_stale_attempts(output: Path, job_id: str, below_generation: int) -> None:
    """Delete what the job's earlier encode attempts (lease generations below
    ``below_generation``, which can no longer publish) left beside ``output``: the new lease
    holder calls it before it encodes."""
    remove_partials(output, job_id, below_generation=below_generation)


def discard_frames(store: FrameStore, job_id: str, indices: list[int] | range) -> None:
    """Delete frames no one will read again: those a chunk stored after its job ended (its
    cleanup may have run already), or those of a segment already encoded and kept."""
    store.delete(job_id, list(indices))


def abandon_submission(record: JobRecord, n_chunks: int, exc: BaseException | None) -> None:
    """A submission failed part-way (``exc``), or found an identical job to follow (None):
    delete what it staged, and fail the job if it was created."""
    with contextlib.suppress(Exception):  # Redis itself may be what failed
        _delete_staged(record, n_chunks)
        if exc is not None and record.exists():  # created, but the chord could not be sent
            end_job(record, exc)


def _delete_staged(record: JobRecord, n_chunks: int) -> None:
    for batch in index_batches(n_chunks, 1000):
        record.client.unlink(*(record.chunk_key(k) for k in batch))
