"""Where a render runs: in this process, on the configured cluster, or on an embedded one.

:meth:`celery_animate.Animator.make_video` and ``submit`` delegate here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from typing import Any

from celery_animate.client.embedded.cluster import EmbeddedCluster
from celery_animate.client.local_cache import KeptVideo, local_cache_settings
from celery_animate.client.local_rerun import finish_here
from celery_animate.client.progress import follow, resolve_disable
from celery_animate.client.render_job import RenderJob
from celery_animate.client.serial import render_serial
from celery_animate.client.submit import submit_job
from celery_animate.config import Settings
from celery_animate.encode.pvio_adapter import require_pvio
from celery_animate.errors import ConfigurationError, InvalidArgument
from celery_animate.formats import MP4, format_of
from celery_animate.job import lifecycle
from celery_animate.job.messages import LOWEST_PRIORITY
from celery_animate.options import RenderOptions, RenderResult, as_int, as_priority
from celery_animate.params import check_param_by_frame
from celery_animate.paths import output_list, output_path, resolve_output
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


def check_call(animator: AnimatorBase, output_file: str | os.PathLike[str], param_by_frame: Iterable[Any],
               options: RenderOptions, *, n_frames: int | None, num_workers: int, preload_factor: int,
               priority: int, settings: Settings) -> int:
    """The checks of a ``make_video`` or ``submit`` call that need no frame, the same whatever
    ``num_workers`` is and wherever the job runs; return the number of worker processes.

    Raises :class:`InvalidArgument` (a ``ValueError``) naming the bad argument: an animator that
    is not one or whose class workers cannot import, ``options`` that are not
    :class:`RenderOptions`, ``num_workers``, ``preload_factor``, ``priority``, ``n_frames``,
    ``param_by_frame`` (not an ordered iterable; a list that is empty or shorter than
    ``n_frames``), and ``output_file``; :class:`OutputPathRefused` for an output that cannot be
    written. What needs the frames themselves is checked as they are read (``render_serial``,
    ``enqueue``), still before anything is rendered or enqueued.
    """
    if not isinstance(animator, AnimatorBase):
        raise InvalidArgument(
            f"animator must be a celery_animate.Animator, got {type(animator).__qualname__}")
    if not isinstance(options, RenderOptions):
        raise InvalidArgument(f"options must be RenderOptions, got {type(options).__qualname__}")
    workers = resolve_num_workers(num_workers)
    as_int(preload_factor, "preload_factor", minimum=1)
    as_priority(priority, LOWEST_PRIORITY)
    check_param_by_frame(param_by_frame, n_frames)
    for output in output_list(output_file):
        resolve_output(output, settings)
    animator_path(animator)  # a class defined in a function: no worker could import it
    return workers


def make_video(animator: AnimatorBase, output_file: str | os.PathLike[str] | list,
               param_by_frame: Iterable[Any], options: RenderOptions, *, n_frames: int | None,
               num_workers: int, preload_factor: int, disable_progress_bar: bool | None,
               settings: Settings, priority: int = 0, stills: Iterable[int] = ()) -> RenderResult:
    """Render and wait: see :meth:`celery_animate.Animator.make_video`.

    Every argument is checked first (:func:`check_call`); the animator's attributes and each
    frame's params are checked as on a cluster even when ``num_workers`` is 1.
    """
    workers = check_call(animator, output_file, param_by_frame, options, n_frames=n_frames,
                         num_workers=num_workers, preload_factor=preload_factor, priority=priority,
                         settings=settings)
    if workers == 1:
        return render_serial(animator, output_file, param_by_frame, n_frames, options, settings,
                             resolve_disable(disable_progress_bar), stills)
    if settings.configured:
        job = submit_job(animator, output_file, param_by_frame, options, settings, n_frames=n_frames,
                         workers_hint=workers, chunks_per_worker=preload_factor, priority=priority,
                         stills=stills)
        return _follow_or_cancel(job, disable_progress_bar)
    kept = None
    outputs, stills = output_list(output_file), list(stills)
    if options.cache:
        settings = local_cache_settings(settings)
        output = resolve_output(outputs[0], settings)
        # One local file: the caller can keep and publish it itself.
        if len(outputs) == 1 and not stills and "://" not in output:
            kept = KeptVideo.find(settings, animator, param_by_frame, n_frames, options, output)
            # Where the output is on this machine: under the output root when there is one.
            result = kept.publish(str(output_path(output, settings))) if kept is not None else None
            if result is None and kept is not None and format_of(output) == MP4:
                result = finish_here(kept, animator, options, output, settings,
                                     resolve_disable(disable_progress_bar))
                if result is not None:
                    kept.keep(result)
            if result is not None:
                return result
    # The workers are forked from here, so they can set up this very instance
    # while the params are still being staged.
    prewarm = [(animator_path(animator), pack_attrs(animator))]
    require_pvio()  # this machine encodes: say what to install before starting anything
    # Enqueued while the workers start: the messages wait in Redis for them.
    with EmbeddedCluster(workers, settings, prewarm=prewarm, wait_ready=False) as cluster:
        job = submit_job(animator, output_file, param_by_frame, options, cluster.settings,
                         n_frames=n_frames, workers_hint=workers, chunks_per_worker=preload_factor,
                         stills=stills)
        try:
            result = _follow_or_cancel(job, disable_progress_bar, cluster.check_alive)
        except BaseException:
            # The workers die with the cluster, an encoder maybe mid-write, and its Redis with
            # the job's frames: once it stopped, only the job's files beside the output are left.
            cluster.stop()
            for output in outputs:
                lifecycle.remove_files(os.fspath(output), job.id, cluster.settings)
            raise
    if kept is not None:
        kept.keep(result)
    return result


def submit(animator: AnimatorBase, output_file: str | os.PathLike[str] | list,
           param_by_frame: Iterable[Any], options: RenderOptions, *, n_frames: int | None,
           num_workers: int, preload_factor: int, settings: Settings, priority: int = 0,
           on_done: Any = None, webhook: str | None = None,
           stills: Iterable[int] = ()) -> RenderJob:
    """Enqueue and return at once: see :meth:`celery_animate.Animator.submit`."""
    workers = check_call(animator, output_file, param_by_frame, options, n_frames=n_frames,
                         num_workers=num_workers, preload_factor=preload_factor, priority=priority,
                         settings=settings)
    if not settings.configured:
        raise ConfigurationError(
            "submit() needs a running cluster: set CELERY_BROKER_URL to its Redis "
            "(make_video() and `celery-animate render` start a private one instead)"
        )
    return submit_job(animator, output_file, param_by_frame, options, settings, n_frames=n_frames,
                      workers_hint=workers, chunks_per_worker=preload_factor, priority=priority,
                      on_done=on_done, webhook=webhook, stills=stills)


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
