"""``celery-animate doctor``: is the cluster able to render and encode? One sentence per problem."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .app import PROBE_TASK, app_for
from .config import Settings
from .connection import job_redis
from .ids import new_job_id
from .stores import open_frame_store


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _broker(settings: Settings, app) -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
    return f"reachable at {conn.as_uri()}"


def _backend(settings: Settings, app) -> str:
    job_redis(settings).ping()
    return "job state and progress can be stored"


def _frame_store(settings: Settings, app) -> str:
    store = open_frame_store(settings)
    probe = new_job_id()
    try:
        store.put(probe, 0, b"probe")
        if store.get_many(probe, [0]) != [b"probe"]:
            raise RuntimeError("a frame written to it could not be read back")
    finally:
        store.delete_job(probe, 1)
    return f"{settings.frame_store!r} can store and return frames"


def _queues(settings: Settings, app) -> str:
    replies = app.control.inspect(timeout=2).active_queues() or {}
    per_queue: dict[str, list[str]] = {}
    for worker, queues in replies.items():
        for queue in queues:
            per_queue.setdefault(queue["name"], []).append(worker)
    missing = [q for q in (settings.render_queue, settings.encode_queue) if q not in per_queue]
    if missing:
        raise RuntimeError(
            f"no worker consumes queue(s) {', '.join(missing)}: start one with "
            f"`celery -A celery_animate worker -Q {','.join(missing)}`"
        )
    return "; ".join(f"{q}: {len(per_queue[q])} worker(s)"
                     for q in (settings.render_queue, settings.encode_queue))


def _nvenc(settings: Settings, app) -> str:
    result = app.signature(PROBE_TASK, queue=settings.encode_queue).apply_async()
    deadline = time.monotonic() + 30
    while not result.ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no encode worker answered on queue {settings.encode_queue} within 30 s")
        time.sleep(0.1)
    info = result.result
    result.forget()
    if isinstance(info, Exception):
        raise RuntimeError(f"the encoder probe failed on the worker: {info}")
    if not info["pvio"]:
        raise RuntimeError("the encode worker lacks parallel-video-io: install celery-animate[encode] there")
    if info["cuda"] and info["nvenc_ffmpeg"]:
        return f"NVENC available (ffmpeg at {info['nvenc_ffmpeg']})"
    if not info["cuda"]:
        return "no CUDA device on the encode worker: videos are encoded with libx264 on its CPU"
    return ("a CUDA device but no NVENC-capable ffmpeg on the encode worker: install one "
            "(e.g. Debian's ffmpeg) or set IMAGEIO_FFMPEG_EXE; encoding uses libx264 meanwhile")


CHECKS: list[tuple[str, Callable[[Settings, object], str]]] = [
    ("broker", _broker),
    ("result backend", _backend),
    ("frame store", _frame_store),
    ("workers", _queues),
    ("encoder", _nvenc),
]


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; a check that needs a failed one is reported as skipped."""
    app = app_for(settings)
    results: list[Check] = []
    for name, check in CHECKS:
        if results and not results[-1].ok and name in ("workers", "encoder"):
            results.append(Check(name, False, "skipped: fix the problems above first"))
            continue
        try:
            results.append(Check(name, True, check(settings, app)))
        except Exception as exc:
            results.append(Check(name, False, str(exc) or type(exc).__name__))
    return results
