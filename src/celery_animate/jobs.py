"""Job records in Redis, and :class:`RenderJob`, the handle a client holds.

A job's record is one Redis hash, ``celery_animate:job:<id>``: its spec
(what to render and how to encode it), its state, and progress counters that
workers increment. Anyone who knows the id and the Redis URL can follow the
job: the process that submitted it, a later web request, or the CLI.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import redis.lock

from . import codec
from .config import Settings
from .errors import ConfigurationError, JobCancelled, JobNotFound, RenderFailed
from .store import redis_client

QUEUED, RENDERING, ENCODING, DONE, FAILED, CANCELLED = (
    "queued", "rendering", "encoding", "done", "failed", "cancelled",
)
TERMINAL_STATES = frozenset({DONE, FAILED, CANCELLED})

_JOB_INDEX = "celery_animate:jobs"

# Moves a job to a new state unless it already reached a terminal one, so a
# late or re-delivered task can never resurrect a failed or cancelled job.
# ARGV[1] optionally names the only state the move may start from.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return -1 end
if current == 'done' or current == 'failed' or current == 'cancelled' then return 0 end
if ARGV[1] ~= '' and current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

# Progress is kept per chunk and only ever raised, so a chunk delivered twice
# counts its frames once. Returns the job's state, which workers use to stop
# early when the job failed or was cancelled.
_CHUNK_PROGRESS = """
local field = 'chunk:' .. ARGV[1]
local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
local new = tonumber(ARGV[2])
if new > old then
  redis.call('HSET', KEYS[1], field, new)
  redis.call('HINCRBY', KEYS[1], 'rendered', new - old)
end
return redis.call('HGET', KEYS[1], 'state')
"""


VIDEO_MODES = ("auto", "gpu", "cpu")


@dataclass
class RenderOptions:
    """How frames are rendered and encoded; the ``make_video`` arguments of the same names.

    Raises ``ValueError`` on construction for values the encoder would reject.
    """

    fps: float
    video_mode: str = "auto"
    video_quality: int | None = None
    video_preset: str | None = None
    video_extra_ffmpeg_params: list[str] | None = None
    savefig_params: dict[str, Any] = field(default_factory=dict)
    reuse_figure_object: bool = True
    plotting_log_interval: int | None = None
    saving_log_interval: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not self.fps > 0:
            raise ValueError(f"fps must be a positive number of frames per second, got {self.fps!r}")
        if self.fps == float("inf"):
            raise ValueError("fps must be finite")
        if self.video_mode not in VIDEO_MODES:
            raise ValueError(
                f"video_mode must be one of {', '.join(VIDEO_MODES)}, got {self.video_mode!r}"
            )
        quality = self.video_quality
        if quality is not None and (
            isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 51
        ):
            raise ValueError(
                f"video_quality must be an int from 0 (best) to 51 (worst), or None, got {quality!r}"
            )
        extra = self.video_extra_ffmpeg_params
        if extra is not None and not (
            isinstance(extra, (list, tuple)) and all(isinstance(a, str) for a in extra)
        ):
            raise ValueError(f"video_extra_ffmpeg_params must be a list of str, got {extra!r}")
        for name in ("plotting_log_interval", "saving_log_interval"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        self.savefig_params = dict(self.savefig_params or {})
        codec.check_packable(self.savefig_params, "savefig_params")


@dataclass
class JobSpec:
    """Everything a worker needs to render and encode a job (msgpack-able)."""

    animator_path: str
    animator_attrs: bytes
    output: str
    n_frames: int
    n_chunks: int
    frame_store: str
    options: RenderOptions

    def pack(self) -> bytes:
        return codec.packb(asdict(self))

    @classmethod
    def unpack(cls, data: bytes) -> JobSpec:
        fields = codec.unpackb(data)
        fields["options"] = RenderOptions(**fields["options"])
        return cls(**fields)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a job: ``rendered``/``encoded`` frames out of ``total``."""

    state: str
    rendered: int
    encoded: int
    total: int

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class RenderResult:
    """What a finished job produced. ``size_bytes`` is the MP4's size on disk."""

    output: str
    n_frames: int
    width: int
    height: int
    fps: float
    encoder: str
    size_bytes: int
    encode_seconds: float


