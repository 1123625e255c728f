"""The per-process state of a worker: its settings, its prepared figures, its start-up hooks.

Each worker process keeps a :class:`~celery_animate.render.FigureCache`,
filled at process start for the animators named in ``CELERY_ANIMATE_PREWARM``
(and, on the embedded cluster, the job's own animator).
"""

from __future__ import annotations

import functools
import logging

from celery.signals import worker_init, worker_process_init

from .config import Settings
from .jobs import JobRecord, JobSpec, job_redis
from .render import FigureCache, import_animator_class, pack_attrs
from .store import FrameStore, open_frame_store

logger = logging.getLogger(__name__)

#: Figures set up in this process; survives across tasks, never across processes.
FIGURES = FigureCache()


_settings: Settings | None = None


def worker_settings() -> Settings:
    """This worker's settings: the environment's, unless :func:`configure_worker` set others."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def configure_worker(settings: Settings, prewarm: list[tuple[str, bytes]]) -> None:
    """Use ``settings`` and pre-warm ``prewarm`` in this worker (for the embedded cluster)."""
    global _settings
    _settings = settings
    PREWARM[:] = prewarm


def job_record(job_id: str) -> JobRecord:
    settings = worker_settings()
    return JobRecord(job_redis(settings), job_id, settings.job_ttl)


@functools.lru_cache(maxsize=8)
def frame_store(spec: str) -> FrameStore:
    return open_frame_store(spec, worker_settings())


@functools.lru_cache(maxsize=16)
def job_spec(job_id: str) -> JobSpec:
    # A job's spec never changes once written, so one read per process is enough.
    return job_record(job_id).spec()


@worker_init.connect
def _announce_allowlist(**_: object) -> None:
    settings = worker_settings()
    if not settings.allowed_animators and not settings.embedded:
        logger.warning(
            "CELERY_ANIMATE_ALLOWED_ANIMATORS is not set: this worker will import any animator "
            "class a message names. Set it to your animators' module prefixes in production."
        )


#: ``(path, packed attrs)`` of animators to set up at process start, on top of
#: ``CELERY_ANIMATE_PREWARM``; the embedded cluster fills it before forking.
PREWARM: list[tuple[str, bytes]] = []


@worker_process_init.connect
def _prewarm(**_: object) -> None:
    """Run ``setup()`` once, at process start, for each animator to pre-warm."""
    allowed = worker_settings().allowed_animators
    targets = list(PREWARM)
    for path in worker_settings().prewarm:
        try:
            targets.append((path, pack_attrs(import_animator_class(path, allowed)())))
        except Exception:
            logger.exception("cannot pre-warm %s: it does not import or instantiate", path)
    for path, attrs in targets:
        try:
            FIGURES.get(path, attrs, allowed, pin=True)
        except Exception:
            logger.exception("could not pre-warm animator %s; it will be set up on first use", path)


def delete_job_data(record: JobRecord, spec: JobSpec, store: FrameStore) -> None:
    """Remove a job's frames and staged params (and sweep a scratch directory of stale jobs)."""
    store.delete_job(record.job_id, spec.n_frames)
    record.delete_chunks(spec.n_chunks)
    sweep = getattr(store, "sweep", None)
    if sweep is not None:
        sweep()
