"""A job's lifecycle: the only module that changes a job's state, ends it, or deletes its data.

States are in :mod:`celery_animate.states`. Every change goes through the
``transition`` Lua script, which refuses to leave a terminal state, so a job
ends exactly once however many tasks race to end it; the record then lives
``job_ttl`` seconds from that end. Deleting a job's frames and staged params
happens here too, once per job (the first caller claims it).
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from dataclasses import asdict
from typing import Any

from celery_animate.job.record import JOB_INDEX, JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.lua import run_script
from celery_animate.options import RenderResult
from celery_animate.states import CANCELLED, DONE, FAILED, QUEUED, RENDERING
from celery_animate.stores import FrameStore
from celery_animate.stores.base import index_batches

#: Sorted set of the jobs that have not ended, scored by submission time; the watchdog reads it.
ACTIVE_JOBS = "celery_animate:active"


def _run_lua(record: JobRecord, name: str, *args: Any) -> Any:
    return run_script(record.client, name, [record.key], list(args))


def _transition(record: JobRecord, state: str, only_from: str | None = None, **fields: Any) -> bool:
    """Set ``state`` (and ``fields``) unless the job already ended; True if it changed.

    With ``only_from``, change it only if the job is in that state now.
    """
    args: list[Any] = [only_from or "", record.ttl, "state", state, "progress_at", time.time()]
    for name, value in fields.items():
        args += [name, value]
    return run_script(record.client, "transition", [record.key, ACTIVE_JOBS], args) == 1


def create(record: JobRecord, spec: JobSpec) -> None:
    """Write the record of a new job in state ``queued`` and list it in the job index."""
    now = time.time()
    with record.client.pipeline() as pipe:
        pipe.hset(record.key, mapping={
            "spec": spec.pack(), "state": QUEUED, "total": spec.n_frames,
            "rendered": 0, "encoded": 0, "created": now, "progress_at": now, "output": spec.output,
            # The render window counts encoder idleness from here (see window.pause).
            "encoded_at": now,
        })
        pipe.expire(record.key, record.ttl)
        pipe.zadd(JOB_INDEX, {record.job_id: now})
        pipe.zadd(ACTIVE_JOBS, {record.job_id: now})
        pipe.zremrangebyscore(JOB_INDEX, "-inf", now - record.ttl)  # their records expired
        pipe.execute()


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
    and the lease is still the encoder's. From then on :func:`cancel` returns False."""
    return run_script(record.client, "commit_publish", [record.key, lease_key], [lease_value]) == 1


def finish(record: JobRecord, result: RenderResult) -> bool:
    """The video is in place: the job is ``done``. False if it had already ended."""
    return _transition(record, DONE, result=json.dumps(asdict(result)), finished=time.time())


def describe_exception(exc: BaseException) -> dict[str, str]:
    """``{"type", "message", "traceback"}`` of ``exc``, as a failed job's record keeps them."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return {"type": name, "message": str(exc), "traceback": "".join(traceback.format_exception(exc))}


def fail(record: JobRecord, exc: BaseException) -> bool:
    """End the job as ``failed`` with ``exc``'s type, message and traceback. False if it had ended."""
    return _transition(record, FAILED, error=json.dumps(describe_exception(exc)),
                       finished=time.time())


def cancel(record: JobRecord) -> bool:
    """End the job as ``cancelled``; True if it was still running and its video not yet being
    put in place (see :func:`commit_publish`)."""
    return _transition(record, CANCELLED, finished=time.time())


# -- deleting a job's data -------------------------------------------------------------------
def cleanup(record: JobRecord, spec: JobSpec, store: FrameStore) -> bool:
    """Delete an ended job's frames and staged params, once; True for the caller that did.

    Also sweeps the store of what abandoned jobs left, where it cannot expire
    that by itself (a scratch directory).
    """
    if _run_lua(record, "claim_cleanup", time.time()) == 0:
        return False
    store.delete_job(record.job_id, spec.n_frames)
    _delete_staged(record, spec.n_chunks)
    record.client.unlink(record.segments_key)
    store.sweep()
    return True


def discard_frames(store: FrameStore, job_id: str, indices: list[int] | range) -> None:
    """Delete frames no one will read again: those a chunk stored after its job ended (its
    cleanup may have run already), or those of a segment already encoded and kept."""
    store.delete(job_id, list(indices))


def abandon_submission(record: JobRecord, n_chunks: int, exc: BaseException) -> None:
    """A submission failed part-way: delete what it staged, and fail the job if it was created."""
    with contextlib.suppress(Exception):  # Redis itself may be what failed
        _delete_staged(record, n_chunks)
        if record.exists():  # created, but the chord could not be sent
            fail(record, exc)


def _delete_staged(record: JobRecord, n_chunks: int) -> None:
    for batch in index_batches(n_chunks, 1000):
        record.client.unlink(*(record.chunk_key(k) for k in batch))
