"""Automatic blitting: redraw only the regions ``update()`` changed, pixel for pixel.

A full ``Figure.draw`` paints a fixed sequence of *units*: the top-level
artists in z-order, where each plain 2D axes is opened up into its patch and
its children in z-order, and each of its axes into tick lines, grid lines and
labels. Agg paints straight into one buffer, so a pixel's final value depends
only on the units that paint over it, in that order.

Per frame, :class:`IncrementalDraw` finds the units ``update()`` changed
(matplotlib's ``stale`` flags, plus what matplotlib changes without flagging:
color-mapped data, annotation targets, axis labels) and the boxes they
painted before and paint now (:mod:`celery_animate.render.extents`). Changes whose
boxes touch form a group. Each group's region is restored from a *snapshot*,
the buffer just before the group's first unit was painted in the last full
draw (or, where none was taken there, before an earlier unit, down to the
whole canvas before the first); every unit from there on that paints into the
region is drawn again, in paint order; the region is copied into the previous
frame. That is exactly a full draw's pixels: nothing earlier changed there
(each snapshot remembers where earlier units changed since it was taken), and
nothing that paints there was left out. A group redrawn from an earlier
unit's snapshot widens its region to its axes and keeps the buffer as it is on
the way, just before its first unit, as that unit's snapshot, so the next
frames start there (a fifth less time per blitted frame for the one-line
benchmark figure, a tenth for the fourteen panels). A frame that will be
checked against a full draw (below) is never widened: it must redraw no more
than the frames it stands for.

Whenever that cannot be shown, the frame is a full draw: the figure's size,
dpi or patch, the set or order of axes, any axes' position, view limits,
frame or axis (ticks, labels) changed, also through the layout engine; an
axes drawn whole (3D axes whose surfaces change, axes of other projections,
or axes that add and remove artists every frame, such as contours) painted
outside the room it was given; a snapshot
does not cover its region or is stale there. Changes matplotlib does not
flag and this module does not look for (an array mutated in place) are
caught by comparing a blitted frame with a full draw: the figure's first
blitted frame and every ``check_every``-th after it, counted across chunks
and jobs (the figure outlives them in its worker process). The compared
frame is the full draw, and one difference switches the figure to full draws
for good.

Blitting is also turned off where it does not pay: when the median of the
last ``cost_samples`` blitted frames took at least as long as the latest
checked full draw (a small figure whose every artist changes each frame,
where finding what changed costs more than drawing it), and when
:data:`FULL_DRAWS_IN_ROW` frames in a row could not be blitted (axes cleared
and drawn again every frame). The pixels are the same either way; only the
time differs.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axis import Axis
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from celery_animate.render.extents import EMPTY, Box, clip_box, paint_boxes, union
from celery_animate.render.mpl_internals import is_axes, layout_engine_is_inert, run_layout
from celery_animate.render.paint_order import (
    PLACED_WHILE_DRAWN,
    PROJECTED_3D,
    Unit,
    axis_looks,
    children_of,
    decorations_look,
    is_3d,
    is_plain_axes,
    polar_look,
    record_paint_order,
    unclipped_children,
    unflagged,
    view_3d,
)

logger = logging.getLogger(__name__)

#: Extra pixels a snapshot keeps around its region, so a region that grows a little (a
#: longer title) is still covered.
SNAPSHOT_MARGIN = 24
#: Blitted frames whose median time is weighed against a full draw's (see blitting_pays).
COST_SAMPLES = 8
#: Frames in a row that could not be blitted after which blitting is turned off: each cost a
#: full draw plus the recording of its paint order and snapshots (a figure whose axes are
#: cleared and drawn again every frame paid that on every frame).
FULL_DRAWS_IN_ROW = 4
#: Extra pixels around the region of axes drawn whole (3D, contours), whose extent is known only
#: after they are drawn.
UNIT_AXES_MARGIN = 16


@dataclass
class _Group:
    """Changed units whose regions touch: restored and redrawn together."""

    first: int  # index of its first unit in paint order
    region: Box
    members: list[int] = field(default_factory=list)
    #: Index of the unit its redraw starts from: ``first``, or an earlier unit whose snapshot
    #: serves when ``first`` has none (see IncrementalDraw._choose_snapshots).
    start: int = -1
    #: Whether the buffer just before ``first`` is kept as its snapshot (see _choose_snapshots).
    keeps_snapshot: bool = False


@dataclass
class _Snapshot:
    box: Box  # where it holds pixels
    pixels: np.ndarray
    #: Where each earlier unit that changed since it was taken has painted, by unit index.
    dirty: dict[int, Box] = field(default_factory=dict)


class IncrementalDraw:
    """Draws one figure's frames, each time redrawing only what changed."""

    def __init__(self, figure: Figure, check_every: int = 32,
                 cost_samples: int | None = COST_SAMPLES,
                 clock: Callable[[], float] = time.perf_counter):
        self.figure = figure
        self.check_every = check_every
        self.enabled = True
        #: Why blitting was turned off (None while it is on).
        self.off_because: str | None = None
        #: ``None`` keeps blitting on whatever it costs (the exactness tests do), also through
        #: any number of frames in a row that need a full draw.
        self.cost_samples = cost_samples
        self._clock = clock
        self._partial_seconds: deque[float] = deque(maxlen=cost_samples or 1)
        self._full_seconds: float | None = None  # the latest checked full draw
        self._units: list[Unit] = []
        self._index: dict[int, int] = {}  # id(artist) -> unit index
        self._geometry: dict | None = None
        self._axis_looks: dict[int, tuple] = {}
        #: Plain axes that add or remove artists as they go (contours, surfaces): drawn whole.
        self._whole: set[int] = set()
        self._children: dict[int, tuple[int, ...]] = {}  # opened axes' children, by id
        self._axes_by_id: dict[int, Artist] = {}
        #: Per opened 3D axes: its id, the index of its first data unit and its box.
        self._frames_3d: list[tuple[int, int, Box]] = []
        #: Axes drawn whole, by id: how their decorations looked and the boxes measured then.
        self._decorations: dict[int, tuple[tuple, tuple[Box, ...]]] = {}
        self._snapshots: dict[int, _Snapshot] = {}  # keyed by id of the unit painted right after
        #: Units that have led a group, by id, with the group's latest region: each full draw
        #: snapshots the buffer just before each of them.
        self._leaders: dict[int, Box] = {}
        self._frame: np.ndarray | None = None  # the last frame, RGBA
        self._check_next = True
        self._since_check = 0
        self._full_in_row = 0  # frames in a row that could not be blitted
        #: Frames drawn each way, for the benchmark and tests.
        self.full_draws = 0
        self.partial_draws = 0

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
                self._turn_off("it failed")
        self.full_draws += 1
        self.figure.canvas.draw()

    def _turn_off(self, reason: str) -> None:
        self.enabled = False
        self.off_because = reason
        self._snapshots.clear()
        self._frame = None

    def _draw_incrementally(self) -> None:
        started = self._clock()
        if self._frame is None or self.figure.patch.stale:
            self._fall_back()
            return
        reshaped = {key for key, children in self._children.items()
                 if key not in self._whole and children != children_of(self._axes_by_id[key])}
        if reshaped:
            self._draw_whole(reshaped)  # artists added or removed: such axes are drawn whole
        changed = self._changed()
        if changed is None:
            self._fall_back()
            return
        if changed:
            self._lay_out()
        if self._measure() != self._geometry:
            self._fall_back()
            return
        if changed:
            renderer = self.figure.canvas.get_renderer()
            now = {i: self._preview(i, renderer) for i in changed}
            for i in changed:
                if not (self._units[i].boxes or now[i]):  # an empty text, stale after each full
                    self._units[i].artist.stale = False  # draw places it: nothing to draw
            changed = [i for i in changed if self._units[i].boxes or now[i]]
            groups = self._groups(changed, now)
            # A frame checked against a full draw redraws only what it must: a wider region
            # would also redraw what an unseen change (an array mutated in place) moved.
            if not self._choose_snapshots(groups, keep=not self._check_due()):
                self._fall_back()
                return
            kept = self._partial_draw(groups, now)
            drawn = {i: self._placed_boxes(i, renderer)
                     if isinstance(self._units[i].artist, PLACED_WHILE_DRAWN) else now[i]
                     for i in changed}
            if not all(group.region.contains(box) for group in groups for i in group.members
                       for box in drawn[i]):
                self._fall_back()  # drawing moved something out of its region (a 3D view turned)
                return
            self._record_changes(changed, drawn)
            # Taken after this frame's changes were drawn: clean of them.
            self._snapshots.update(kept)
        self.partial_draws += 1
        self._full_in_row = 0
        due = self._check_due()
        self._since_check += 1
        if due:
            self._verify()
        else:
            self._weigh(self._clock() - started)

    def _fall_back(self) -> None:
        """Draw this frame in full, as it cannot be blitted; after :data:`FULL_DRAWS_IN_ROW` such
        frames in a row, turn blitting off (from then on a frame costs a plain full draw)."""
        self._full_in_row += 1
        if self._full_in_row < FULL_DRAWS_IN_ROW or self.cost_samples is None:
            self._full_draw()
            return
        logger.info("automatic blitting does not pay on this figure (the last %d frames each "
                    "needed a full draw); drawing in full from now on", self._full_in_row)
        self._turn_off("every frame needs a full draw")
        self.full_draws += 1
        self.figure.canvas.draw()

    def _check_due(self) -> bool:
        """Whether this frame, once blitted, is compared with a full draw."""
        return self._check_next or self._since_check + 1 >= self.check_every

    def _weigh(self, seconds: float) -> None:
        """Note a blitted frame's cost (``seconds``); turn blitting off where it does not pay."""
        if self.cost_samples is None or self._full_seconds is None:
            return
        self._partial_seconds.append(seconds)
        if (len(self._partial_seconds) >= self.cost_samples
                and not blitting_pays(self._partial_seconds, self._full_seconds)):
            logger.info("automatic blitting does not pay on this figure (%.1f ms a blitted frame "
                        "against %.1f ms a full draw); drawing in full from now on",
                        1000 * statistics.median(self._partial_seconds), 1000 * self._full_seconds)
            self._turn_off("it does not pay")

    def _lay_out(self) -> None:
        """What ``Figure.draw`` does before it paints: run the layout engine, apply aspects."""
        run_layout(self.figure, self.figure.canvas.get_renderer())

    # -- full draws ----------------------------------------------------------------------------
    def _full_draw(self) -> None:
        """``canvas.draw()``, recording the units in paint order, with a snapshot before each
        leader and each artist ``update()`` changed (the likely leaders of the next frame)."""
        self.full_draws += 1
        canvas = self.figure.canvas
        if self._frame is None and layout_engine_is_inert(self.figure):
            # Nothing has placed the axes yet: a colorbar's or an equal-aspect axes' box moves on
            # the first draw, which would leave this one unrecorded and cost the next a full
            # draw. With no engine (or the inert one tight_layout() leaves) this only applies
            # aspects, which is idempotent; an engine is not, so it runs only in the draw.
            self._lay_out()
        geometry = self._measure()
        changed = self._stale_artists() if self._frame is not None else set()
        width, height = canvas.get_width_height(physical=True)

        background = [Box(0, height, 0, width)]

        def snapshot_box(artist: Artist, parent: Artist | None) -> Box | None:
            if background:
                # The canvas before the first unit: any group can be redrawn from there, so a
                # change no snapshot was taken for (the first frames) still blits.
                return background.pop()
            if id(artist) not in self._leaders and id(artist) not in changed:
                return None
            return self._snapshot_box(artist, parent, canvas.get_renderer(), height, width)

        units, snapshots = record_paint_order(self.figure, self._opens, snapshot_box)
        self._units, self._snapshots = units, {}
        self._index = {id(unit.artist): i for i, unit in enumerate(units)}
        self._geometry = self._measure()
        buffer = np.asarray(canvas.buffer_rgba())
        self._frame = buffer.copy()
        if self._geometry != geometry:
            return  # the draw moved things: snapshots taken on the way are not trustworthy
        renderer = canvas.get_renderer()
        height, width = buffer.shape[:2]
        for unit in units:
            unit.boxes = paint_boxes(unit.artist, renderer, height, width)
            unit.unflagged = unflagged(unit.artist)
        self._frames_3d = self._find_frames_3d(renderer, height, width)
        self._axis_looks = {id(axis): axis_looks(axis) for axis in self._axes_axes()}
        opened = [artist for artist in self.figure.get_children()[1:] if self._opens(artist)]
        self._axes_by_id = {id(axes): axes for axes in opened}
        self._children = {id(axes): children_of(axes) for axes in opened}
        self._snapshots = {key: _Snapshot(box, pixels) for key, (box, pixels) in snapshots.items()}

    def _snapshot_box(self, artist: Artist, parent: Artist | None, renderer, height: int,
                      width: int) -> Box:
        """What a snapshot taken just before ``artist`` is drawn keeps: where it painted last
        time and will paint now, as far as known before it is drawn, the region of the last
        group it led and its axes. A region it does not cover later means a full draw."""
        box = self._leaders.get(id(artist), EMPTY)
        if parent is not None:
            box = box.union(_bbox_box(parent, height, width))
        before = self._index.get(id(artist))  # still the last full draw's units
        known = before is not None and self._units[before].artist is artist
        if known:
            box = box.union(union(self._units[before].boxes))
        if not isinstance(artist, PLACED_WHILE_DRAWN) or (not known and is_axes(artist)):
            box = box.union(union(paint_boxes(artist, renderer, height, width)))
        elif not known:
            box = box.union(clip_box(artist, height, width))
        return box.grown(SNAPSHOT_MARGIN, height, width)

    def _draw_whole(self, keys: set[int]) -> None:
        """Make the opened axes with ids ``keys`` units drawn whole from now on, without a full
        draw: their units become one, which painted where all of theirs did, led by the
        snapshot taken before their first unit (if any)."""
        self._whole |= keys
        units: list[Unit] = []
        moved: dict[int, int] = {}  # old unit index -> new
        merged: dict[int, int] = {}  # axes id -> index of its one unit
        snapshots: dict[int, _Snapshot] = {}
        for i, unit in enumerate(self._units):
            key = id(unit.parent) if unit.parent is not None else None
            snap = self._snapshots.get(id(unit.artist))
            if key not in keys:
                moved[i] = len(units)
                units.append(unit)
            elif key in merged:
                moved[i] = merged[key]
                whole = units[merged[key]]
                whole.boxes = (union((*whole.boxes, *unit.boxes)),)
                continue  # snapshots taken inside the axes are of no use to a whole unit
            else:
                moved[i] = merged[key] = len(units)
                units.append(Unit(unit.parent, None, None, (union(unit.boxes),)))
            if snap is not None:
                snapshots[id(units[moved[i]].artist)] = snap
        for snap in snapshots.values():
            dirty: dict[int, Box] = {}
            for i, box in snap.dirty.items():
                dirty[moved[i]] = dirty.get(moved[i], EMPTY).union(box)
            snap.dirty = dirty
        self._units, self._snapshots = units, snapshots
        self._index = {id(unit.artist): i for i, unit in enumerate(units)}
        self._frames_3d = [(key, moved.get(data, len(units)), box)
                           for key, data, box in self._frames_3d if key not in keys]
        for key in keys:
            axes = self._axes_by_id.pop(key)
            del self._children[key]
            self._geometry[key] = (self._geometry[key][0], None)  # as if measured drawn whole
            axes.stale = True  # it changed: it is drawn again this frame

    def _stale_artists(self) -> set[int]:
        """Ids of the artists ``update()`` changed that would be units: top-level ones and the
        children of opened axes marked stale, and the units changed without a flag."""
        stale = {id(unit.artist) for unit in self._units
                 if unit.unflagged is not None and unflagged(unit.artist) != unit.unflagged}
        for artist in self.figure.get_children()[1:]:
            if artist.stale:
                stale.add(id(artist))
            if self._opens(artist):
                stale.update(id(child) for child in artist.get_children() if child.stale)
        return stale

    def _verify(self) -> None:
        """Compare the blitted frame with a full draw; on any difference, blit no more."""
        self._check_next, self._since_check = False, 0
        canvas = self.figure.canvas
        blitted = np.array(canvas.buffer_rgba(), copy=True)
        self.full_draws += 1
        started = self._clock()
        canvas.draw()
        self._full_seconds = self._clock() - started
        if not np.array_equal(blitted, np.asarray(canvas.buffer_rgba())):
            self._turn_off("a blitted frame differed from a full draw")
            logger.warning("automatic blitting gave a frame different from a full draw (a change "
                           "matplotlib does not flag, such as an array mutated in place); this "
                           "figure is drawn in full from now on")

    # -- what changed, and where ----------------------------------------------------------------
    def _changed(self) -> list[int] | None:
        """Indices of the stale units, in paint order; ``None`` when a change is not one of units
        (a stale axes with no stale child)."""
        if any(axis.stale or axis_looks(axis) != self._axis_looks.get(id(axis))
               for axis in self._axes_axes()):
            return None  # new ticks or labels can move the title and the layout
        # An axis's parts are stale after most draws (each draw positions them), so the
        # axis itself speaks for them.
        changed = [i for i, unit in enumerate(self._units) if unit.owner is None and (
            unit.artist.stale or unflagged(unit.artist) != unit.unflagged)]
        projected = {id(self._units[i].parent) for i in changed if is_3d(self._units[i].parent)
                     and isinstance(self._units[i].artist, (Collection, Patch))}
        if projected:
            self._whole |= projected
            return None
        parents = {id(self._units[i].parent) for i in changed if self._units[i].parent is not None}
        for artist in self.figure.get_children()[1:]:
            if self._opens(artist) and artist.stale and id(artist) not in parents:
                return None
        return changed

    def _groups(self, changed: list[int], now: dict[int, tuple[Box, ...]]) -> list[_Group]:
        """Changed units merged while their regions (then and now) touch, in paint order."""
        size = self._frame.shape[:2]
        groups = []
        for i in changed:
            region = union((*self._units[i].boxes, *now[i]))
            if self._drawn_whole(i):
                # Some room to move keeps frames partial while a 3D view turns.
                region = region.grown(UNIT_AXES_MARGIN, *size)
            groups.append(_Group(i, region, [i]))
        merged = True
        while merged:
            merged = False
            for a in range(len(groups)):
                for b in range(a + 1, len(groups)):
                    if groups[a].region.intersects(groups[b].region):
                        groups[a] = _Group(groups[a].first, groups[a].region.union(groups[b].region),
                                           groups[a].members + groups[b].members)
                        del groups[b]
                        merged = True
                        break
                if merged:
                    break
        for group in groups:
            self._leaders[id(self._units[group.first].artist)] = group.region
        return groups

    def _preview(self, index: int, renderer) -> tuple[Box, ...]:
        """Where a changed unit will paint, as far as can be told before drawing it: axes drawn
        whole and anything a 3D view projects are known only once drawn, so the first are
        taken where they were (with room around, see _groups) and the second anywhere their
        clip allows; the drawn result is checked against the region afterwards."""
        unit = self._units[index]
        size = self._frame.shape[:2]
        if self._drawn_whole(index):
            return unit.boxes
        if isinstance(unit.artist, PROJECTED_3D):
            return (clip_box(unit.artist, *size),)
        return paint_boxes(unit.artist, renderer, *size)

    def _placed_boxes(self, index: int, renderer) -> tuple[Box, ...]:
        """Where a unit whose draw placed it has just painted.

        For axes drawn whole that is their tight box, whose ticks and labels
        cost more to measure than most partial frames take to draw: it is
        measured again only when those look different from the last time (or
        the axes moved), and otherwise only what they hold that is not clipped
        to them is measured anew.
        """
        artist = self._units[index].artist
        size = self._frame.shape[:2]
        if not is_axes(artist):
            return paint_boxes(artist, renderer, *size)
        look = decorations_look(artist)
        known = self._decorations.get(id(artist))
        if known is None or known[0] != look:
            boxes = paint_boxes(artist, renderer, *size)
            self._decorations[id(artist)] = (look, boxes)
            return boxes
        return known[1] + tuple(box for child in unclipped_children(artist)
                                for box in paint_boxes(child, renderer, *size))

    def _drawn_whole(self, index: int) -> bool:
        """Whether the unit is axes drawn whole (3D, contours...): where they paint is costly
        to find out, and known only once they are drawn (the view may turn)."""
        return is_axes(self._units[index].artist)

    def _find_frames_3d(self, renderer, height: int, width: int) -> list[tuple[int, int, Box]]:
        """Per opened 3D axes: its id, the index of its first unit drawn after its panes, grids
        and axes, and where those paint (the axes' own box)."""
        frames = []
        for axes in self.figure.get_children()[1:]:
            if not (self._opens(axes) and is_3d(axes)):
                continue
            own = [i for i, unit in enumerate(self._units) if unit.parent is axes]
            data = [i for i in own if self._units[i].artist is not axes.patch
                    and not isinstance(self._units[i].artist, Axis)]
            if own:
                frames.append((id(axes), data[0] if data else own[-1] + 1,
                               union(paint_boxes(axes, renderer, height, width))))
        return frames

    def _choose_snapshots(self, groups: list[_Group], keep: bool = True) -> bool:
        """Give every group the unit its redraw starts from (see _start_for). False if a group
        has none.

        With ``keep``, a group that starts before its first unit has its region widened where
        that start allows (see _room_for_snapshot), so the buffer on the way, just before the
        first unit, can be kept as that unit's snapshot: the next frames start there.
        """
        taken = sorted((self._index[key], snap) for key, snap in self._snapshots.items())
        for group in groups:
            group.start = self._start_for(group.region, group.first, taken)
            if group.start < 0:
                return False
            if keep and group.start < group.first:
                room = self._room_for_snapshot(group)
                start = self._start_for(room, group.first, taken)
                if start >= 0:
                    group.start, group.region = start, room
                group.keeps_snapshot = True
        return True

    def _start_for(self, region: Box, first: int, taken: list[tuple[int, _Snapshot]]) -> int:
        """The latest unit at or before ``first`` whose snapshot covers ``region`` and is clean
        there, where no 3D axes' panes, grids or axes would need painting again (only its own
        draw can); -1 if there is none."""
        for start, snap in reversed(taken):
            if start > first or not snap.box.contains(region) or any(
                    box.intersects(region) for box in snap.dirty.values()):
                continue
            if any(start < data and region.intersects(box) for _, data, box in self._frames_3d):
                return -1  # an earlier snapshot would need those painted too
            return start
        return -1

    def _room_for_snapshot(self, group: _Group) -> Box:
        """Where a snapshot kept before the group's first unit should hold pixels: its region,
        its axes and a margin, so the regions of the next frames fit in it."""
        unit = self._units[group.first]
        size = self._frame.shape[:2]
        room = group.region
        if unit.parent is not None:
            room = room.union(_bbox_box(unit.parent, *size))
        return room.grown(SNAPSHOT_MARGIN, *size)

    # -- partial draws ----------------------------------------------------------------------------
    def _partial_draw(self, groups: list[_Group],
                      now: dict[int, tuple[Box, ...]]) -> dict[int, _Snapshot]:
        """Per group: restore its region from the snapshot taken before its start unit, draw
        every unit from there on that paints there, in paint order, and keep the region. Other
        pixels are the last frame's. Returns the snapshots groups keep before their first unit
        (see _choose_snapshots), by id of that unit's artist."""
        canvas = self.figure.canvas
        renderer = canvas.get_renderer()
        buffer = np.asarray(canvas.buffer_rgba())
        frame = self._frame
        kept: dict[int, _Snapshot] = {}
        for group in groups:
            region = group.region
            snap = self._snapshots[id(self._units[group.start].artist)]
            top, left = region.top - snap.box.top, region.left - snap.box.left
            buffer[region.slices] = snap.pixels[top:top + region.bottom - region.top,
                                                left:left + region.right - region.left]
            for i in range(group.start, len(self._units)):
                if i == group.first and group.keeps_snapshot:
                    kept[id(self._units[i].artist)] = _Snapshot(
                        region, buffer[region.slices].copy())
                boxes = now.get(i, self._units[i].boxes)
                if any(box.intersects(region) for box in boxes):
                    self._units[i].artist.draw(renderer)
            frame[region.slices] = buffer[region.slices]
        buffer[...] = frame
        for unit in self._units:
            if unit.parent is not None:
                unit.parent.stale = False
        self.figure.stale = False
        return kept

    def _record_changes(self, changed: list[int], now: dict[int, tuple[Box, ...]]) -> None:
        """The changed units paint where they do now; snapshots taken before them are dirty there."""
        for i in changed:
            unit = self._units[i]
            touched = union((*unit.boxes, *now[i]))
            unit.boxes, unit.unflagged = now[i], unflagged(unit.artist)
            for key, snap in self._snapshots.items():
                if self._index[key] > i:
                    snap.dirty[i] = snap.dirty.get(i, EMPTY).union(touched)

    def _opens(self, artist: Artist) -> bool:
        """Whether ``artist`` is axes whose children are units of their own."""
        return (is_plain_axes(artist) or is_3d(artist)) and id(artist) not in self._whole

    def _axes_axes(self) -> list[Axis]:
        """The axes (x, y, and z in 3D) of every opened-up axes that draws them."""
        return [child for axes in self.figure.get_children()[1:] if self._opens(axes)
                for child in axes.get_children() if isinstance(child, Axis) and child.get_visible()
                and (axes.axison or is_3d(axes))]

    def _measure(self) -> dict:
        """Everything whose change invalidates recorded units: sizes, axes, limits, artist sets.
        Keyed by axes id (``None``: the figure); what only opened axes depend on is apart."""
        fig = self.figure
        parts: dict[int | None, Any] = {
            None: (tuple(fig.bbox.bounds), fig.dpi, tuple(map(id, fig.get_children())))}
        for axes in fig.get_axes():
            placed = (tuple(axes.get_position().bounds), tuple(axes.viewLim.bounds), axes.axison,
                      axes.xaxis.get_visible(), axes.yaxis.get_visible(),
                      view_3d(axes) if is_3d(axes) else None, polar_look(axes))
            # Axes drawn whole: their children and frame do not matter.
            opened = ((is_plain_axes(axes) and axes.get_frame_on(), children_of(axes))
                      if self._opens(axes) else None)
            parts[id(axes)] = (placed, opened)
        return parts


def blitting_pays(partial_seconds: Sequence[float], full_seconds: float) -> bool:
    """Whether blitted frames (their durations, seconds) are cheaper than a full draw: their
    median is below ``full_seconds``."""
    return statistics.median(partial_seconds) < full_seconds


def _bbox_box(axes: Artist, height: int, width: int) -> Box:
    x0, y0, x1, y1 = axes.bbox.extents
    return Box(max(height - int(np.ceil(y1)), 0), min(height - int(np.floor(y0)), height),
               max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), width))


