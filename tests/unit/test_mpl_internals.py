"""Pins each assumption render/mpl_internals.py makes about matplotlib's private corners.

Every test names the adapter function it stands for: if one fails after a
matplotlib upgrade, that function (and its docstring) is the one to revisit.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.axis
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.layout_engine import LayoutEngine
from matplotlib.lines import Line2D
from matplotlib.path import Path
from matplotlib.projections.polar import PolarAxes
from matplotlib.transforms import Bbox
from mpl_toolkits.mplot3d.axes3d import Axes3D

from celery_animate.render.mpl_internals import (
    AXES_BASE,
    axis_map,
    draws_as_base_axes,
    fully_clipped_to_axes,
    interpolation_steps,
    is_axes,
    layout_engine_is_inert,
    run_layout,
    spine_position_as_set,
    titles,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_the_private_base_class_is_the_base_of_every_kind_of_axes():
    """AXES_BASE, is_axes: plain, polar and 3D axes, and a colorbar's, all derive from it."""
    assert AXES_BASE is not Axes and issubclass(Axes, AXES_BASE)
    assert issubclass(PolarAxes, AXES_BASE) and issubclass(Axes3D, AXES_BASE)
    fig = plt.figure()
    plain = fig.add_subplot(131)
    polar = fig.add_subplot(132, projection="polar")
    three_d = fig.add_subplot(133, projection="3d")
    colorbar = fig.colorbar(plain.imshow(np.eye(2)), ax=plain)
    assert all(is_axes(axes) for axes in (plain, polar, three_d, colorbar.ax))
    (line,) = plain.plot([0, 1])
    assert not any(is_axes(other) for other in (fig, line, plain.xaxis, plain.patch))


def test_plain_axes_inherit_the_base_draw_and_others_override_it():
    """draws_as_base_axes: Axes paint through the base class's draw; polar and 3D do not."""
    assert Axes.draw is AXES_BASE.draw
    assert PolarAxes.draw is not AXES_BASE.draw and Axes3D.draw is not AXES_BASE.draw
    fig = plt.figure()
    assert draws_as_base_axes(fig.add_subplot(131))
    assert not draws_as_base_axes(fig.add_subplot(132, projection="polar"))
    assert not draws_as_base_axes(fig.add_subplot(133, projection="3d"))


def test_the_axis_map_holds_each_axes_own_axis_objects_by_name():
    """axis_map: x and y for 2D axes (theta and r under those names on polar), plus z in 3D."""
    fig = plt.figure()
    plain = fig.add_subplot(131)
    polar = fig.add_subplot(132, projection="polar")
    three_d = fig.add_subplot(133, projection="3d")
    assert list(axis_map(plain)) == ["x", "y"]
    assert axis_map(plain)["x"] is plain.xaxis and axis_map(plain)["y"] is plain.yaxis
    assert [axis_map(polar)[name] for name in "xy"] == [polar.xaxis, polar.yaxis]
    assert list(axis_map(three_d)) == ["x", "y", "z"] and axis_map(three_d)["z"] is three_d.zaxis
    assert all(isinstance(axis, matplotlib.axis.Axis) for axis in axis_map(three_d).values())


def test_the_three_titles_are_the_texts_set_title_writes_to():
    """titles: centre, left and right, the Text objects set_title(loc=...) changes, drawn as
    children of the axes."""
    _, ax = plt.subplots()
    centre, left, right = titles(ax)
    assert ax.set_title("c") is centre and centre is ax.title
    assert ax.set_title("l", loc="left") is left and ax.set_title("r", loc="right") is right
    assert [text.get_text() for text in titles(ax)] == ["c", "l", "r"]
    assert {id(text) for text in titles(ax)} <= {id(child) for child in ax.get_children()}


def test_a_spine_position_is_read_without_setting_one():
    """spine_position_as_set: None on a polar spine until get_position() stores the default
    there; what set_position() stored otherwise. Reading it stores nothing."""
    fig = plt.figure()
    polar = fig.add_subplot(121, projection="polar")
    spine = polar.spines["polar"]
    assert spine_position_as_set(spine) is None
    assert spine_position_as_set(spine) is None  # still: reading did not set it
    spine.get_position()
    assert spine_position_as_set(spine) == ("outward", 0.0)
    plain = fig.add_subplot(122)
    plain.spines["left"].set_position(("axes", 0.25))
    assert spine_position_as_set(plain.spines["left"]) == ("axes", 0.25)


