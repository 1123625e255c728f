"""Where a render runs: in this process, on the configured cluster, or on an embedded one.

:meth:`celery_animate.Animator.make_video` and ``submit`` delegate here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from typing import Any

from celery_animate.client.embedded.cluster import EmbeddedCluster
from celery_animate.client.progress import follow, resolve_disable
from celery_animate.client.render_job import RenderJob
from celery_animate.client.serial import render_serial
from celery_animate.client.submit import submit_job
from celery_animate.config import Settings
from celery_animate.encode.pvio_adapter import require_pvio
from celery_animate.errors import ConfigurationError, InvalidArgument
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.paths import output_path, remove_partials
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.loading import animator_path, pack_attrs


def resolve_num_workers(num_workers: int) -> int:
    """parallel_animate's rule: ``-1`` all cores, ``-2`` all but one, ...; ``0`` is an error."""
    if isinstance(num_workers, bool) or not hasattr(num_workers, "__index__") or num_workers == 0:
        raise InvalidArgument(
            f"num_workers must be a positive int, or -1 for all cores, -2 for all but one, ...; "
            f"got {num_workers!r}"
        )
    num_workers = int(num_workers)
    if num_workers > 0:
        return num_workers
    return max(1, (os.cpu_count() or 1) + 1 + num_workers)


def make_video(animator: AnimatorBase, output_file: str | os.PathLike[str],
               param_by_frame: Iterable[Any], options: RenderOptions, *, n_frames: int | None,
               num_workers: int, preload_factor: int, disable_progress_bar: bool | None,
               settings: Settings, priority: int = 0) -> RenderResult:
    """Render and wait: see :meth:`celery_animate.Animator.make_video`."""
    workers = resolve_num_workers(num_workers)
    if workers == 1 or not settings.configured:
        require_pvio()  # this machine encodes: say what to install before rendering anything
    if workers == 1:
        return render_serial(animator, output_file, param_by_frame, n_frames, options, settings,
                             resolve_disable(disable_progress_bar))
    if settings.configured:
        job = submit_job(animator, output_file, param_by_frame, options, settings, n_frames=n_frames,
                         workers_hint=workers, chunks_per_worker=preload_factor, priority=priority)
        return _follow_or_cancel(job, disable_progress_bar)
    # The workers are forked from here, so they can set up this very instance
    # while the params are still being staged.
    prewarm = [(animator_path(animator), pack_attrs(animator))]
    with EmbeddedCluster(workers, settings, prewarm=prewarm) as cluster:
        job = submit_job(animator, output_file, param_by_frame, options, cluster.settings,
                         n_frames=n_frames, workers_hint=workers, chunks_per_worker=preload_factor)
        try:
            return _follow_or_cancel(job, disable_progress_bar, cluster.check_alive)
        except BaseException:
            # The workers die with the cluster, an encoder maybe mid-write: no encoder of
            # this job is left once it stopped, so its temporary files can go.
            cluster.stop()
            remove_partials(output_path(output_file, cluster.settings), job.id)
            raise


def submit(animator: AnimatorBase, output_file: str | os.PathLike[str],
           param_by_frame: Iterable[Any], options: RenderOptions, *, n_frames: int | None,
           num_workers: int, preload_factor: int, settings: Settings, priority: int = 0) -> RenderJob:
    """Enqueue and return at once: see :meth:`celery_animate.Animator.submit`."""
    if not settings.configured:
        raise ConfigurationError(
            "submit() needs a running cluster: set CELERY_BROKER_URL to its Redis "
            "(make_video() and `celery-animate render` start a private one instead)"
        )
    return submit_job(animator, output_file, param_by_frame, options, settings, n_frames=n_frames,
                      workers_hint=resolve_num_workers(num_workers),
                      chunks_per_worker=preload_factor, priority=priority)


def _follow_or_cancel(job: RenderJob, disable_progress_bar: bool | None,
                      check: Callable[[], None] | None = None) -> RenderResult:
    """Show progress until the job ends; if we stop following first (Ctrl-C, a dead
    embedded worker), cancel the job so workers stop and its frames are deleted."""
    try:
        return follow(job, disable_progress_bar, check=check)
    except BaseException:
        with contextlib.suppress(Exception):
            job.cancel()
        raise
