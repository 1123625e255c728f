"""Every pixel an artist paints lies inside the boxes extents.paint_boxes gives for it.

Each case draws a figure with and without one artist; every pixel that
differs must be inside the artist's boxes. Boxes that are too small would
let automatic blitting leave stale pixels behind.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Circle, FancyArrowPatch

from celery_animate.render.extents import Box, paint_boxes, to_box, union


def thick_line(ax):
    return ax.plot([0, 1, 0.2], [0, 1, 0.9], lw=9, marker="s", ms=14, mew=3, solid_joinstyle="miter")[0]


def unclipped_line(ax):
    return ax.plot([-0.5, 1.5], [0.5, 2.0], lw=4, clip_on=False)[0]


def boxed_text(ax):
    return ax.text(0.5, 0.5, "boxed\ntext", fontsize=20, rotation=30,
                   bbox={"boxstyle": "round,pad=0.8", "lw": 5, "fc": "yellow"})


def annotation(ax):
    return ax.annotate("here", (0.2, 0.2), xytext=(0.8, 0.9), fontsize=16,
                       arrowprops={"arrowstyle": "-|>", "lw": 4, "mutation_scale": 30})


def thick_patch(ax):
    return ax.add_patch(Circle((0.5, 0.5), 0.3, lw=12, ec="k", fc="none"))


def arrow(ax):
    return ax.add_patch(FancyArrowPatch((0.1, 0.1), (0.9, 0.6), arrowstyle="fancy", mutation_scale=40,
                                        lw=3))


def image(ax):
    return ax.imshow(np.random.default_rng(0).random((8, 8)), extent=(0.1, 0.9, 0.1, 0.9))


def legend(ax):
    ax.plot([0, 1], [0, 1], label="a long legend entry")
    return ax.legend(loc="center", shadow=True, fontsize=14)


def x_axis(ax):
    ax.grid(True)
    ax.set_xlabel("a label")
    return ax.xaxis


CASES = [thick_line, unclipped_line, boxed_text, annotation, thick_patch, arrow, image, legend, x_axis]


def assert_paints_inside_its_boxes(fig, artist) -> None:
    fig.canvas.draw()
    with_it = np.array(fig.canvas.buffer_rgba())
    boxes = paint_boxes(artist, fig.canvas.get_renderer(), *with_it.shape[:2])
    artist.set_visible(False)
    fig.canvas.draw()
    without = np.asarray(fig.canvas.buffer_rgba())
    painted = (with_it != without).any(axis=2)
    assert painted.any()  # the case draws something
    inside = np.zeros_like(painted)
    for box in boxes:
        inside[box.slices] = True
    rows, cols = np.nonzero(painted & ~inside)
    assert rows.size == 0, f"{rows.size} pixels outside {boxes}, e.g. row {rows[0]} col {cols[0]}"
    plt.close(fig)


@pytest.mark.parametrize("make", CASES, ids=lambda make: make.__name__)
def test_an_artist_paints_only_inside_its_boxes(make):
    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    assert_paints_inside_its_boxes(fig, make(ax))


def test_a_polar_grid_circle_paints_inside_its_boxes():
    # Two points (theta 0 and 2 pi at one radius), drawn as the circle through them.
    fig = plt.figure(figsize=(3, 3), dpi=80)
    ax = fig.add_subplot(projection="polar")
    ax.set_rgrids([0.6])
    fig.canvas.draw()
    circle = ax.yaxis.get_major_ticks()[0].gridline
    assert len(circle.get_xydata()) == 2
    assert_paints_inside_its_boxes(fig, circle)


def test_an_invisible_artist_paints_nowhere():
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1])
    line.set_visible(False)
    fig.canvas.draw()
    assert paint_boxes(line, fig.canvas.get_renderer(), 480, 640) == ()
    plt.close(fig)


def test_boxes_are_buffer_rows_from_the_top_and_clipped_to_the_canvas():
    from matplotlib.transforms import Bbox

    box = to_box(Bbox([[10, 400], [50, 470]]), 0, 480, 640)  # display y grows upwards
    assert box == Box(top=8, bottom=82, left=8, right=52)  # 2 pixels of antialiasing each side
    assert to_box(Bbox([[-100, -100], [10000, 10000]]), 0, 480, 640) == Box(0, 480, 0, 640)
    assert union([Box(0, 1, 0, 1), Box(5, 6, 5, 6)]) == Box(0, 6, 0, 6)
    assert not Box(0, 5, 0, 5).intersects(Box(5, 9, 0, 5))  # half-open: touching is not overlapping
