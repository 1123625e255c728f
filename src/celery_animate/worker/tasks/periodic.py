"""Periodic renders for Celery beat: a task that submits a render and keeps the newest few videos.

``config/beat_schedule.py`` schedules it; ``CELERY_ANIMATE_BEAT_SCHEDULE``
names that module so ``celery -A celery_animate beat`` picks it up.
"""

from __future__ import annotations

import importlib
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

from celery import shared_task

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument
from celery_animate.job.messages import PERIODIC_TASK
from celery_animate.job.submission import enqueue
from celery_animate.options import RenderOptions, as_int
from celery_animate.params import PARAMS_FUNCTION
from celery_animate.paths import is_url, output_path
from celery_animate.render.loading import animator_path, import_animator_class, pack_attrs
from celery_animate.worker import state as worker_state

logger = logging.getLogger(__name__)

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,99}")
_STAMP = "%Y%m%dT%H%M%SZ"
_STAMPED = re.compile(r"\d{8}T\d{6}Z\.mp4")


def check_prefix(prefix: object) -> str:
    """A periodic video's name stem: letters, digits, ``_`` and ``.``, no path; else InvalidArgument."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or ".." in prefix:
        raise InvalidArgument(
            f"periodic prefix {prefix!r} must be a plain file-name stem (letters, digits, '_', '.')")
    return prefix


def prune(directory: Path, prefix: str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``<prefix>-<UTC stamp>.mp4`` in ``directory``; return what went.

    Only files of exactly the name this task writes are considered, and only
    plain files (a symlink of that name is left alone).
    """
    check_prefix(prefix)
    keep = as_int(keep, "keep", minimum=0)
    videos = sorted(
        (entry for entry in directory.iterdir()
         if entry.name.startswith(f"{prefix}-") and _STAMPED.fullmatch(entry.name[len(prefix) + 1:])
         and entry.is_file() and not entry.is_symlink()),
        key=lambda p: p.name, reverse=True)
    for old in videos[keep:]:
        old.unlink(missing_ok=True)
    return videos[keep:]


def periodic_directory(output_dir: object, settings: Settings) -> Path:
    """The local directory periodic videos of ``output_dir`` go to, within the output root.
    Raises :class:`InvalidArgument` for an object-store URL (pruning the oldest needs a
    directory) and what :func:`~celery_animate.paths.output_path` raises for a refused path."""
    if not isinstance(output_dir, str) or is_url(output_dir):
        raise InvalidArgument(
            f"periodic renders write to a directory of the encode workers, not {output_dir!r}: "
            "give a path under CELERY_ANIMATE_OUTPUT_ROOT (object-store prefixes are not "
            "supported for periodic renders)")
    return output_path(output_dir, settings)


@shared_task(name=PERIODIC_TASK, bind=True)
def render_periodic(self, animator: str, output_dir: str, n_frames: int, fps: float = 30,
                    keep: int = 24, prefix: str | None = None) -> dict:
    """Render ``animator`` (``module:Class``, params from the module's ``param_by_frame``)
    to ``<output_dir>/<prefix>-<UTC timestamp>.mp4`` and keep only the ``keep`` newest.

    The render itself runs as an ordinary job; this task only submits it.
    """
    settings = worker_state.settings()
    cls = import_animator_class(animator, settings.allowed_animators)
    n_frames = as_int(n_frames, "n_frames", minimum=1)
    prefix = check_prefix(prefix or cls.__name__)
    make_params = getattr(importlib.import_module(cls.__module__), PARAMS_FUNCTION)
    stamp = datetime.now(timezone.utc).strftime(_STAMP)
    directory = periodic_directory(output_dir, settings)
    directory.mkdir(parents=True, exist_ok=True)
    # Timestamps sort by name: pruning before this job writes keeps keep-1 old ones plus it.
    prune(directory, prefix, max(as_int(keep, "keep", minimum=0) - 1, 0))
    output = str(directory / f"{prefix}-{stamp}.mp4")
    instance = cls()
    job_id = enqueue(self.app, settings, animator_path(instance), pack_attrs(instance), output,
                     make_params(n_frames), RenderOptions(fps=fps), n_frames=n_frames)
    logger.info("periodic render of %s submitted as job %s", animator, job_id)
    return {"job": job_id, "output": output}
