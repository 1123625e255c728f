"""Rendering frames in a process: the prepared figure, the per-process figure cache, the frame loop.

Shared by the serial path (``num_workers=1``) and the ``render_chunk`` task,
so both produce the same pixels. Importing it changes nothing: a worker
chooses matplotlib's Agg backend when its process starts.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from celery_animate.errors import FigureSizeChanged, InvalidAnimator
from celery_animate.frames import check_frame_size
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.blit import IncrementalDraw
from celery_animate.render.cache_key import rc_digest
from celery_animate.render.grab import apply_savefig_params, grab_rgb
from celery_animate.render.loading import load_animator

logger = logging.getLogger(__name__)


@dataclass
class PreparedFigure:
    """An animator after ``setup()``: its figure, the pixel size frames must keep, and,
    when the animator names ``animated_artists()``, the background they are blitted onto."""

    animator: AnimatorBase
    figure: Figure
    animated: list[Artist] = field(default_factory=list)
    size: tuple[int, int] | None = None
    _background: Any = None
    _background_bounds: tuple[float, ...] | None = None
    _incremental: IncrementalDraw | None = None
    _drawn: tuple[int, int] | None = None  # the first frame's (width, height) before padding
    #: The rcParams in force when ``setup()`` ran (:func:`rc_digest`), for the frame cache's key.
    rc: str = ""

    @classmethod
    def prepare(cls, animator: AnimatorBase, note_rc: bool = True) -> PreparedFigure:
        """Run ``setup()`` and mark the animator's animated artists, if it has any. With
        ``note_rc``, note the rcParams in force first (:attr:`rc`, for the frame cache's key)."""
        rc = rc_digest() if note_rc else ""
        figure = animator.setup_figure()
        return cls(animator, figure, _animated_artists(animator, figure), rc=rc)

    @property
    def incremental(self) -> IncrementalDraw:
        """Automatic blitting for this figure (see :mod:`celery_animate.render.blit`)."""
        if self._incremental is None:
            self._incremental = IncrementalDraw(self.figure)
        return self._incremental

    def draw(self, auto_blit: bool = True) -> None:
        """Bring the canvas up to date for the current frame.

        Without animated artists this redraws only the regions the artists
        ``update()`` changed (exactly a full draw's pixels), or, with
        ``auto_blit=False``, is a full ``canvas.draw()``. With them,
        everything else is drawn once into a saved background (again whenever
        the figure's size or any static artist changed, which marks the figure
        stale); each frame restores it and draws only the animated artists, in
        z-order, on top.
        """
        canvas = self.figure.canvas
        if not self.animated:
            if auto_blit:
                self.incremental.draw()
            else:
                canvas.draw()
            return
        bounds = tuple(self.figure.bbox.bounds)
        if self._background is None or self.figure.stale or bounds != self._background_bounds:
            canvas.draw()  # animated artists are left out of a normal draw
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_bounds = bounds
        else:
            canvas.restore_region(self._background)
        for artist in self.animated:
            self.figure.draw_artist(artist)

    def check_size(self, frame: np.ndarray, frame_idx: int,
                   drawn: tuple[int, int] | None = None) -> None:
        """Raise :class:`FigureSizeChanged` if ``frame`` (padded) differs in size from the first.

        ``drawn`` is the figure's ``(width, height)`` in pixels before padding, which the
        message gives, as the user set it (the frame's own size when not given).
        """
        size = frame.shape[:2]
        drawn = drawn or (size[1], size[0])
        if self.size is None:
            self.size, self._drawn = size, drawn
        elif size != self.size:
            first = self._drawn or (self.size[1], self.size[0])
            raise FigureSizeChanged(
                f"frame {frame_idx} is {drawn[0]}x{drawn[1]} pixels but earlier frames are "
                f"{first[0]}x{first[1]}; update() must not change the figure size or dpi"
            )


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (PEP 678), also before Python 3.11, where the note is kept in
    ``__notes__`` as 3.11 keeps it, though tracebacks do not show it."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]


def _animated_artists(animator: AnimatorBase, figure: Figure) -> list[Artist]:
    artists = list(animator.animated_artists() or ())
    for artist in artists:
        if not isinstance(artist, Artist) or artist.get_figure(root=True) is not figure:
            raise InvalidAnimator(
                f"{type(animator).__qualname__}.animated_artists() must return artists of the "
                f"figure setup() returned, got {artist!r}"
            )
        artist.set_animated(True)
    return sorted(artists, key=lambda artist: artist.get_zorder())


class FigureCache:
    """Prepared figures of this process, least recently used evicted first.

    Keyed by the animator's import path and attributes, so a job whose
    animator matches one seen before pays nothing for ``setup()``. Pinned
    entries (the pre-warmed animators) are never evicted and do not count
    against ``capacity``.
    """

    def __init__(self, capacity: int = 4):
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], PreparedFigure] = OrderedDict()
        self._pinned: dict[tuple[str, str], PreparedFigure] = {}

    @staticmethod
    def key(path: str, attrs: bytes) -> tuple[str, str]:
        return path, hashlib.blake2b(attrs, digest_size=16).hexdigest()

    def get(self, path: str, attrs: bytes, allowed: tuple[str, ...] = (),
            pin: bool = False) -> PreparedFigure:
        """The prepared figure for this animator, running ``setup()`` if this process has none."""
        key = self.key(path, attrs)
        entry = self._pinned.get(key) or self._entries.get(key)
        if entry is not None:
            if key in self._entries:
                self._entries.move_to_end(key)
            return entry
        entry = PreparedFigure.prepare(load_animator(path, attrs, allowed))
        if pin:
            self._pinned[key] = entry
            return entry
        self._entries[key] = entry
        while len(self._entries) > self.capacity:
            _, old = self._entries.popitem(last=False)
            plt.close(old.figure)
        return entry


