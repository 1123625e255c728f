"""Automatic blitting: redraw only from the first artist ``update()`` changed, pixel for pixel.

A full ``Figure.draw`` paints the figure patch, then each top-level artist
(axes, figure texts, legends) in z-order, and each plain 2D axes paints its
patch and then its children in z-order. Agg paints straight into one buffer,
so the buffer just before a given artist is drawn depends only on what came
before it. :class:`IncrementalDraw` keeps a copy of the buffer as it was just
before the first artist that changed (found by matplotlib's ``stale`` flags),
and per frame restores it and lets the real ``Figure.draw`` run with every
earlier artist's ``draw`` turned into a no-op. The result is the full draw's
result, provided nothing before that point changed.

Whenever that cannot be shown, the frame is a full draw: the figure's size,
dpi, the set or order of artists, any axes' position or view limits changed
(before or during the draw: layout engines move axes), or the first change
lies before the saved point. Changes matplotlib does not flag (an array
mutated in place) are caught by comparing a blitted frame with a full draw at
the first blitted frame of every chunk and every ``check_every`` frames; one
difference switches the figure to full draws for good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes._base import _AxesBase
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: ``(top-level artist index, child index or -1)`` in the order a full draw paints them.
Point = tuple[int, int]


def _is_plain_axes(artist: Artist) -> bool:
    """Axes whose ``draw`` is matplotlib's base one: children drawn one by one in z-order.

    3D and polar axes override it, so they are redrawn whole when they change.
    """
    return isinstance(artist, _AxesBase) and type(artist).draw is _AxesBase.draw


@dataclass
class _Snapshot:
    point: Point
    region: Any  # the canvas buffer just before the artist at ``point`` was drawn
    geometry: tuple


class IncrementalDraw:
    """Draws one figure's frames, each time from the first changed artist on."""

    def __init__(self, figure: Figure, check_every: int = 32):
        self.figure = figure
        self.check_every = check_every
        self.enabled = True
        self._top: list[Artist] = []  # top-level artists in the order the last full draw painted them
        self._children: dict[int, list[Artist]] = {}  # plain axes' children, likewise
        self._snapshot: _Snapshot | None = None
        self._check_next = True
        self._since_check = 0
        #: Frames drawn each way, for the benchmark and tests.
        self.full_draws = 0
        self.partial_draws = 0

    def start_chunk(self) -> None:
        """A new chunk begins: its first blitted frame is compared with a full draw."""
        self._check_next = True

    # -- the frame ---------------------------------------------------------------------------
    def draw(self) -> None:
        """Bring the canvas up to date for the current frame, exactly as ``canvas.draw()`` would.

        Raises what ``canvas.draw()`` raises; anything else going wrong in the
        blitting itself turns it off and the frame is drawn in full.
        """
        if self.enabled:
            try:
                self._draw_incrementally()
                return
            except Exception:
                logger.warning("automatic blitting failed on this figure; drawing in full from now "
                               "on", exc_info=True)
                self.enabled = False
        self.full_draws += 1
        self.figure.canvas.draw()

    def _draw_incrementally(self) -> None:
        changed = self._first_change()
        snap = self._snapshot
        if changed is None or snap is None or self._geometry() != snap.geometry:
            self._full_draw(changed)
            return
        if changed is not _NOTHING and self._point(changed) < snap.point:
            self._full_draw(changed)
            return
        geometry = snap.geometry
        self._partial_draw(snap)
        if self._geometry() != geometry:  # a layout engine or an aspect moved something
            self._full_draw(None)
            return
        self._since_check += 1
        if self._check_next or self._since_check >= self.check_every:
            self._verify()

    def _full_draw(self, snapshot_before: Artist | object | None) -> None:
        """``canvas.draw()``, recording the paint order and, if asked, the buffer as it was just
        before ``snapshot_before`` was painted."""
        self.full_draws += 1
        canvas = self.figure.canvas
        top: list[Artist] = []
        children: dict[int, list[Artist]] = {}
        captured: list[Any] = []
        geometry = self._geometry()

        def recorder(artist: Artist, painted: list[Artist]):
            original = artist.draw

            def draw(renderer, *args, **kwargs):
                if artist is snapshot_before and not captured:
                    captured.append(canvas.copy_from_bbox(self.figure.bbox))
                painted.append(artist)
                return original(renderer, *args, **kwargs)
            return draw

        wrapped = []
        for artist in self.figure.get_children()[1:]:  # [0] is the figure patch
            wrapped.append(artist)
            artist.draw = recorder(artist, top)
            if _is_plain_axes(artist):
                painted = children.setdefault(id(artist), [])
                for child in artist.get_children():
                    if child is not artist.patch:
                        wrapped.append(child)
                        child.draw = recorder(child, painted)
        try:
            canvas.draw()
        finally:
            for artist in wrapped:
                artist.__dict__.pop("draw", None)
        self._top, self._children = top, children
        self._snapshot = None
        if captured and self._geometry() == geometry:
            self._snapshot = _Snapshot(self._point(snapshot_before), captured[0], geometry)

    def _partial_draw(self, snap: _Snapshot) -> None:
        self.partial_draws += 1
        top_index, child_index = snap.point
        skipped: list[Artist] = [self.figure.patch, *self._top[:top_index]]
        if child_index >= 0:
            axes = self._top[top_index]
            skipped += [axes.patch, *self._children[id(axes)][:child_index]]
        canvas = self.figure.canvas
        renderer = canvas.get_renderer()
        for artist in skipped:
            artist.draw = _no_draw
        try:
            canvas.restore_region(snap.region)
            self.figure.draw(renderer)
        finally:
            for artist in skipped:
                artist.__dict__.pop("draw", None)

    def _verify(self) -> None:
        """Compare the blitted frame with a full draw; on any difference, blit no more."""
        self._check_next, self._since_check = False, 0
        canvas = self.figure.canvas
        blitted = np.array(canvas.buffer_rgba(), copy=True)
        snap = self._snapshot
        self._full_draw(None)
        self._snapshot = snap
        if not np.array_equal(blitted, np.asarray(canvas.buffer_rgba())):
            self.enabled = False
            self._snapshot = None
            logger.warning("automatic blitting gave a frame different from a full draw (a change "
                           "matplotlib does not flag, such as an array mutated in place); this "
                           "figure is drawn in full from now on")

    # -- what changed, and where --------------------------------------------------------------
    def _first_change(self) -> Artist | object | None:
        """The earliest painted artist that is stale; :data:`_NOTHING` when none is; ``None``
        when it cannot be pinned down (nothing painted yet, or the figure patch changed)."""
        if not self._top or self.figure.patch.stale:
            return None
        for artist in self._top:
            if not artist.stale:
                continue
            kids = self._children.get(id(artist))
            if kids is None or artist.patch.stale:
                return artist
            return next((child for child in kids if child.stale), artist)
        return _NOTHING

    def _point(self, artist: Artist | object) -> Point:
        """Where ``artist`` was painted in the last full draw, as ``(top index, child index)``."""
        if artist is _NOTHING:
            return len(self._top), -1
        for i, top in enumerate(self._top):
            if top is artist:
                return i, -1
            kids = self._children.get(id(top), ())
            for j, child in enumerate(kids):
                if child is artist:
                    return i, j
        return -1, -1

    def _geometry(self) -> tuple:
        """Everything whose change invalidates a saved buffer: sizes, axes, limits, artist sets."""
        fig = self.figure
        parts: list[Any] = [tuple(fig.bbox.bounds), fig.dpi, tuple(map(id, fig.get_children()))]
        for axes in fig.get_axes():
            parts.append((id(axes), tuple(axes.get_position().bounds), tuple(axes.viewLim.bounds),
                          tuple(map(id, axes.get_children()))))
        return tuple(parts)


#: No painted artist is stale: the frame is drawn from the saved point all the same (what
#: matplotlib does not flag is then caught by the periodic comparison).
_NOTHING = object()


def _no_draw(renderer, *args, **kwargs) -> None:
    """Stands in for the draw of an artist whose pixels are already in the restored buffer."""