class JobRecord:
    """Reads and updates one job's hash. Used by clients and workers alike."""

    def __init__(self, client: redis.Redis, job_id: str, ttl: int = 7 * 24 * 3600):
        self.client = client
        self.job_id = job_id
        self.ttl = ttl
        self.key = f"celery_animate:job:{job_id}"

    def chunk_key(self, chunk_no: int) -> str:
        return f"{self.key}:chunk:{chunk_no}"

    # -- staging, before the job exists -------------------------------------------------
    def stage_chunk(self, chunk_no: int, frames: bytes, ttl: int) -> None:
        self.client.set(self.chunk_key(chunk_no), frames, ex=ttl)

    def load_chunk(self, chunk_no: int) -> list[tuple[int, Any]]:
        data = self.client.get(self.chunk_key(chunk_no))
        if data is None:
            raise LookupError(f"params of chunk {chunk_no} of job {self.job_id} have expired")
        return codec.unpackb(data)

    def delete_chunks(self, n_chunks: int) -> None:
        for start in range(0, n_chunks, 1000):
            keys = [self.chunk_key(k) for k in range(start, min(start + 1000, n_chunks))]
            self.client.unlink(*keys)

    # -- lifecycle ------------------------------------------------------------------------
    def create(self, spec: JobSpec) -> None:
        now = time.time()
        with self.client.pipeline() as pipe:
            pipe.hset(self.key, mapping={
                "spec": spec.pack(), "state": QUEUED, "total": spec.n_frames,
                "rendered": 0, "encoded": 0, "created": now, "output": spec.output,
            })
            pipe.expire(self.key, self.ttl)
            pipe.zadd(_JOB_INDEX, {self.job_id: now})
            pipe.zremrangebyscore(_JOB_INDEX, "-inf", now - self.ttl)  # their records expired
            pipe.execute()

    def exists(self) -> bool:
        return bool(self.client.exists(self.key))

    def spec(self) -> JobSpec:
        data = self.client.hget(self.key, "spec")
        if data is None:
            raise JobNotFound(f"no job {self.job_id!r} (never submitted, or its record expired)")
        return JobSpec.unpack(data)

    def state(self) -> str | None:
        value = self.client.hget(self.key, "state")
        return value.decode() if value is not None else None

    def transition(self, state: str, only_from: str | None = None, **fields: Any) -> bool:
        """Set ``state`` (and ``fields``) unless the job already ended; True if it changed.

        With ``only_from``, change it only if the job is in that state now.
        """
        args: list[Any] = [only_from or "", "state", state]
        for name, value in fields.items():
            args += [name, value]
        return self.client.eval(_TRANSITION, 1, self.key, *args) == 1

    def report_chunk(self, chunk_no: int, frames_done: int) -> str | None:
        """Record that chunk ``chunk_no`` has ``frames_done`` frames stored; return the job state."""
        state = self.client.eval(_CHUNK_PROGRESS, 1, self.key, chunk_no, frames_done)
        return state.decode() if state is not None else None

    def add_encoded(self, n: int) -> None:
        self.client.hincrby(self.key, "encoded", n)

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

    def stats(self) -> dict[str, float]:
        """Per-stage seconds (summed over workers) and other measurements of the job."""
        fields = self.client.hgetall(self.key)
        out = {key.decode()[5:]: float(value) for key, value in fields.items()
               if key.startswith(b"stat:")}
        if b"started" in fields:
            out["queue_wait"] = float(fields[b"started"]) - float(fields[b"created"])
        return out

    def reset_encoded(self) -> None:
        self.client.hset(self.key, "encoded", 0)

    def encoder_lock(self, ttl: float = 10.0) -> redis.lock.Lock:
        """The lock an encoder holds while it writes this job's video (expires ``ttl`` s after
        its last extension, so a crashed encoder blocks a retry only briefly)."""
        return self.client.lock(f"{self.key}:encoder", timeout=ttl, blocking=False,
                                thread_local=False)

    def fail(self, exc: BaseException) -> bool:
        error = {
            "type": type(exc).__qualname__ if type(exc).__module__ == "builtins"
            else f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        return self.transition(FAILED, error=json.dumps(error), finished=time.time())

    def finish(self, result: RenderResult) -> bool:
        return self.transition(DONE, result=json.dumps(asdict(result)), finished=time.time())

    def progress(self) -> Progress:
        state, rendered, encoded, total = self.client.hmget(
            self.key, "state", "rendered", "encoded", "total"
        )
        if state is None:
            raise JobNotFound(f"no job {self.job_id!r} (never submitted, or its record expired)")
        return Progress(state.decode(), int(rendered or 0), int(encoded or 0), int(total or 0))

    def outcome(self) -> RenderResult:
        """The result of a finished job; raises for a failed or cancelled one."""
        state, result, error = self.client.hmget(self.key, "state", "result", "error")
        if state is None:
            raise JobNotFound(f"no job {self.job_id!r} (never submitted, or its record expired)")
        state = state.decode()
        if state == DONE:
            return RenderResult(**json.loads(result))
        if state == FAILED:
            info = json.loads(error) if error else {"type": "Unknown", "message": "", "traceback": ""}
            raise RenderFailed(self.job_id, info["type"], info["message"], info["traceback"])
        if state == CANCELLED:
            raise JobCancelled(f"job {self.job_id} was cancelled")
        raise RuntimeError(f"job {self.job_id} has not finished (state {state})")


def job_redis(settings: Settings) -> redis.Redis:
    """The Redis that holds job records: the result backend."""
    url = settings.result_backend
    if not url:
        raise ConfigurationError(
            "no cluster configured: set CELERY_BROKER_URL (and optionally CELERY_RESULT_BACKEND) "
            "to a redis:// URL, or use `celery-animate render`, which starts a private one"
        )
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"CELERY_RESULT_BACKEND is {url!r}, but celery-animate keeps job state and progress "
            "in Redis: set it to a redis:// or rediss:// URL"
        )
    return redis_client(url)


