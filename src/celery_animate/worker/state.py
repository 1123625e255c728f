"""What a worker process keeps between tasks: its settings, its prepared figures, its start-up hooks.

Settings are read from the environment once per process (or given by the
embedded cluster). Each process keeps a :class:`~celery_animate.render.frame_loop.FigureCache`,
filled at process start for the animators named in ``CELERY_ANIMATE_PREWARM``
(and, on the embedded cluster, the job's own animator). :func:`install_hooks`
connects the Celery signals that do this; :func:`celery_animate.worker.app.create_app`
calls it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading

import matplotlib
from billiard.process import current_process
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

from celery_animate.cache import FrameCache, open_frame_cache
from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.encode.pvio_adapter import planned_codec
from celery_animate.frames import MACRO_BLOCK
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.job.watchdog import Watchdog
from celery_animate.render.frame_loop import FigureCache
from celery_animate.render.loading import import_animator_class, pack_attrs
from celery_animate.stores import FrameStore, open_frame_store

logger = logging.getLogger(__name__)

#: Figures set up in this process; survives across tasks, never across processes.
FIGURES = FigureCache()

#: ``(path, packed attrs)`` of animators to set up at process start, on top of
#: ``CELERY_ANIMATE_PREWARM``; the embedded cluster fills it before forking.
PREWARM: list[tuple[str, bytes]] = []

_settings: Settings | None = None
_store: FrameStore | None = None
_cache: FrameCache | None = None
_cache_opened = False


def settings() -> Settings:
    """This worker's settings: the environment's, unless :func:`configure` set others."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def configure(worker_settings: Settings, prewarm: list[tuple[str, bytes]]) -> None:
    """Use ``worker_settings`` and pre-warm ``prewarm`` in this worker (for the embedded cluster)."""
    global _settings, _store, _cache, _cache_opened
    _settings, _store, _cache, _cache_opened = worker_settings, None, None, False
    PREWARM[:] = prewarm


def job_record(job_id: str) -> JobRecord:
    """The record of ``job_id``; raises ``InvalidArgument`` for an id that is not one."""
    current = settings()
    return JobRecord(job_redis(current), job_id, current.job_ttl)


def frame_store() -> FrameStore:
    """The frame store this worker's own settings name (``CELERY_ANIMATE_FRAME_STORE``)."""
    global _store
    if _store is None:
        _store = open_frame_store(settings())
    return _store


def frame_cache() -> FrameCache | None:
    """The frame cache this worker's own settings name; None without ``CELERY_ANIMATE_CACHE_SECRET``
    (then jobs that ask for the cache are rendered and encoded in full)."""
    global _cache, _cache_opened
    if not _cache_opened:
        _cache, _cache_opened = open_frame_cache(settings()), True
    return _cache


@functools.lru_cache(maxsize=16)
def job_spec(job_id: str) -> JobSpec:
    # A job's spec never changes once written, so one read per process is enough.
    return job_record(job_id).spec()


#: Whether this worker consumes the render queue (one that only encodes never sets up a figure),
#: and the encode queue (one that does sees the output directory and removes ended jobs' data).
_renders = _encodes = True


def _on_worker_init(sender: object = None, **_: object) -> None:
    """In the worker's main process, before its pool starts: note its queues, warn about settings."""
    global _renders, _encodes
    current = settings()
    consumed = getattr(getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None),
                       "consume_from", None)
    if consumed:
        _renders = current.render_queue in consumed
        _encodes = current.encode_queue in consumed
    if current.embedded:
        return
    if not current.allowed_animators:
        logger.warning(
            "CELERY_ANIMATE_ALLOWED_ANIMATORS is not set: this worker will import any animator "
            "class a message names. Set it to your animators' module prefixes in production."
        )
    if not current.output_root:
        logger.warning(
            "CELERY_ANIMATE_OUTPUT_ROOT is not set: clients can have this worker write videos "
            "anywhere it can write. Set it to the directory videos belong in."
        )


def _prepare_process(**_: object) -> None:
    """At pool-process start: draw with Agg, and (in a worker that renders) run ``setup()`` once
    for each animator to pre-warm."""
    matplotlib.use("Agg")
    if _encodes:
        # Choosing the codec imports torch (about a second): do it now, beside whatever else
        # starts, rather than in front of the first segment of the first job.
        threading.Thread(target=_warm_encoder, name="warm-encoder", daemon=True).start()
    if not _renders:
        return
    current = settings()
    # A failure here is said once per worker, in one line (by its first pool process): every
    # process would repeat it, and a job that uses the animator fails with the full traceback.
    say = logger.warning if getattr(current_process(), "index", 0) == 0 else logger.debug
    targets = [(path, attrs, logger.debug) for path, attrs in PREWARM]  # a job's own: it reports
    for path in current.prewarm:
        try:
            targets.append((path, pack_attrs(import_animator_class(path, current.allowed_animators)()),
                            say))
        except Exception as exc:
            say("cannot pre-warm %s (CELERY_ANIMATE_PREWARM): %s: %s", path, type(exc).__name__,
                _first_line(exc))
    for path, attrs, report in targets:
        try:
            FIGURES.get(path, attrs, current.allowed_animators, pin=True)
        except Exception as exc:
            report("could not pre-warm animator %s (%s: %s); a job that uses it fails with the "
                   "whole traceback", path, type(exc).__name__, _first_line(exc))


def _warm_encoder() -> None:
    with contextlib.suppress(Exception):  # an encode without pvio says so itself
        planned_codec("auto", MACRO_BLOCK, MACRO_BLOCK)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


_watchdog: Watchdog | None = None


def _start_watchdog(sender: object = None, **_: object) -> None:
    """In the worker's main process, once it consumes (``sender`` is its consumer): fail jobs
    that stopped progressing, send again what the broker lost of them."""
    global _watchdog
    if _watchdog is None:
        cleaner = lifecycle.Cleaner(frame_store(), settings()) if _encodes else None
        _watchdog = Watchdog(settings(), cleaner, getattr(sender, "app", None))
        _watchdog.start()


def _stop_watchdog(**_: object) -> None:
    if _watchdog is not None:
        _watchdog.stop()


def install_hooks() -> None:
    """Connect the worker start-up hooks (idempotent: Celery dedupes by ``dispatch_uid``)."""
    worker_init.connect(_on_worker_init, dispatch_uid="celery_animate.init", weak=False)
    worker_process_init.connect(_prepare_process, dispatch_uid="celery_animate.prepare", weak=False)
    worker_ready.connect(_start_watchdog, dispatch_uid="celery_animate.job.watchdog", weak=False)
    worker_shutdown.connect(_stop_watchdog, dispatch_uid="celery_animate.job.watchdog", weak=False)
