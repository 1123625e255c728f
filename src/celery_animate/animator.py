"""The user-facing :class:`Animator`, compatible with ``parallel_animate.Animator``.

Subclass it, build the figure in ``setup()``, change the data in
``update(frame_idx, params)``, then call ``make_video`` (blocking) or
``submit`` (returns a :class:`RenderJob` at once).

Unlike parallel_animate, the animator is not pickled: workers import its
class by name and restore its instance attributes from msgpack, so those
attributes must be plain data (numbers, strings, lists, dicts, numpy arrays).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .config import Settings
from .errors import ConfigurationError
from .jobs import RenderJob, RenderOptions, RenderResult
from .params import (
    FrameIndexTracker,
    IndexedFrameParams,
    check_n_frames,
    known_length,
    resolved_frames,
)

__all__ = ["Animator", "IndexedFrameParams"]



class Animator(ABC):
    """Base class for a matplotlib animation rendered frame by frame on many processes.

    Each worker process calls ``setup()`` once and then ``update()`` for every
    frame it renders, on the same figure.
    """

    @abstractmethod
    def setup(self) -> Figure:
        """Build the figure and its artists, keep what ``update()`` needs on ``self``, return the figure.

        Called once per worker process (and once in the caller for
        ``num_workers=1``); it takes no arguments besides ``self``.
        """

    @abstractmethod
    def update(self, frame_idx: int, params: Any) -> None:
        """Change the figure for frame ``frame_idx`` using ``params`` (that frame's entry)."""

    def animated_artists(self) -> Iterable[Artist]:
        """The artists ``update()`` changes, to turn on blitting; none by default.

        When this returns artists, each worker draws everything else once into
        a background and per frame redraws only these, drawn *above* all
        static artists (in their z-order among themselves). Frames then match
        a full redraw wherever the animated artists sit on top of the rest.
        Changing a static artist in ``update()`` is allowed: it triggers a
        full redraw of the background for that frame.
        """
        return ()

    def _setup_and_check(self) -> Figure:
        fig = self.setup()
        if not isinstance(fig, Figure):
            raise TypeError(
                f"{type(self).__qualname__}.setup() must return the matplotlib Figure it built, "
                f"but returned {type(fig).__qualname__}"
            )
        if not isinstance(fig.canvas, FigureCanvasAgg):
            # A bare Figure() has no raster canvas; frames are read from Agg's buffer.
            FigureCanvasAgg(fig)
        return fig

    def make_video(
        self,
        output_file: Path | str,
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
    ) -> RenderResult:
        """Render the animation to ``output_file`` (H.264 MP4) and wait for it.

        Parameters mean what they mean in ``parallel_animate``. ``num_workers=1``
        renders in this process; otherwise, with ``CELERY_BROKER_URL`` set the
        job runs on that cluster, and without it on an embedded cluster of
        ``num_workers`` processes started (and stopped) for this call.
        ``preload_factor`` is the number of chunks each worker gets on average.

        Returns a :class:`RenderResult`. Raises ``ValueError`` for bad
        arguments before any work starts, :class:`RenderFailed` when a worker
        failed (with its exception type, message and traceback).
        """
        options = RenderOptions(
            fps=fps, video_mode=video_mode, video_quality=video_quality,
            video_preset=video_preset, video_extra_ffmpeg_params=video_extra_ffmpeg_params,
            savefig_params=savefig_params or {}, reuse_figure_object=reuse_figure_object,
            plotting_log_interval=plotting_log_interval, saving_log_interval=saving_log_interval,
        )
        workers = resolve_num_workers(num_workers)
        if workers == 1:
            return self._render_serial(output_file, param_by_frame, n_frames, options,
                                       disable_progress_bar)
        settings = Settings.from_env()
        if settings.configured:
            job = self._enqueue(output_file, param_by_frame, options, settings, n_frames,
                                workers, preload_factor)
            return _follow_or_cancel(job, disable_progress_bar)

        from .cluster import EmbeddedCluster
        from .render import animator_path, pack_attrs

        # The workers are forked from here, so they can set up this very instance
        # while the params are still being staged.
        prewarm = [(animator_path(self), pack_attrs(self))]
        with EmbeddedCluster(workers, settings, prewarm=prewarm) as cluster:
            job = self._enqueue(output_file, param_by_frame, options, cluster.settings, n_frames,
                                workers, preload_factor)
            try:
                return _follow_or_cancel(job, disable_progress_bar, cluster.check_alive)
            except BaseException:
                # The workers die with the cluster, an encoder maybe mid-write: tidy up for it.
                from .encode import remove_partials
                from .pipeline import output_path

                cluster.stop()
                remove_partials(output_path(output_file, cluster.settings), job.id)
                raise

    def submit(
        self,
        output_file: Path | str,
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
        settings: Settings | None = None,
    ) -> RenderJob:
        """Enqueue the render on the configured cluster and return its :class:`RenderJob` at once.

        Needs ``CELERY_BROKER_URL`` (or ``settings``). ``num_workers`` and
        ``preload_factor`` only size the chunks here. Raises ``ValueError``
        for bad arguments or params, before anything is enqueued.
        """
        settings = settings or Settings.from_env()
        if not settings.configured:
            raise ConfigurationError(
                "submit() needs a running cluster: set CELERY_BROKER_URL to its Redis "
                "(make_video() and `celery-animate render` start a private one instead)"
            )
        options = RenderOptions(
            fps=fps, video_mode=video_mode, video_quality=video_quality,
            video_preset=video_preset, video_extra_ffmpeg_params=video_extra_ffmpeg_params,
            savefig_params=savefig_params or {}, reuse_figure_object=reuse_figure_object,
            plotting_log_interval=plotting_log_interval, saving_log_interval=saving_log_interval,
        )
        return self._enqueue(output_file, param_by_frame, options, settings, n_frames,
                             resolve_num_workers(num_workers), preload_factor)

    def _enqueue(self, output_file, param_by_frame, options, settings, n_frames, workers,
                 preload_factor) -> RenderJob:
        from .pipeline import submit_job

        return submit_job(self, output_file, param_by_frame, options, settings, n_frames=n_frames,
                          workers_hint=workers, chunks_per_worker=preload_factor)

    def _render_serial(self, output_file, param_by_frame, n_frames, options: RenderOptions,
                       disable_progress_bar) -> RenderResult:
        """Render and encode in this process, through a temporary frame directory."""
        from tqdm import tqdm

        from .encode import StoredFrames, encode_frames
        from .frames import pack_frame
        from .pipeline import output_path, resolve_output
        from .progress import resolve_disable
        from .render import PreparedFigure, render_frames
        from .store import DirectoryFrameStore

        check_n_frames(n_frames)
        settings = Settings.from_env()
        output = output_path(resolve_output(output_file, settings), settings)
        disable = resolve_disable(disable_progress_bar)
        total = n_frames if n_frames is not None else known_length(param_by_frame)
        tracker = FrameIndexTracker()
        with tempfile.TemporaryDirectory(prefix="celery-animate-frames-") as tmp:
            store = DirectoryFrameStore(tmp, ttl=0)
            prepared = PreparedFigure.prepare(self)
            frames = tqdm(tracker.track(resolved_frames(param_by_frame, n_frames)), total=total,
                          desc="Rendering frames", unit="frame", disable=disable)
            for frame_idx, rgb in render_frames(prepared, frames, options.savefig_params,
                                                options.reuse_figure_object,
                                                options.plotting_log_interval):
                store.put("serial", frame_idx, pack_frame(rgb))
            count = tracker.finish(n_frames)
            with tqdm(total=count, desc="Encoding video", unit="frame", disable=disable) as bar:
                return encode_frames(StoredFrames(store, "serial", count), output, options,
                                     bar.update)


def resolve_num_workers(num_workers: int) -> int:
    """parallel_animate's rule: ``-1`` all cores, ``-2`` all but one, ...; ``0`` is an error."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers == 0:
        raise ValueError(
            f"num_workers must be a positive int, or -1 for all cores, -2 for all but one, ...; "
            f"got {num_workers!r}"
        )
    if num_workers > 0:
        return num_workers
    return max(1, (os.cpu_count() or 1) + 1 + num_workers)


def _follow_or_cancel(job: RenderJob, disable_progress_bar: bool | None,
                      check: Callable[[], None] | None = None) -> RenderResult:
    """Show progress until the job ends; if we stop following first (Ctrl-C, a dead
    embedded worker), cancel the job so workers stop and its frames are deleted."""
    from .progress import follow

    try:
        return follow(job, disable_progress_bar, check=check)
    except BaseException:
        with contextlib.suppress(Exception):
            job.cancel()
        raise
