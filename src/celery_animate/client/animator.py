"""The user-facing :class:`Animator`, compatible with ``parallel_animate.Animator``.

Subclass it, build the figure in ``setup()``, change the data in
``update(frame_idx, params)``, then call ``make_video`` (blocking) or
``submit`` (returns a :class:`RenderJob` at once).

Unlike parallel_animate, the animator is not pickled: workers import its
class by name and restore its instance attributes from msgpack, so those
attributes must be plain data (numbers, strings, lists, dicts, numpy arrays).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from celery_animate.client import dispatch as client
from celery_animate.client.render_job import RenderJob
from celery_animate.config import Settings
from celery_animate.formats import STILLS, format_of, stills_frames
from celery_animate.options import RenderOptions, RenderResult, select_frames
from celery_animate.params import IndexedFrameParams
from celery_animate.paths import output_list
from celery_animate.render.animator_base import AnimatorBase

__all__ = ["Animator", "IndexedFrameParams"]


class Animator(AnimatorBase):
    """Base class for a matplotlib animation rendered frame by frame on many processes.

    Subclass it and implement ``setup()`` and ``update()`` (see
    :class:`~celery_animate.render.animator_base.AnimatorBase`); each worker process calls
    ``setup()`` once and then ``update()`` for every frame it renders.
    """

    def make_video(
        self,
        output_file: Path | str | list[Path | str],
        param_by_frame: Iterable[Any],
        fps: int,
        n_frames: int | None = None,
        num_workers: int = -1,
        disable_progress_bar: bool | None = None,
        plotting_log_interval: int | None = None,
        saving_log_interval: int | None = None,
        savefig_params: dict[str, Any] | None = None,
        video_mode: str = "auto",
        video_quality: int | None = None,
        video_preset: str | None = None,
        video_extra_ffmpeg_params: list[str] | None = None,
        reuse_figure_object: bool = True,
        preload_factor: int = 8,
        blit: bool = True,
        priority: int = 0,
        settings: Settings | None = None,
        frames: range | slice | None = None,
        cache: bool | None = None,
        stills: Iterable[int] = (),
    ) -> RenderResult:
        """Render the animation to ``output_file`` and wait for it.

        The output's extension chooses the format: ``.mp4`` (and any other) an H.264
        MP4, ``.gif`` a GIF (one palette from all frames; its frame rate rounded to
        whole hundredths of a second per frame, as GIF requires: the result's ``fps``
        says what was written), ``.webm`` a VP9 WebM (``video_quality`` is its crf,
        0-63), ``.zip`` a zip of one PNG per frame (``00000.png``, ...). A list of
        outputs (``["run.mp4", "run.gif"]``) renders the frames once and encodes each
        output from them; ``RenderResult.outputs`` lists them, the first is ``output``.
        ``stills=[0, 299]`` also keeps those frames (animation indices) as full-size PNGs
        beside the first output (``run-00000.png``, ``run-00299.png``), listed in
        ``RenderResult.stills``.
        ``frames`` (a ``range`` or ``slice`` of the animation's frame indices, such as
        ``range(0, 600, 10)``) renders only those frames of ``param_by_frame`` (a
        sequence then), each drawn by ``update()`` with its own index: for previews, or
        to redo a range.

        ``cache=True`` (default: ``CELERY_ANIMATE_CACHE``) takes every frame whose inputs were
        rendered before from the workers' frame cache instead of drawing it, and every encoded
        segment whose frames and settings were encoded before; a run that changed nothing on
        the embedded cluster takes the whole video from the cache without starting it. What
        the key covers, and what it cannot see, is in "The frame cache" in the docs. It needs
        workers with ``CELERY_ANIMATE_CACHE_SECRET`` (the embedded cluster makes one) and
        ``num_workers`` above 1.

        Parameters mean what they mean in ``parallel_animate``. ``num_workers=1``
        renders in this process; otherwise, with ``CELERY_BROKER_URL`` set the
        job runs on that cluster, and without it on an embedded cluster of
        ``num_workers`` processes started (and stopped) for this call.
        ``preload_factor`` is the number of chunks each worker gets on average.
        ``blit=False`` draws every frame in full instead of from the first
        artist ``update()`` changed (the frames are the same; see "Writing fast animators" in the docs).

        Returns a :class:`RenderResult`. Raises ``ValueError`` (:class:`InvalidArgument`,
        naming the argument) for bad arguments and :class:`UnpackableError` (a ``TypeError``)
        for an attribute or a frame's params that workers could not receive, whatever
        ``num_workers`` is, before any frame is rendered (a generator's bad frame: before it
        is rendered, and nothing is encoded); :class:`RenderFailed` when a worker failed (with
        its exception type, message and traceback).
        """
        settings = settings or Settings.from_env()
        options = RenderOptions(
            fps=fps, video_mode=video_mode, video_quality=video_quality,
            video_preset=video_preset, video_extra_ffmpeg_params=video_extra_ffmpeg_params,
            savefig_params=savefig_params or {}, reuse_figure_object=reuse_figure_object,
            plotting_log_interval=plotting_log_interval, saving_log_interval=saving_log_interval,
            blit=blit, cache=_use_cache(cache, settings),
        )
        stills = list(stills)
        frames = _frames_to_render(output_file, param_by_frame, frames, stills)
        if frames is not None:
            param_by_frame, options.frame_start, options.frame_step = select_frames(
                param_by_frame, frames, n_frames)
            n_frames = None
        return client.make_video(self, output_file, param_by_frame, options, n_frames=n_frames,
                                 num_workers=num_workers, preload_factor=preload_factor,
                                 disable_progress_bar=disable_progress_bar, priority=priority,
                                 settings=settings, stills=stills)

    def submit(
        self,
        output_file: Path | str | list[Path | str],
        param_by_frame: Iterable[Any],
        fps: int,
        n_frames: int | None = None,
        savefig_params: dict[str, Any] | None = None,
        video_mode: str = "auto",
        video_quality: int | None = None,
        video_preset: str | None = None,
        video_extra_ffmpeg_params: list[str] | None = None,
        reuse_figure_object: bool = True,
        plotting_log_interval: int | None = None,
        saving_log_interval: int | None = None,
        num_workers: int = -1,
        preload_factor: int = 8,
        blit: bool = True,
        priority: int = 0,
        settings: Settings | None = None,
        frames: range | slice | None = None,
        cache: bool | None = None,
        stills: Iterable[int] = (),
        on_done: Any = None,
        webhook: str | None = None,
    ) -> RenderJob:
        """Enqueue the render on the configured cluster and return its :class:`RenderJob` at once.

        Needs ``CELERY_BROKER_URL`` (or ``settings``). ``num_workers`` and
        ``preload_factor`` only size the chunks here. ``priority`` is Celery's
        on Redis, 0 (served first, the default) to 9 (last): give interactive
        renders 0 and nightly batches a higher number. Whatever the priority,
        a job's later chunks step down behind other jobs' first ones, so a
        short job never waits for a long one to finish rendering. Raises ``ValueError``
        (:class:`InvalidArgument`) for bad arguments or params and :class:`UnpackableError`
        (a ``TypeError``) for what cannot be sent, before anything is enqueued.

        When the job ends (done, failed or cancelled) it is announced once, by each of:
        ``on_done``, a Celery signature of your own task with its queue set
        (``my_task.s().set(queue="mine")``), sent by name with one more first argument, a
        dict (``job_id``, ``state``, ``output``, ``url``, ``n_frames``, ``seconds``, and
        ``error_type``/``error_message`` for a failure), as JSON; and ``webhook``, a URL
        under a prefix of ``CELERY_ANIMATE_WEBHOOK_ALLOW``, which gets that dict POSTed as
        JSON, signed (see "Web apps" in the docs). ``RenderJob.webhook_status()``
        tells how the delivery went. Raises :class:`InvalidArgument` for a signature with
        other options or no queue, and for a webhook outside the allowed prefixes.
        ``frames``, ``cache``, ``stills``, several outputs and the output's format are as
        for :meth:`make_video`.
        """
        settings = settings or Settings.from_env()
        options = RenderOptions(
            fps=fps, video_mode=video_mode, video_quality=video_quality,
            video_preset=video_preset, video_extra_ffmpeg_params=video_extra_ffmpeg_params,
            savefig_params=savefig_params or {}, reuse_figure_object=reuse_figure_object,
            plotting_log_interval=plotting_log_interval, saving_log_interval=saving_log_interval,
            blit=blit, cache=_use_cache(cache, settings),
        )
        stills = list(stills)
        frames = _frames_to_render(output_file, param_by_frame, frames, stills)
        if frames is not None:
            param_by_frame, options.frame_start, options.frame_step = select_frames(
                param_by_frame, frames, n_frames)
            n_frames = None
        return client.submit(self, output_file, param_by_frame, options, n_frames=n_frames,
                             num_workers=num_workers, preload_factor=preload_factor,
                             priority=priority, settings=settings,
                             on_done=on_done, webhook=webhook, stills=stills)


def _frames_to_render(output_file: Any, param_by_frame: Any, frames: range | slice | None,
                      stills: list[int]) -> range | slice | None:
    """``frames``, or for a job of stills only (a ``.png`` output) with params in a sequence,
    the frames its stills need (:func:`stills_frames`): the rest would be drawn for nothing."""
    outputs = output_list(output_file)
    if (frames is not None or len(outputs) != 1 or not isinstance(outputs[0], str | os.PathLike)
            or format_of(outputs[0]) != STILLS or not stills
            or not all(type(k) is int and k >= 0 for k in stills)
            or not isinstance(param_by_frame, Sequence | np.ndarray)):
        return frames
    return stills_frames(stills)


def _use_cache(cache: bool | None, settings: Settings) -> bool:
    """``cache``, or the settings' default (``CELERY_ANIMATE_CACHE``) when it is None."""
    return settings.cache_default if cache is None else cache
