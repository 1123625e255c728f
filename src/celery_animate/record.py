"""A job's record in Redis: its spec, its staged params, its progress counters and timings.

The record is one hash, ``celery_animate:job:<id>``; staged params are one
string per chunk beside it. Anyone who knows the id and the Redis URL can read
it: the process that submitted the job, a later web request, the CLI. Changes
of state and deletions are not here: they belong to :mod:`celery_animate.lifecycle`.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from . import wire
from .errors import InvalidArgument, JobNotFound
from .ids import check_job_id
from .options import Progress
from .spec import JobSpec

JOB_INDEX = "celery_animate:jobs"


class JobRecord:
    """Reads and updates one job's hash. Used by clients and workers alike.

    Raises :class:`~celery_animate.errors.InvalidArgument` for a ``job_id``
    that is not 32 lowercase hex digits.
    """

    def __init__(self, client: redis.Redis, job_id: str, ttl: int = 7 * 24 * 3600):
        self.client = client
        self.job_id = check_job_id(job_id)
        self.ttl = ttl
        self.key = f"celery_animate:job:{job_id}"

    def not_found(self) -> JobNotFound:
        return JobNotFound(f"no job {self.job_id!r} (never submitted, or its record expired)")

    def chunk_key(self, chunk_no: int) -> str:
        return f"{self.key}:chunk:{int(chunk_no)}"

    # -- params, staged before the job exists -------------------------------------------
    def stage_chunk(self, chunk_no: int, frames: bytes, ttl: int) -> None:
        self.client.set(self.chunk_key(chunk_no), frames, ex=ttl)

    def load_chunk(self, chunk_no: int, n_frames: int) -> list[tuple[int, Any]]:
        """The ``(frame_idx, params)`` pairs staged for a chunk, each index in ``0 .. n_frames-1``.

        Raises ``LookupError`` when they expired and :class:`InvalidArgument`
        when what is stored is not such a list.
        """
        data = self.client.get(self.chunk_key(chunk_no))
        if data is None:
            raise LookupError(f"params of chunk {chunk_no} of job {self.job_id} have expired")
        pairs = wire.unpackb(data)
        if not isinstance(pairs, list) or not all(
                isinstance(pair, (list, tuple)) and len(pair) == 2 and type(pair[0]) is int
                and 0 <= pair[0] < n_frames for pair in pairs):
            raise InvalidArgument(f"the staged params of chunk {chunk_no} are not (frame index, "
                                  f"params) pairs with indices below {n_frames}")
        return [(index, params) for index, params in pairs]

    # -- reading --------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.client.exists(self.key))

    def spec(self) -> JobSpec:
        data = self.client.hget(self.key, "spec")
        if data is None:
            raise self.not_found()
        return JobSpec.unpack(data)

    def state(self) -> str | None:
        value = self.client.hget(self.key, "state")
        return value.decode() if value is not None else None

    def field(self, name: str) -> str | None:
        value = self.client.hget(self.key, name)
        return value.decode() if value is not None else None

    def progress(self) -> Progress:
        """State and counters; raises :class:`JobNotFound` when there is no record."""
        state, rendered, encoded, total = self.client.hmget(
            self.key, "state", "rendered", "encoded", "total"
        )
        if state is None:
            raise self.not_found()
        return Progress(state.decode(), int(rendered or 0), int(encoded or 0), int(total or 0))

    def ending(self) -> tuple[str, bytes | None, bytes | None]:
        """``(state, result json, error json)``; raises :class:`JobNotFound` when there is no record."""
        state, result, error = self.client.hmget(self.key, "state", "result", "error")
        if state is None:
            raise self.not_found()
        return state.decode(), result, error

    def stats(self) -> dict[str, float]:
        """Per-stage seconds (summed over workers) and other measurements of the job."""
        fields = self.client.hgetall(self.key)
        out = {key.decode()[5:]: float(value) for key, value in fields.items()
               if key.startswith(b"stat:")}
        if b"started" in fields:
            out["queue_wait"] = float(fields[b"started"]) - float(fields[b"created"])
        return out

    # -- counters workers keep ------------------------------------------------------------
    def add_encoded(self, n: int) -> None:
        self.client.hincrby(self.key, "encoded", n)

    def reset_encoded(self) -> None:
        self.client.hset(self.key, "encoded", 0)

    def mark_started(self) -> None:
        """Remember when the first chunk started (queue wait = that - created)."""
        self.client.hsetnx(self.key, "started", time.time())

    def add_seconds(self, seconds: dict[str, float]) -> None:
        """Add to the job's per-stage time counters (``stat:<stage>``, seconds summed over workers)."""
        with self.client.pipeline(transaction=False) as pipe:
            for stage, value in seconds.items():
                pipe.hincrbyfloat(self.key, f"stat:{stage}", value)
            pipe.execute()

    def set_stat(self, name: str, value: float) -> None:
        self.client.hset(self.key, f"stat:{name}", value)


def recent_job_ids(client: redis.Redis, limit: int = 20) -> list[str]:
    """Ids of the most recently submitted jobs, newest first."""
    return [raw.decode() for raw in client.zrevrange(JOB_INDEX, 0, limit - 1)]
