"""Periodic renders for Celery beat: a task that submits a render and keeps the newest few videos.

``config/beat_schedule.py`` schedules it; ``CELERY_ANIMATE_BEAT_SCHEDULE``
names that module so ``celery -A celery_animate beat`` picks it up.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime, timezone
from pathlib import Path

from celery import shared_task

from .celery_app import PERIODIC_TASK
from .jobs import RenderOptions
from .params import PARAMS_FUNCTION
from .pipeline import output_path, submit_job
from .render import import_animator_class

logger = logging.getLogger(__name__)


def prune(directory: Path, prefix: str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``<prefix>-*.mp4`` in ``directory``; return what went."""
    videos = sorted(directory.glob(f"{prefix}-*.mp4"), key=lambda p: p.name, reverse=True)
    for old in videos[keep:]:
        old.unlink(missing_ok=True)
    return videos[keep:]


@shared_task(name=PERIODIC_TASK)
def render_periodic(animator: str, output_dir: str, n_frames: int, fps: float = 30,
                    keep: int = 24, prefix: str | None = None) -> dict:
    """Render ``animator`` (``module:Class``, params from the module's ``param_by_frame``)
    to ``<output_dir>/<prefix>-<UTC timestamp>.mp4`` and keep only the ``keep`` newest.

    The render itself runs as an ordinary job; this task only submits it.
    """
    from .worker import worker_settings

    settings = worker_settings()
    cls = import_animator_class(animator, settings.allowed_animators)
    make_params = getattr(importlib.import_module(cls.__module__), PARAMS_FUNCTION)
    prefix = prefix or cls.__name__
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    directory = output_path(output_dir, settings)
    directory.mkdir(parents=True, exist_ok=True)
    # Timestamps sort by name: pruning before this job writes keeps keep-1 old ones plus it.
    prune(directory, prefix, max(keep - 1, 0))
    job = submit_job(cls(), str(directory / f"{prefix}-{stamp}.mp4"), make_params(n_frames),
                     RenderOptions(fps=fps), settings, n_frames=n_frames)
    logger.info("periodic render of %s submitted as job %s", animator, job.id)
    return {"job": job.id, "output": str(directory / f"{prefix}-{stamp}.mp4")}