def render_frames(
    prepared: PreparedFigure,
    frames: Iterable[tuple[int, Any]],
    savefig_params: dict[str, Any] | None = None,
    reuse_figure_object: bool = True,
    log_interval: int | None = None,
    max_pixels: int = 7680 * 4320,
    auto_blit: bool = True,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_idx, rgb)`` for each ``(frame_idx, params)``.

    The user's ``update()`` runs on the prepared figure; with
    ``reuse_figure_object=False`` a fresh figure is set up for every frame.
    Raises whatever ``update()`` raises (with a note naming the frame), :class:`FigureSizeChanged`, and
    :class:`FrameTooLarge` before drawing a frame of more than ``max_pixels``.
    ``auto_blit`` redraws only the regions ``update()`` changed (see
    :mod:`celery_animate.render.blit`); frames are the same either way.
    """
    for count, (frame_idx, params) in enumerate(frames, start=1):
        # A figure set up for one frame is never keyed: the cache keys the first one's rcParams.
        current = (prepared if reuse_figure_object
                   else PreparedFigure.prepare(prepared.animator, note_rc=False))
        apply_savefig_params(current.figure, savefig_params)
        try:
            current.animator.update(frame_idx, params)
        except Exception as exc:
            add_note(exc, f"raised by update() for frame {frame_idx}")
            raise
        # The canvas allocates its buffer when drawn: refuse a huge figure before that.
        width, height = current.figure.canvas.get_width_height(physical=True)
        check_frame_size(width, height, max_pixels, f"frame {frame_idx}")
        current.draw(auto_blit and reuse_figure_object)
        rgb = grab_rgb(current.figure, draw=False)
        if not reuse_figure_object:
            plt.close(current.figure)
        prepared.check_size(rgb, frame_idx, (width, height))
        if log_interval and count % log_interval == 0:
            logger.info("rendered %d frames (last: %d)", count, frame_idx)
        yield frame_idx, rgb
