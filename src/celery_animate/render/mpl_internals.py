"""matplotlib's private names, the only place in ``celery_animate.render`` that reaches them.

Automatic blitting (:mod:`celery_animate.render.blit`, :mod:`celery_animate.render.paint_order`,
:mod:`celery_animate.render.extents`) must reproduce a full ``Figure.draw`` pixel for pixel,
which takes a few things matplotlib keeps private: the base class of every axes, the titles
and axis map of an axes, what ``Figure.draw`` does before it paints, and so on. Each is
wrapped here in a small function or constant whose docstring names the internal and the
versions it was read against. The project requires matplotlib >= 3.10; every internal below
was read in the installed 3.11.2 source and is pinned by ``tests/unit/test_mpl_internals.py``,
so an upgrade that changes one fails there, naming the function to revisit.

Nothing here changes what matplotlib does: each function does exactly what the code that
used the private name did before.
"""

from __future__ import annotations

import contextlib

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axes._base import _AxesBase
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.path import Path
from matplotlib.spines import Spine
from matplotlib.text import Text

#: The private base class of every matplotlib axes: ``Axes`` (so ``PolarAxes``) and the
#: toolkits' ``Axes3D`` derive from it. ``matplotlib.axes._base._AxesBase``, where it has been
#: since the axes module became a package (1.4); as of 3.11.2 ``Axes`` does not override its
#: ``draw``. For ``isinstance`` tuples; prefer :func:`is_axes` elsewhere.
AXES_BASE: type = _AxesBase


def is_axes(artist: object) -> bool:
    """Whether ``artist`` is an axes of any kind (2D, polar, 3D, or a third party's).

    Relies on ``matplotlib.axes._base._AxesBase`` being the base of them all (see
    :data:`AXES_BASE`), the same test ``Figure`` itself makes on what it holds.
    """
    return isinstance(artist, _AxesBase)


def draws_as_base_axes(artist: Artist) -> bool:
    """Whether ``artist``'s class paints with the base axes ``draw`` unchanged: patch, then
    children by z-order, each through its own ``draw`` (what ``Axes`` and plain subplots do).

    Relies on ``_AxesBase.draw`` being the method ``Axes`` inherits (true since 1.4, checked
    in 3.11.2); a class that overrides ``draw`` (polar, 3D, toolkits) answers False.
    """
    return type(artist).draw is _AxesBase.draw


def axis_map(axes: Axes) -> dict[str, Axis]:
    """The axes' ``Axis`` objects by name: ``x`` and ``y``, plus ``z`` in 3D (polar axes keep
    theta and r under ``x`` and ``y``), in the order the axes made them.

    Relies on ``_AxesBase._axis_map``: a property since matplotlib 3.6 (PR #22412), a dict set
    in ``_AxesBase.__init__`` since PR #29424 (as in 3.11.2). Read-only use: do not mutate it.
    """
    return axes._axis_map


def titles(axes: Axes) -> tuple[Text, Text, Text]:
    """The axes' three title texts: centre (the public ``axes.title``), left and right.

    Relies on ``_AxesBase._left_title`` and ``_AxesBase._right_title``, the ``Text`` objects
    ``set_title(loc="left"|"right")`` writes to (unchanged since ``loc`` appeared, checked in
    3.11.2); ``get_title(loc=...)`` gives only their strings.
    """
    return axes.title, axes._left_title, axes._right_title


def spine_position_as_set(spine: Spine) -> object:
    """What ``spine.set_position`` last stored, or None if nothing did (a polar spine's, for
    one), read without the side effect of ``Spine.get_position()``, which stores
    ``("outward", 0.0)`` on a spine that has none and so moves what it draws.

    Relies on ``Spine._position`` (since spines were added, checked in 3.11.2).
    """
    return spine._position


def fully_clipped_to_axes(artist: Artist) -> bool:
    """Whether ``artist`` cannot paint outside its axes: it belongs to axes, clipping is on,
    and its clip box is the axes' bbox (same extents) and/or its clip path is the axes
    patch. False for anything not in axes, unclipped, or clipped elsewhere.

    Relies on ``Artist._fully_clipped_to_axes()``, what ``_AxesBase.get_tightbbox`` uses to
    skip such artists (added by matplotlib PR #21935 in 2022, present in 3.10, read in 3.11.2).
    """
    return artist._fully_clipped_to_axes()


def interpolation_steps(path: Path) -> int:
    """How many segments a non-affine transform (polar's) cuts each segment of ``path`` into
    before transforming it: 1 for an ordinary path; more for grid lines and spans that a
    polar transform draws as arcs (``GRIDLINE_INTERPOLATION_STEPS``, 180 as of 3.11.2).

    Relies on ``Path._interpolation_steps``, set through the private ``Path(...,
    _interpolation_steps=)`` argument and read by ``PolarTransform.transform_path_non_affine``
    (long-standing, checked in 3.11.2).
    """
    return path._interpolation_steps


def layout_engine_is_inert(figure: Figure) -> bool:
    """Whether running ``figure``'s layout engine changes nothing: it has none, or only the
    ``PlaceHolderLayoutEngine`` that ``Figure.tight_layout()`` and
    ``set_layout_engine("none")`` leave behind, whose ``execute`` does nothing.

    Relies on ``Figure.tight_layout`` ending with ``set_layout_engine("none")`` over its own
    engine (checked in 3.11.2; ``PlaceHolderLayoutEngine`` exists since 3.6).
    """
    return isinstance(figure.get_layout_engine(), (type(None), PlaceHolderLayoutEngine))


def run_layout(figure: Figure, renderer) -> None:
    """Place every axes of ``figure`` where a full draw paints it, without painting: run the
    layout engine as ``Figure.draw`` does (only if the figure has axes; a ``ValueError`` from
    the engine, a layout that cannot be made, is ignored there and here), then apply each
    top-level axes' aspect (through its axes locator, if any, given ``renderer``) as each
    ``Axes.draw`` does before painting.

    Mirrors the private steps of ``Figure.draw`` in 3.11.2: ``Figure._get_draw_artists``
    applies aspects, then the engine runs, then each axes' ``draw`` applies its aspect again.
    The aspects applied before the engine are not repeated here (the engine measures axes
    through ``get_tightbbox``, which applies the aspect itself), and inset axes, which
    ``_get_draw_artists`` also reaches, are left to their parent's draw. Raises what the
    engine raises other than ``ValueError``. Running an engine is not idempotent in general
    (see :func:`layout_engine_is_inert`).
    """
    engine = figure.get_layout_engine()
    if figure.axes and engine is not None:
        with contextlib.suppress(ValueError):  # as in Figure.draw: a layout that cannot be made
            engine.execute(figure)
    for axes in figure.axes:
        locator = axes.get_axes_locator()
        axes.apply_aspect(locator(axes, renderer) if locator else None)
