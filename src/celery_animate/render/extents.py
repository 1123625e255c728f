"""Where an artist paints: conservative pixel boxes in the canvas buffer.

Automatic blitting (:mod:`celery_animate.render.blit`) redraws a region of a
frame and must know every artist that can touch it. :func:`paint_boxes`
answers that for the artists it understands, erring on the large side
(line widths, markers, joins and antialiasing are padded for), and for
anything else answers "the whole figure" or, for a clipped artist, its clip
box, which Agg enforces whatever the artist draws.

Boxes are in buffer coordinates: rows from the top, columns from the left,
half-open, clipped to the canvas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from celery_animate.render.mpl_internals import interpolation_steps

#: Pixels added around every box for antialiasing and pixel snapping.
ANTIALIAS_PAD = 2


class Box(NamedTuple):
    """A half-open pixel rectangle of the canvas buffer: ``buffer[top:bottom, left:right]``."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def empty(self) -> bool:
        return self.top >= self.bottom or self.left >= self.right

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def intersects(self, other: Box) -> bool:
        return (not self.empty and not other.empty and self.top < other.bottom
                and other.top < self.bottom and self.left < other.right and other.left < self.right)

    def contains(self, other: Box) -> bool:
        return other.empty or (self.top <= other.top and other.bottom <= self.bottom
                               and self.left <= other.left and other.right <= self.right)

    def union(self, other: Box) -> Box:
        if self.empty:
            return other
        if other.empty:
            return self
        return Box(min(self.top, other.top), max(self.bottom, other.bottom),
                   min(self.left, other.left), max(self.right, other.right))

    def grown(self, pixels: int, height: int, width: int) -> Box:
        """This box with ``pixels`` more on every side, clipped to a ``height`` x ``width`` canvas."""
        if self.empty:
            return self
        return Box(max(self.top - pixels, 0), min(self.bottom + pixels, height),
                   max(self.left - pixels, 0), min(self.right + pixels, width))


EMPTY = Box(0, 0, 0, 0)


def union(boxes: Iterable[Box]) -> Box:
    result = EMPTY
    for box in boxes:
        result = result.union(box)
    return result


def to_box(bbox: Bbox, pad: float, height: int, width: int) -> Box:
    """A display-space bbox (y up) as a buffer box (y down), grown by ``pad`` pixels."""
    x0, y0, x1, y1 = bbox.extents
    if not all(map(math.isfinite, (x0, y0, x1, y1))):
        return Box(0, height, 0, width)
    extra = math.ceil(pad) + ANTIALIAS_PAD
    return Box(max(height - math.ceil(max(y0, y1)) - extra, 0),
               min(height - math.floor(min(y0, y1)) + extra, height),
               max(math.floor(min(x0, x1)) - extra, 0),
               min(math.ceil(max(x0, x1)) + extra, width))


def paint_boxes(artist: Artist, renderer, height: int, width: int) -> tuple[Box, ...]:
    """Boxes that together hold every pixel ``artist.draw`` can change on a ``height`` x ``width``
    canvas. An invisible artist paints nothing; an unknown one, anywhere (or in its clip box)."""
    if not artist.get_visible():
        return ()
    whole = Box(0, height, 0, width)
    clip = clip_box(artist, height, width)
    if artist.get_path_effects() or artist.get_agg_filter() is not None:
        return (clip,)  # shadows and filters paint outside the artist's own extent
    boxes = _own_boxes(artist, renderer, height, width)
    if boxes is None:
        return (clip,)
    if clip != whole and not isinstance(artist, (Axis, Axes, Legend)):  # containers: their parts
        boxes = tuple(box for box in (_intersection(box, clip) for box in boxes) if not box.empty)
    return tuple(box for box in boxes if not box.empty)


