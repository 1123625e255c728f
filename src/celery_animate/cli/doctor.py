"""``celery-animate doctor``: is the cluster able to render and encode? One sentence per problem."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from celery_animate.client.embedded.redis_server import find_redis_server
from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.encode.pvio_adapter import installed
from celery_animate.errors import ConfigurationError
from celery_animate.ids import new_job_id
from celery_animate.stores import SpillingFrameStore, open_frame_store
from celery_animate.worker.app import PROBE_TASK, app_for
from celery_animate.worker.tasks.probe import ANIMATOR_PROBE_TASK


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class SharedNodeName(ConfigurationError):
    """Two or more workers answer under one node name: a problem, though the checks after it
    (which reach workers through their queues) still mean something."""


def _broker(settings: Settings, app) -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
    return f"reachable at {conn.as_uri()}"


def _backend(settings: Settings, app) -> str:
    job_redis(settings).ping()
    return "job state and progress can be stored"


def _frame_store(settings: Settings, app) -> str:
    store = open_frame_store(settings)
    # A spilling store writes to its second folder only when the first is full: try each.
    for part in (store.fast, store.spill) if isinstance(store, SpillingFrameStore) else (store,):
        probe = new_job_id()  # a made-up job: its one frame is this check's own, not a job's data
        try:
            part.put(probe, 0, b"probe")
            if part.get_many(probe, [0]) != [b"probe"]:
                raise RuntimeError("a frame written to it could not be read back")
        finally:
            part.delete(probe, [0])
    spill = f", and spill into {settings.frame_spill!r}" if settings.frame_spill else ""
    return f"{settings.frame_store!r} can store and return frames{spill}"


def _queues(settings: Settings, app) -> str:
    # One reply per worker process, as a list: Celery's inspect() keys them by node name, so of
    # two workers sharing one name (both started without --hostname on one machine) it would
    # keep only one, and report the other's queues as unconsumed.
    replies = app.control.broadcast("active_queues", reply=True, timeout=2) or []
    per_queue: dict[str, list[str]] = {}
    names: Counter[str] = Counter()
    for reply in replies:
        for worker, queues in reply.items():
            names[worker] += 1
            for queue in queues or ():
                per_queue.setdefault(queue["name"], []).append(worker)
    missing = [q for q in (settings.render_queue, settings.encode_queue) if q not in per_queue]
    if missing:
        raise RuntimeError(
            f"no worker consumes queue(s) {', '.join(missing)}: start one with "
            f"`celery -A celery_animate worker -Q {','.join(missing)} "
            f"--hostname {missing[0]}@%h`"
        )
    found = "; ".join(f"{q}: {len(per_queue[q])} worker(s)"
                      for q in (settings.render_queue, settings.encode_queue))
    shared = sorted(name for name, count in names.items() if count > 1)
    if shared:
        raise SharedNodeName(
            f"{found}, but {' and '.join(f'{names[n]} workers' for n in shared)} answer as "
            f"{', '.join(shared)}: workers on one machine need a node name each, or Celery mixes "
            "up their replies; start them with --hostname, e.g. `celery -A celery_animate worker "
            f"-Q {settings.render_queue} --hostname render@%h` and `-Q {settings.encode_queue} "
            "--hostname gpu@%h`")
    return found


def _wait_for(result, what: str, seconds: float = 30):
    """The task's return value, once ``result`` is ready, removed from the backend then; after
    ``seconds`` without it, RuntimeError saying ``what`` ("no ... worker answered")."""
    deadline = time.monotonic() + seconds
    while not result.ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {seconds:.0f} s")
        time.sleep(0.1)
    info = result.result
    result.forget()
    return info


def _animator(path: str) -> Callable[[Settings, object], str]:
    """The check that a render worker can import the animator ``path`` (``module:Class``)."""
    def check(settings: Settings, app) -> str:
        result = app.signature(ANIMATOR_PROBE_TASK, args=(path,), queue=settings.render_queue).apply_async()
        info = _wait_for(result, f"no render worker answered on queue {settings.render_queue}")
        if isinstance(info, Exception):
            raise info
        where = f"on {info['host']} (a render worker started in {info['cwd']})"
        if not info["ok"]:
            raise ConfigurationError(f"{where}: {info['error']}")
        return f"{path} imports {where} from {info['file']}"
    return check


def _nvenc(settings: Settings, app) -> str:
    result = app.signature(PROBE_TASK, queue=settings.encode_queue).apply_async()
    info = _wait_for(result, f"no encode worker answered on queue {settings.encode_queue}")
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


#: What to do, after the error, when a check fails with a message that does not say.
ADVICE = {
    "broker": "start Redis there, or fix CELERY_BROKER_URL (unset it to use the embedded default)",
    "result backend": "start Redis there, or fix CELERY_RESULT_BACKEND",
    "frame store": "fix CELERY_ANIMATE_FRAME_STORE on the workers: a redis:// URL, or a file:// "
                   "directory that every worker shares (and CELERY_ANIMATE_FRAME_SPILL, if set: "
                   "a file:// directory)",
    "workers": "start them with `celery -A celery_animate worker -Q render --hostname render@%h` "
               "and `-Q gpu --hostname gpu@%h`",
    "encoder": "see the encode workers' logs",
    "animator": "see the render workers' logs",
}

#: The checks that reach workers, which are skipped when one before them failed.
_NEED_WORKERS = ("workers", "encoder", "animator")


def run_checks(settings: Settings, animator: str | None = None) -> list[Check]:
    """Every check of a configured cluster, in order; a check that needs a failed one is
    reported as skipped. Each problem's detail ends with what to do. With ``animator``
    (``module:Class``), also whether a render worker can import it."""
    app = app_for(settings)
    checks = CHECKS + ([("animator", _animator(animator))] if animator else [])
    results: list[Check] = []
    blocked = False  # a failed check that the ones reaching workers depend on
    for name, check in checks:
        if blocked and name in _NEED_WORKERS:
            results.append(Check(name, False, "skipped: fix the problems above first"))
            continue
        try:
            results.append(Check(name, True, check(settings, app)))
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            if not any(what_to_do in detail for what_to_do in ("install", "start one", "set ", "--hostname")):
                detail = f"{detail.rstrip('.')}; {ADVICE[name]}"
            results.append(Check(name, False, detail))
            blocked = blocked or (name not in ("encoder", "animator") and not isinstance(exc, SharedNodeName))
    return results


def embedded_checks() -> list[Check]:
    """What the embedded default needs on this machine: a redis-server, the encoder, ffmpeg."""
    checks = []
    try:
        checks.append(Check("redis-server", True, find_redis_server()))
    except FileNotFoundError as exc:
        checks.append(Check("redis-server", False, str(exc)))
    if installed("pvio"):
        checks.append(Check("encoder", True, "parallel-video-io is installed"))
    else:
        checks.append(Check("encoder", False, "parallel-video-io is not installed, so videos cannot "
                            "be encoded here: install it with `pip install 'celery-animate[encode]'`"))
    checks.append(_ffmpeg())
    return checks


def _ffmpeg() -> Check:
    if not installed("imageio_ffmpeg"):
        return Check("ffmpeg", False, "imageio-ffmpeg is not installed: it comes with "
                     "`pip install 'celery-animate[encode]'`")
    import imageio_ffmpeg  # only here: finding the binary is all doctor needs it for

    try:
        return Check("ffmpeg", True, imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        return Check("ffmpeg", False, f"{exc}: install ffmpeg, or set IMAGEIO_FFMPEG_EXE to one")
