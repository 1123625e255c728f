"""How matplotlib paints a figure, as automatic blitting (:mod:`celery_animate.render.blit`)
relies on it: the order of what a full draw paints, and what changes without a stale flag.

This is the one module that knows how matplotlib draws; each behaviour it
leans on is pinned by ``tests/unit/test_quirks.py`` (the private names it
needs are reached through :mod:`celery_animate.render.mpl_internals`, pinned
by ``tests/unit/test_mpl_internals.py``):

* ``Axes.draw`` (plain 2D axes) paints its patch, then its children sorted by
  z-order, each through the child's own ``draw``; an axis draws its ticks
  through ``Tick.draw``, which draws grid line, tick lines and labels. Polar
  axes do the same after shaping their patch and spines.
* 3D axes paint panes, grids and axes from their own ``draw``, then their
  children; a line or text projects itself when drawn.
* An axis's label and offset text do not pass staleness up, and are stale
  after most draws (every axes draw positions them); ``set_array`` on a
  color-mapped artist and assigning an annotation's ``xy`` mark nothing stale.
* ``Spine.get_position()`` gives a spine without a position (a polar axes')
  one, which moves what it draws: the position is read, never asked for.
* A polar axes' theta offset and direction, r origin and radial label
  position change its transforms and mark nothing stale.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis, Tick
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.projections.polar import PolarAxes
from matplotlib.text import Annotation, Text
from mpl_toolkits.mplot3d.art3d import Line3D, Text3D
from mpl_toolkits.mplot3d.axes3d import Axes3D

from celery_animate.render.extents import Box
from celery_animate.render.mpl_internals import (
    AXES_BASE,
    axis_map,
    draws_as_base_axes,
    fully_clipped_to_axes,
    is_axes,
    spine_position_as_set,
    titles,
)

#: Artists whose draw decides where they paint: axes drawn whole, what a 3D view projects,
#: annotations (their arrows) and legends (``loc="best"``). The others paint where
#: :func:`celery_animate.render.extents.paint_boxes` says before they are drawn.
PLACED_WHILE_DRAWN = (AXES_BASE, Line3D, Text3D, Annotation, Legend)

#: Artists a 3D axes projects when they draw themselves: where they paint is known only then.
PROJECTED_3D = (Line3D, Text3D)


def is_plain_axes(artist: Artist) -> bool:
    """Axes whose ``draw`` is matplotlib's base one, patch and children drawn one by one, or
    polar axes': it shapes the patch and spines from the view limits and what
    :func:`polar_look` reads, then is the base one.

    Axes that override it otherwise are one unit, redrawn whole when they change.
    """
    return is_axes(artist) and (draws_as_base_axes(artist) or type(artist).draw is PolarAxes.draw)


def polar_look(axes: Artist) -> tuple | None:
    """What a polar axes' ``draw`` shapes its patch, spines and labels from, besides its view
    limits and position (which the caller records for every axes): setting these changes
    transforms and marks nothing stale. None for other axes."""
    if not isinstance(axes, PolarAxes):
        return None
    return (axes.get_theta_offset(), axes.get_theta_direction(), axes.get_rorigin(),
            axes.get_rsign(), axes.get_rlabel_position())


def is_3d(artist: Artist) -> bool:
    """3D axes. While the view stays, their lines and texts can be redrawn on their own (each
    projects itself with the view of the last full draw). Collections and patches are
    projected by the axes' draw, and re-ordered by depth, so a change to one of them makes
    the axes a unit drawn whole."""
    return isinstance(artist, Axes3D) and type(artist).draw is Axes3D.draw


@dataclass
class Unit:
    """One artist as the last full draw painted it."""

    artist: Artist
    parent: Artist | None  # the axes it was painted by, if they are opened up
    owner: Axis | None = None  # the axis it is part of (a tick's line or label, the axis label)
    boxes: tuple[Box, ...] = ()  # where it painted, as of the last frame
    unflagged: tuple | None = None  # what unflagged() said when it was last drawn


def record_paint_order(
    figure: Figure, opens: Callable[[Artist], bool],
    snapshot_box: Callable[[Artist, Artist | None], Box | None],
) -> tuple[list[Unit], dict[int, tuple[Box, np.ndarray]]]:
    """``figure.canvas.draw()``, returning the units it painted, in order, and snapshots by
    unit ``id``: the box ``snapshot_box(unit, parent)`` names (if any) and a copy of the
    canvas buffer there, as it was just before that unit was drawn.

    Top-level artists are units, except axes for which ``opens(axes)`` holds:
    their children are (and in plain axes, each tick's lines and labels).
    Raises what ``canvas.draw()`` raises.
    """
    canvas = figure.canvas
    units: list[Unit] = []
    snapshots: dict[int, tuple[Box, np.ndarray]] = {}
    drawing_axis: list[Axis] = []  # the opened-up axis being drawn

    def recorder(artist: Artist, parent: Artist | None, owner: Axis | None = None):
        original = artist.draw

        def draw(renderer, *args, **kwargs):
            box = snapshot_box(artist, parent)
            if box is not None and not box.empty:
                pixels = np.asarray(canvas.buffer_rgba())[box.slices]
                snapshots[id(artist)] = (box, pixels.copy())
            units.append(Unit(artist, parent, owner))
            return original(renderer, *args, **kwargs)
        return draw

    def axis_recorder(axis: Axis):
        original = axis.draw

        def draw(renderer, *args, **kwargs):
            drawing_axis.append(axis)
            try:
                return original(renderer, *args, **kwargs)
            finally:
                drawing_axis.pop()
        return draw

    tick_draw = Tick.draw

    def record_tick(tick: Tick, renderer, *args, **kwargs):
        # An axis makes its ticks while it draws, so they are recorded from the class.
        if drawing_axis and tick.get_visible():
            axis = drawing_axis[-1]
            units.extend(Unit(part, axis.axes, axis) for part in
                         (tick.gridline, tick.tick1line, tick.tick2line, tick.label1, tick.label2))
        return tick_draw(tick, renderer, *args, **kwargs)

    wrapped = []
    for artist in figure.get_children()[1:]:  # [0] is the figure patch
        wrapped.append(artist)
        if not opens(artist):
            artist.draw = recorder(artist, None)
            continue
        for child in artist.get_children():
            wrapped.append(child)
            if isinstance(child, Axis) and not is_3d(artist):
                child.draw = axis_recorder(child)
                wrapped += [child.label, child.offsetText]
                child.label.draw = recorder(child.label, artist, child)
                child.offsetText.draw = recorder(child.offsetText, artist, child)
            else:
                child.draw = recorder(child, artist)
    Tick.draw = record_tick
    try:
        canvas.draw()
    finally:
        Tick.draw = tick_draw
        for artist in wrapped:
            artist.__dict__.pop("draw", None)
    return units, snapshots


def children_of(axes: Artist) -> tuple[int, ...]:
    return tuple(map(id, axes.get_children()))


def unflagged(artist: Artist) -> tuple | None:
    """State that changes without marking ``artist`` stale: a color-mapped artist's data
    (``set_array``) and where an annotation points (its ``xy`` and ``xyann`` attributes)."""
    if isinstance(artist, Annotation):
        return tuple(np.ravel(artist.xy).tolist()), tuple(np.ravel(artist.xyann).tolist())
    if not isinstance(artist, ScalarMappable) or artist.get_array() is None:
        return None
    data = artist.get_array()
    values = np.ascontiguousarray(np.ma.getdata(data))
    return (id(data), values.shape, values.dtype.str, zlib.crc32(values),
            zlib.crc32(np.ascontiguousarray(np.ma.getmaskarray(data))))


def axis_looks(axis: Axis) -> tuple:
    """How an axis's label and offset text look: their staleness tells nothing."""
    return tuple((text.get_text(), text.get_visible(), text.get_alpha(), str(text.get_color()),
                  hash(text.get_fontproperties()), text.get_rotation())
                 for text in (axis.label, axis.offsetText))


def decorations_look(axes: Axes) -> tuple:
    """What the box around axes' ticks, tick labels, axis labels, titles and spines depends
    on, as the last draw left them (drawing places the ticks and labels)."""
    parts: list = [axes.axison, tuple(axes.bbox.bounds), tuple(axes.viewLim.bounds)]
    if is_3d(axes):
        parts.append(view_3d(axes))
    for axis in axis_map(axes).values():
        parts.append((axis.get_visible(), axis_looks(axis),
                      tuple(_tick_looks(tick) for tick in (*axis.majorTicks, *axis.minorTicks))))
    parts += [_text_looks(title) for title in titles(axes)]
    # Spine.get_position() sets a position on spines that have none (polar ones), which
    # changes how they draw: the attribute is read instead.
    parts += [(spine.get_visible(), spine.get_linewidth(), spine.get_bounds(),
               str(spine_position_as_set(spine))) for spine in axes.spines.values()]
    return tuple(parts)


def unclipped_children(axes: Axes) -> list[Artist]:
    """The visible children of ``axes`` that can paint outside them, but for the axis, titles
    and spines (:func:`decorations_look` speaks for those)."""
    skip = {id(part) for part in (*axis_map(axes).values(), *axes.spines.values(), *titles(axes))}
    return [child for child in axes.get_children() if id(child) not in skip and child.get_visible()
            and (isinstance(child, (AXES_BASE, Axis)) or not fully_clipped_to_axes(child))]


def _tick_looks(tick: Tick) -> tuple:
    lines = (tick.tick1line, tick.tick2line, tick.gridline)
    return (tick.get_visible(), tick.get_loc(), tick.get_pad(), tick.get_tickdir(),
            _text_looks(tick.label1), _text_looks(tick.label2),
            tuple((line.get_visible(), str(line.get_marker()), line.get_markersize(),
                   line.get_linewidth()) for line in lines))


def _text_looks(text: Text) -> tuple:
    return (text.get_text(), text.get_visible(), text.get_rotation(), hash(text.get_fontproperties()),
            tuple(text.get_position()))


def view_3d(axes: Axes3D) -> tuple:
    """What every child of 3D axes was projected with."""
    return (axes.elev, axes.azim, axes.roll, axes.get_xlim3d(), axes.get_ylim3d(),
            axes.get_zlim3d(), tuple(axes.get_box_aspect()), axes.zaxis.get_visible())