def test_fully_clipped_to_axes_means_clipped_to_the_axes_box_or_patch():
    """fully_clipped_to_axes: a plotted line is (by its axes' bbox; on polar axes, by its
    patch); a line with clipping off, clipped elsewhere or outside axes, and a text, are not."""
    fig = plt.figure()
    ax = fig.add_subplot(121)
    (clipped,) = ax.plot([0, 1])
    (unclipped,) = ax.plot([0, 1], clip_on=False)
    (elsewhere,) = ax.plot([0, 1])
    elsewhere.set_clip_box(Bbox([[0, 0], [10, 10]]))
    text = ax.text(0.5, 0.5, "unclipped by default")
    loose = fig.add_artist(Line2D([0, 1], [0, 1]))
    assert fully_clipped_to_axes(clipped)
    assert not fully_clipped_to_axes(unclipped) and not fully_clipped_to_axes(elsewhere)
    assert not text.get_clip_on() and not fully_clipped_to_axes(text)
    assert fully_clipped_to_axes(ax.text(0.5, 0.5, "clipped", clip_on=True))
    assert loose.get_clip_on() and not fully_clipped_to_axes(loose)
    polar = fig.add_subplot(122, projection="polar")
    (arc,) = polar.plot([0, 1], [0, 1])
    assert arc.get_clip_box() is None and fully_clipped_to_axes(arc)


def test_polar_grid_lines_are_drawn_through_more_points_than_their_path_has():
    """interpolation_steps: 1 for a plotted line; the grid steps for a polar grid line, whose
    transform then yields many more vertices than the path holds (extents.py measures those)."""
    fig = plt.figure()
    (line,) = fig.add_subplot(121).plot([0, 1])
    polar = fig.add_subplot(122, projection="polar")
    assert interpolation_steps(line.get_path()) == 1
    circle = polar.yaxis.get_major_ticks()[1].gridline
    steps = interpolation_steps(circle.get_path())
    assert steps == matplotlib.axis.GRIDLINE_INTERPOLATION_STEPS > 1
    path = circle.get_path()
    assert len(circle.get_transform().transform_path(path).vertices) > len(path.vertices)
    two_points = Path(path.vertices[:2])
    assert len(circle.get_transform().transform_path(two_points).vertices) == 2


def test_only_tight_layout_s_leftover_engine_and_no_engine_are_inert():
    """layout_engine_is_inert: no engine, or the placeholder tight_layout() leaves, whose
    execute moves nothing; a constrained or tight engine is not inert."""
    fig, axs = plt.subplots(1, 2)
    assert fig.get_layout_engine() is None and layout_engine_is_inert(fig)
    fig.tight_layout()
    assert fig.get_layout_engine() is not None and layout_engine_is_inert(fig)
    axs[0].set_position([0.1, 0.1, 0.2, 0.2])
    fig.get_layout_engine().execute(fig)
    assert axs[0].get_position().bounds == pytest.approx((0.1, 0.1, 0.2, 0.2))
    for layout in ("constrained", "tight", "compressed"):
        assert not layout_engine_is_inert(plt.figure(layout=layout))


def _figure(layout):
    """Panels of different label widths, a colorbar, an equal-aspect axes and a suptitle:
    the layout engine and the aspect both move axes."""
    fig, axs = plt.subplots(2, 2, layout=layout, figsize=(6, 4), dpi=50)
    for i, ax in enumerate(axs.flat):
        ax.plot(np.arange(10) * 10.0 ** (2 * i))
        ax.set_title(f"panel {i}")
        ax.set_ylabel("a longer y label" * (i % 2 + 1))
    fig.colorbar(axs[0, 0].imshow(np.eye(3)), ax=axs[0, 0])
    axs[1, 1].set_aspect("equal")
    fig.suptitle("figure")
    return fig


def _placed(fig):
    return [(tuple(ax.get_position().bounds), tuple(ax.bbox.bounds)) for ax in fig.axes]


@pytest.mark.parametrize("layout", ["constrained", "tight", None])
def test_run_layout_places_every_axes_where_a_full_draw_does(layout):
    """run_layout: the same axes positions, exactly, as Figure.draw's layout and aspect steps."""
    laid_out, drawn, untouched = _figure(layout), _figure(layout), _figure(layout)
    run_layout(laid_out, laid_out.canvas.get_renderer())
    drawn.canvas.draw()
    assert _placed(laid_out) == _placed(drawn)
    assert _placed(laid_out) != _placed(untouched)  # there was something to place


class _Counting(LayoutEngine):
    """A layout engine that counts its runs and, if told to, fails as a layout that cannot be
    made does (ValueError)."""

    def __init__(self, fails: bool = False):
        super().__init__()
        self.runs = 0
        self.fails = fails

    def execute(self, fig):
        self.runs += 1
        if self.fails:
            raise ValueError("no room")


def test_figure_draw_runs_the_engine_once_if_it_has_axes_and_ignores_its_value_error():
    """run_layout: Figure.draw runs the engine's execute once per draw, only with axes, and
    swallows a ValueError from it; run_layout does the same."""
    for fails in (False, True):
        fig = plt.figure()
        engine = _Counting(fails)
        fig.set_layout_engine(engine)
        fig.canvas.draw()  # no axes: not run
        run_layout(fig, fig.canvas.get_renderer())
        assert engine.runs == 0
        fig.add_subplot()
        fig.canvas.draw()
        assert engine.runs == 1
        run_layout(fig, fig.canvas.get_renderer())
        assert engine.runs == 2
