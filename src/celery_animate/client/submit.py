"""Submitting a job from a client: check the animator and the output, then enqueue it.

What the workers would refuse (an animator outside the allowed modules, one
defined in ``__main__``, an output they may not write) is refused here, before
anything is staged; :func:`celery_animate.job.submission.enqueue` does the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from celery_animate.client.render_job import RenderJob
from celery_animate.config import Settings
from celery_animate.errors import ConfigurationError
from celery_animate.job.submission import enqueue
from celery_animate.options import RenderOptions
from celery_animate.paths import output_list, resolve_output
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.loading import animator_path, check_allowed, pack_attrs
from celery_animate.worker.app import app_for


def submit_job(
    animator: AnimatorBase,
    output_file: str | os.PathLike[str],
    param_by_frame: Iterable[Any],
    options: RenderOptions,
    settings: Settings,
    *,
    n_frames: int | None = None,
    workers_hint: int = 2,
    chunks_per_worker: int = 8,
    priority: int = 0,
    on_done: Any = None,
    webhook: str | None = None,
    stills: Iterable[int] = (),
) -> RenderJob:
    """Validate and enqueue a render; return at once with its :class:`RenderJob`.

    ``workers_hint`` and ``chunks_per_worker`` only size the chunks. Only an
    embedded cluster (``settings.embedded``), whose workers were forked from
    this process, can use an animator class defined in ``__main__``.
    Raises ``ValueError``/``TypeError`` for bad params, ``ConfigurationError``
    for a cluster that cannot run this animator. ``on_done`` and ``webhook`` announce the
    job's end (see :func:`celery_animate.job.submission.enqueue`). ``output_file`` may list
    several outputs, all encoded from one render; ``stills`` are frames kept as PNGs.
    """
    path = animator_path(animator)
    if path.startswith("__main__:") and not settings.embedded:
        raise ConfigurationError(
            f"{type(animator).__qualname__} is defined in the script being run (__main__), which "
            "workers of a remote cluster cannot import. Move the class into a module that is "
            "installed on the workers and import it from there, or unset CELERY_BROKER_URL to "
            "render on the embedded cluster."
        )
    # The workers would refuse it; saying so now costs the user nothing.
    check_allowed(path, settings.allowed_animators)
    attrs = pack_attrs(animator)
    output, *extra = [resolve_output(o, settings) for o in output_list(output_file)]
    job_id = enqueue(app_for(settings), settings, path, attrs, output, param_by_frame, options,
                     n_frames=n_frames, workers_hint=workers_hint,
                     chunks_per_worker=chunks_per_worker, priority=priority,
                     on_done=on_done, webhook=webhook, extra_outputs=extra, stills=list(stills))
    return RenderJob(job_id, settings)