def _own_boxes(artist: Artist, renderer, height: int, width: int) -> tuple[Box, ...] | None:
    """The artist's own extent, padded for how it strokes; ``None`` when not known."""
    dpi = artist.get_figure(root=True).dpi
    points = dpi / 72

    def box(bbox: Bbox, pad: float = 0.0) -> Box:
        return to_box(bbox, pad, height, width)

    if isinstance(artist, Line2D):
        pad = 2 * artist.get_linewidth() * points
        if artist.get_marker() not in (None, "None", "none", " ", ""):
            pad += (artist.get_markersize() / 2 + artist.get_markeredgewidth()) * points
        path = artist.get_path()
        if interpolation_steps(path) > 1:
            # Curved by a polar transform, it is drawn through more points than it has (a grid
            # circle has two), and get_window_extent() transforms only those.
            drawn = artist.get_transform().transform_path(path).vertices
            return (box(Bbox([np.nanmin(drawn, axis=0), np.nanmax(drawn, axis=0)]), pad),)
        return (box(artist.get_window_extent(renderer), pad),)
    if isinstance(artist, Text):
        if not artist.get_text():
            return ()
        boxes = [box(artist.get_window_extent(renderer))]
        patch = artist.get_bbox_patch()
        if patch is not None:
            boxes.append(box(patch.get_window_extent(renderer), 3 * patch.get_linewidth() * points))
        return tuple(boxes)
    if isinstance(artist, Patch):
        # The path's control points, not its exact extent: a curve stays inside their hull,
        # and this is several times cheaper than Patch.get_window_extent.
        path = artist.get_path()
        vertices = path.vertices
        if path.codes is not None:  # CLOSEPOLY and STOP carry no point
            vertices = vertices[(path.codes != Path.CLOSEPOLY) & (path.codes != Path.STOP)]
        if not len(vertices):
            return ()
        corners = artist.get_transform().transform(vertices)
        return (box(Bbox([np.nanmin(corners, axis=0), np.nanmax(corners, axis=0)]),
                    3 * artist.get_linewidth() * points),)
    if isinstance(artist, AxesImage):
        return (box(artist.get_window_extent(renderer)),)
    if isinstance(artist, Legend):
        pad = 8 * points if artist.shadow else 0.0
        frame = artist.get_frame()
        return (box(artist.get_window_extent(renderer), pad),
                box(frame.get_window_extent(renderer), pad + 3 * frame.get_linewidth() * points))
    if isinstance(artist, Axis):
        return _axis_boxes(artist, renderer, height, width)
    if isinstance(artist, Axes):
        tight = artist.get_tightbbox(renderer)
        own = box(artist.bbox, 4 * points)
        return (own,) if tight is None else (own, box(tight, 4 * points))
    return None


def _axis_boxes(axis: Axis, renderer, height: int, width: int) -> tuple[Box, ...]:
    """An axis paints its tick marks, grid lines, tick labels, label and offset text: one box
    for each kind, so a change inside the axes misses the labels outside it."""
    ticks = [*axis.get_major_ticks(), *axis.get_minor_ticks()]
    kinds: dict[str, list[Artist]] = {"tick1": [], "tick2": [], "grid": [], "label1": [],
                                      "label2": []}
    for tick in ticks:
        if not tick.get_visible():
            continue
        kinds["tick1"].append(tick.tick1line)
        kinds["tick2"].append(tick.tick2line)
        kinds["grid"].append(tick.gridline)
        kinds["label1"].append(tick.label1)
        kinds["label2"].append(tick.label2)
    kinds["label"] = [axis.label, axis.offsetText]
    boxes = []
    for artists in kinds.values():
        merged = union(box for artist in artists for box in paint_boxes(artist, renderer, height, width))
        if not merged.empty:
            boxes.append(merged)
    return tuple(boxes)


def clip_box(artist: Artist, height: int, width: int) -> Box:
    """Where Agg lets ``artist`` paint: inside its clip rectangle, if it has one, else anywhere."""
    if artist.get_clip_on() and artist.get_clip_box() is not None:
        return to_box(artist.get_clip_box(), 0, height, width)
    return Box(0, height, 0, width)


def _intersection(a: Box, b: Box) -> Box:
    return Box(max(a.top, b.top), min(a.bottom, b.bottom), max(a.left, b.left), min(a.right, b.right))