def recent_job_ids(client: redis.Redis, limit: int = 20) -> list[str]:
    """Ids of the most recently submitted jobs, newest first."""
    return [raw.decode() for raw in client.zrevrange(_JOB_INDEX, 0, limit - 1)]


class RenderJob:
    """A submitted render. Cheap to create from an id: ``RenderJob(job_id)``.

    ``progress()`` and ``wait()`` read the job's record in Redis, so they work
    from any process that has the same ``CELERY_RESULT_BACKEND``.
    """

    def __init__(self, job_id: str, settings: Settings | None = None):
        self.id = job_id
        self.settings = settings or Settings.from_env()
        self._record = JobRecord(job_redis(self.settings), job_id, self.settings.job_ttl)

    def __repr__(self) -> str:
        return f"RenderJob({self.id!r})"

    def progress(self) -> Progress:
        """Current state and counters. Raises :class:`JobNotFound` for an unknown id."""
        return self._record.progress()

    def stats(self) -> dict[str, float]:
        """Where the time went: seconds per stage summed over workers (``setup``, ``render``,
        ``store_put``, ``store_get``, ``wait_for_frames``, ``encode``), ``queue_wait`` (submit
        to first chunk started), ``encoder_peak_rss_mb``."""
        return self._record.stats()

    def wait(self, timeout: float | None = None, poll: float = 0.1) -> RenderResult:
        """Block until the job ends; return its :class:`RenderResult`.

        Raises :class:`RenderFailed` (with the worker's exception type, message
        and traceback), :class:`JobCancelled`, or ``TimeoutError`` after
        ``timeout`` seconds (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.progress().finished:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} still running after {timeout} s")
            time.sleep(poll)
        return self._record.outcome()

    def cancel(self) -> bool:
        """Ask workers to stop this job; True if it was still running.

        Chunks not yet started are skipped, running ones stop at their next
        frame, and the job's frames are deleted; ``wait()`` then raises
        :class:`JobCancelled`.
        """
        return self._record.transition(CANCELLED, finished=time.time())
