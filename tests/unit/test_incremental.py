"""Automatic blitting draws exactly what a full draw does, frame by frame, on many kinds of figure.

Each animator is rendered twice in this process, once redrawing from the first
changed artist and once with full draws, and every frame must be identical to
the byte. Where blitting can help, the tests also check it really happened.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from bench import ported
from celery_animate import Animator
from celery_animate.render.blit import COST_SAMPLES, FULL_DRAWS_IN_ROW, blitting_pays
from celery_animate.render.frame_loop import PreparedFigure, render_frames
from examples import gridspec_dashboard, multi_panel, out_of_order_loader, wave

X = np.linspace(0, 2 * np.pi, 120)


def phases(n):
    return [{"phase": 0.4 * i} for i in range(n)]


class Base(Animator):
    def figure(self, **kwargs):
        fig, ax = plt.subplots(figsize=(3.2, 2.4), dpi=60, **kwargs)
        return fig, ax


class LegendOverLine(Base):
    def setup(self):
        fig, ax = self.figure()
        (self.line,) = ax.plot(X, np.sin(X), label="a wave under the legend", lw=6)
        ax.legend(loc="center", framealpha=0.6)
        ax.set_ylim(-1, 1)  # the line touches the top and bottom spines
        self.title = ax.set_title("")
        return fig

    def update(self, frame_idx, params):
        self.line.set_ydata(np.sin(X + params["phase"]))
        self.title.set_text(f"frame {frame_idx}")


class ChangingSuptitle(Base):
    def setup(self):
        fig, ax = self.figure()
        (self.line,) = ax.plot(X, np.sin(X))
        self.sup = fig.suptitle("")
        self.note = fig.text(0.02, 0.02, "")
        return fig

    def update(self, frame_idx, params):
        self.line.set_ydata(np.cos(X + params["phase"]))
        self.sup.set_text("t = " + "#" * frame_idx)
        self.note.set_text(str(frame_idx))


class ImageWithColorbar(Base):
    def __init__(self, moving_clim=False):
        self.moving_clim = moving_clim

    def setup(self):
        fig, ax = self.figure()
        self.image = ax.imshow(np.zeros((20, 30)), vmin=-1, vmax=1, cmap="viridis")
        fig.colorbar(self.image, ax=ax)
        return fig

    def update(self, frame_idx, params):
        grid = np.sin(np.add.outer(np.linspace(0, 3, 20), np.linspace(0, 5, 30)) + params["phase"])
        self.image.set_data(grid)
        if self.moving_clim:
            self.image.set_clim(-1 - 0.1 * frame_idx, 1)


class BarsAndScatter(Animator):
    def setup(self):
        fig, (left, right) = plt.subplots(1, 2, figsize=(4, 2), dpi=60)
        self.bars = left.bar(range(6), np.ones(6))
        left.set_ylim(0, 2)
        self.dots = right.scatter(np.arange(10), np.arange(10), c=np.arange(10))
        right.set_xlim(-1, 11)
        right.set_ylim(-1, 11)
        return fig

    def update(self, frame_idx, params):
        for k, bar in enumerate(self.bars):
            bar.set_height(1 + 0.5 * np.sin(params["phase"] + k))
        self.dots.set_offsets(np.c_[np.arange(10), (np.arange(10) + frame_idx) % 10])
        self.dots.set_array((np.arange(10) + frame_idx) % 10)


class ThreeD(Animator):
    def setup(self):
        fig = plt.figure(figsize=(3, 3), dpi=50)
        ax = fig.add_subplot(projection="3d")
        (self.line,) = ax.plot(X, np.sin(X), np.cos(X))
        ax.set_zlim(-1, 1)
        return fig

    def update(self, frame_idx, params):
        self.line.set_data_3d(X, np.sin(X + params["phase"]), np.cos(X))


class PolarAndCartesian(Animator):
    def setup(self):
        fig = plt.figure(figsize=(4, 2), dpi=60)
        self.static = fig.add_subplot(121)
        self.static.plot(X, np.sin(X))
        polar = fig.add_subplot(122, projection="polar")
        (self.line,) = polar.plot(X, 1 + 0.5 * np.sin(X))
        polar.set_ylim(0, 2)  # grid circles cross the line
        return fig

    def update(self, frame_idx, params):
        self.line.set_ydata(1 + 0.5 * np.sin(3 * X + params["phase"]))


class TwinsAndInset(Base):
    def setup(self):
        fig, ax = self.figure()
        twin = ax.twinx()
        (self.left,) = ax.plot(X, np.sin(X), color="C0")
        (self.right,) = twin.plot(X, 10 * np.cos(X), color="C1")
        inset = ax.inset_axes([0.6, 0.6, 0.35, 0.35])
        (self.small,) = inset.plot(X, np.sin(2 * X), color="C2")
        ax.set_ylim(-1.5, 1.5)
        twin.set_ylim(-15, 15)
        return fig

    def update(self, frame_idx, params):
        self.right.set_ydata(10 * np.cos(X + params["phase"]))
        if frame_idx % 2:
            self.small.set_ydata(np.sin(2 * X + params["phase"]))


class OverlappingAxes(Animator):
    def setup(self):
        fig = plt.figure(figsize=(3, 3), dpi=60)
        under = fig.add_axes((0.1, 0.1, 0.7, 0.7))
        over = fig.add_axes((0.4, 0.4, 0.5, 0.5))
        (self.under,) = under.plot(X, np.sin(X), lw=4)
        over.plot(X, np.cos(X))
        return fig

    def update(self, frame_idx, params):
        self.under.set_ydata(np.sin(X + params["phase"]))


class Layout(Animator):
    def __init__(self, layout):
        self.layout = layout

    def setup(self):
        fig, axes = plt.subplots(1, 2, figsize=(4, 2), dpi=60, layout=self.layout)
        (self.line,) = axes[0].plot(X, np.sin(X))
        self.label = axes[1].set_ylabel("")
        axes[1].plot(X, X)
        return fig

    def update(self, frame_idx, params):
        self.line.set_ydata(np.sin(X + params["phase"]))
        if frame_idx % 3 == 0:  # a longer label moves the layout
            self.label.set_text("y" * (1 + frame_idx))


class ReAddedEachFrame(Animator):
    def setup(self):
        fig = plt.figure(figsize=(4, 2), dpi=50)
        self.flat = fig.add_subplot(121)
        self.surface_axes = fig.add_subplot(122, projection="3d")
        self.contours = self.surface = None
        self.grid = np.meshgrid(np.linspace(-2, 2, 15), np.linspace(-2, 2, 15))
        return fig

    def update(self, frame_idx, params):
        gx, gy = self.grid
        z = np.sin(gx * gy + params["phase"])
        if self.contours is not None:
            self.contours.remove()
            self.surface.remove()
        self.contours = self.flat.contourf(gx, gy, z, levels=6)
        self.surface = self.surface_axes.plot_surface(gx, gy, z, cmap="viridis")


class StartsReAddingLater(Animator):
    """A band re-added each frame from frame 3 on, in axes that blitted until then, beside 3D
    axes whose line changes (opened up) and, from frame 5 on, whose surface is re-added too,
    and a moving figure text."""

    def setup(self):
        fig = plt.figure(figsize=(9, 2), dpi=50)
        self.flat = fig.add_subplot(131)
        (self.line,) = self.flat.plot(X, np.sin(X))
        self.flat.set_ylim(-2, 2)
        self.space = fig.add_subplot(133, projection="3d")
        (self.helix,) = self.space.plot(X, np.sin(X), np.cos(X))
        self.space.set(xlim=(-1, 7), ylim=(-1.5, 1.5), zlim=(-1, 1))  # the surface moves none
        self.note = fig.text(0.45, 0.5, "")
        self.band = self.surface = None
        self.grid = np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8))
        return fig

    def update(self, frame_idx, params):
        phase = params["phase"]
        self.line.set_ydata(np.sin(X + phase))
        self.helix.set_data_3d(X, np.sin(X + phase), np.cos(X))
        self.note.set_text(f"t = {phase:.1f}")
        if self.band is not None:
            self.band.remove()
            self.band = None
        if frame_idx >= 3:
            self.band = self.flat.fill_between(X, np.sin(X + phase) - 0.3, np.sin(X + phase) + 0.3,
                                               alpha=0.4)
        if self.surface is not None:
            self.surface.remove()
            self.surface = None
        if frame_idx >= 5:
            gx, gy = self.grid
            self.surface = self.space.plot_surface(gx, gy, 0.5 * np.sin(gx * gy + phase))


class TurningPolar(Animator):
    """Turns a polar plot by its theta offset and moves its radial labels: matplotlib marks
    nothing stale."""

    def setup(self):
        fig = plt.figure(figsize=(4, 2), dpi=50)
        fig.add_subplot(121).plot(X, np.cos(X))
        self.polar = fig.add_subplot(122, projection="polar")
        self.polar.plot(X, 1 + 0.5 * np.sin(3 * X))
        return fig

    def update(self, frame_idx, params):
        self.polar.set_theta_offset(params["phase"])
        self.polar.set_rlabel_position(20 * frame_idx)


class MutatesInPlace(Base):
    """Moves its points by writing into the offsets array: matplotlib is never told."""

    def setup(self):
        fig, ax = self.figure()
        self.dots = ax.scatter(np.arange(10.0), np.zeros(10), s=80)
        ax.set_ylim(-1, 10)
        self.title = ax.set_title("")
        return fig

    def update(self, frame_idx, params):
        self.dots.get_offsets()[:, 1] = (np.arange(10) + frame_idx) % 9
        self.title.set_text(f"frame {frame_idx}")


class RedrawnAndUnflagged(Base):
    """A contour set replaced every frame, a mesh whose data changes through set_array and an
    annotation moved through its xy attribute (the last two are never marked stale)."""

    def setup(self):
        fig, (self.left, right) = plt.subplots(1, 2, figsize=(4, 2), dpi=60)
        grid = np.linspace(-2, 2, 12)
        self.xx, self.yy = np.meshgrid(grid, grid)
        self.contour = None
        self.mesh = right.pcolormesh(grid, grid, np.zeros((11, 11)), vmin=-1, vmax=1)
        self.note = right.annotate("p", (0, 0), xytext=(1, 1), arrowprops={"arrowstyle": "->"})
        self.left.set(xlim=(-2, 2), ylim=(-2, 2))
        return fig

    def update(self, frame_idx, params):
        zz = np.sin(self.xx + params["phase"]) * np.cos(self.yy)
        if self.contour is not None:
            self.contour.remove()
        self.contour = self.left.contourf(self.xx, self.yy, zz, levels=np.linspace(-1, 1, 6))
        self.mesh.set_array(zz[:-1, :-1].ravel())
        self.note.xy = (np.cos(params["phase"]), np.sin(params["phase"]))


class WholeAxesDecorated(Animator):
    """Axes drawn whole (their contour set is replaced every frame) whose decorations change
    now and then, beside a text outside them that moves, and a title that grows."""

    def setup(self):
        fig = plt.figure(figsize=(4.4, 2.4), dpi=60)
        self.ax = fig.add_subplot(121)
        self.ax.set(xlim=(-2, 2), ylim=(-2, 2))
        right = fig.add_subplot(122)
        (self.line,) = right.plot(X, np.sin(X))
        grid = np.linspace(-2, 2, 12)
        self.xx, self.yy = np.meshgrid(grid, grid)
        self.contour = self.note = None
        return fig

    def update(self, frame_idx, params):
        if self.contour is not None:
            self.contour.remove()
            self.note.remove()
        self.contour = self.ax.contourf(self.xx, self.yy, np.sin(self.xx + params["phase"]),
                                        levels=np.linspace(-1, 1, 5))
        # not clipped: it paints over the gap between the axes, further each frame
        self.note = self.ax.text(1.02 + 0.04 * (frame_idx % 4), 0.5, "note", transform=self.ax.transAxes)
        self.ax.set_title("t" * (1 + frame_idx % 5))
        if frame_idx == 5:
            self.ax.tick_params(labelsize=14, length=8)
        if frame_idx == 8:
            self.ax.spines["left"].set_linewidth(4)
        self.line.set_ydata(np.sin(X + params["phase"]))


def render(animator, params, auto_blit, chunks=1, keep_blitting=True):
    prepared = PreparedFigure.prepare(animator)
    if keep_blitting:  # exactness is what these tests check: blit whatever it costs
        prepared.incremental.cost_samples = None
    frames = []
    pairs = list(enumerate(params))
    size = -(-len(pairs) // chunks)
    for start in range(0, len(pairs), size):
        frames += [rgb.copy() for _, rgb in render_frames(prepared, pairs[start:start + size],
                                                          auto_blit=auto_blit)]
    plt.close(prepared.figure)
    return frames, prepared


CASES = [
    (wave.WaveAnimation, wave.param_by_frame(12), True),
    (multi_panel.MultiPanelAnimation, list(multi_panel.param_by_frame(6)), False),
    (gridspec_dashboard.GridSpecDashboard, list(gridspec_dashboard.param_by_frame(4)), False),
    (out_of_order_loader.MovingBlob, [p for _, p in sorted(
        (item.frame_id, item.params) for item in out_of_order_loader.param_by_frame(8))], False),
    (LegendOverLine, phases(10), True),
    (ChangingSuptitle, phases(8), False),
    (ImageWithColorbar, phases(8), True),
    (lambda: ImageWithColorbar(moving_clim=True), phases(8), False),
    (BarsAndScatter, phases(8), False),
    (ThreeD, phases(6), True),
    (PolarAndCartesian, phases(8), True),
    (TurningPolar, phases(6), False),
    (TwinsAndInset, phases(10), True),
    (OverlappingAxes, phases(8), True),
    (lambda: Layout("tight"), phases(8), False),
    (lambda: Layout("constrained"), phases(8), False),
    (ReAddedEachFrame, phases(5), False),
    (StartsReAddingLater, phases(10), True),
    (RedrawnAndUnflagged, phases(10), True),
    (WholeAxesDecorated, phases(12), True),
    # issue 11's scripts, as a parallel_animate user writes them
    (ported.OneLine, ported.one_line_params(10), True),
    (ported.FivePanels, ported.five_panels_params(8), True),
    (ported.FourteenPanels, ported.fourteen_panels_params(10), True),
]


@pytest.mark.parametrize("make, params, must_blit", CASES,
                         ids=lambda case: getattr(case, "__name__", None) if callable(case) else None)
def test_blitted_frames_equal_full_draws(make, params, must_blit):
    want, _ = render(make(), params, auto_blit=False)
    got, prepared = render(make(), params, auto_blit=True, chunks=2)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"frame {i}: {np.count_nonzero(a != b)} values differ"
    # The check against a full draw never found a difference: blitting made no wrong frame
    # that only the check's fallback to full draws kept out of the video.
    assert prepared.incremental.enabled
    if must_blit:
        assert prepared.incremental.partial_draws > len(params) // 3


def test_axes_that_start_adding_artists_are_drawn_whole_without_a_full_draw():
    # Full draws: frame 0, frame 1 (no snapshot yet inside the 3D axes) and the check of the
    # first blitted frame; frames 3 and 5, where a band and a surface start being added again
    # each frame, blit their axes whole.
    params = phases(8)
    want, _ = render(StartsReAddingLater(), params, auto_blit=False)
    got, prepared = render(StartsReAddingLater(), params, auto_blit=True)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    drawer = prepared.incremental
    assert (drawer.partial_draws, drawer.full_draws) == (6, 3)


def test_a_region_redrawn_from_an_earlier_snapshot_leaves_one_before_its_first_unit(monkeypatch):
    # The one-line figure's first frames redraw the line and the title from the snapshot of the
    # empty canvas, axes background included; after that each starts from a snapshot of its own.
    prepared = PreparedFigure.prepare(ported.OneLine())
    drawer = prepared.incremental
    drawer.cost_samples = None
    background = prepared.figure.axes[0].patch
    drawn = []
    draw_rectangle = type(background).draw  # recording the paint order wraps instances' draw

    def draw(rectangle, renderer):
        drawn.append(rectangle is background)
        return draw_rectangle(rectangle, renderer)

    monkeypatch.setattr(type(background), "draw", draw)
    pairs = list(enumerate(ported.one_line_params(12)))
    list(render_frames(prepared, pairs[:6]))
    before, full_before, partial_before = sum(drawn), drawer.full_draws, drawer.partial_draws
    frames = [rgb.copy() for _, rgb in render_frames(prepared, pairs[6:])]
    assert drawer.partial_draws - partial_before == 6 and drawer.full_draws == full_before
    assert sum(drawn) == before  # neither region started before the line or the title
    want, _ = render(ported.OneLine(), [params for _, params in pairs], auto_blit=False)
    assert all(np.array_equal(a, b) for a, b in zip(frames, want[6:], strict=True))
    plt.close(prepared.figure)


def test_a_change_matplotlib_does_not_see_never_makes_a_wrong_frame():
    params = phases(12)
    want, _ = render(MutatesInPlace(), params, auto_blit=False)
    got, prepared = render(MutatesInPlace(), params, auto_blit=True)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs"
    assert not prepared.incremental.enabled  # the check caught it and switched to full draws


class TickingClock:
    """A clock that advances one second each time it is read: every blitted frame and every
    full draw it times take the same one second."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_blitting_that_does_not_pay_turns_itself_off_and_frames_stay_exact():
    params = phases(16)
    want, _ = render(LegendOverLine(), params, auto_blit=False)
    prepared = PreparedFigure.prepare(LegendOverLine())
    drawer = prepared.incremental
    drawer._clock = TickingClock()
    got = [rgb.copy() for _, rgb in render_frames(prepared, enumerate(params))]
    plt.close(prepared.figure)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert not drawer.enabled and drawer.off_because == "it does not pay"
    # Frame 0 full, frame 1 blitted and checked (the full draw it is weighed against), then
    # COST_SAMPLES blitted frames as costly as that full draw; the rest are full draws.
    assert drawer.partial_draws == 1 + COST_SAMPLES
    assert drawer.full_draws == 2 + len(params) - (2 + COST_SAMPLES)


def test_blitting_pays_when_blitted_frames_are_cheaper_than_a_full_draw():
    assert blitting_pays([0.004] * 5 + [0.5] * 3, full_seconds=0.03)  # the median, not the mean
    assert not blitting_pays([0.03] * 8, full_seconds=0.03)
    assert not blitting_pays([0.001] * 3 + [0.05] * 5, full_seconds=0.03)


def test_blitting_stays_on_where_it_pays():
    # Full draws made to cost ten seconds more on the ticking clock than a blitted frame.
    params = phases(16)
    want, _ = render(LegendOverLine(), params, auto_blit=False)
    prepared = PreparedFigure.prepare(LegendOverLine())
    drawer = prepared.incremental
    drawer._clock = clock = TickingClock()
    canvas = prepared.figure.canvas
    full_draw = canvas.draw

    def slow_full_draw(*args, **kwargs):
        clock.now += 10.0
        return full_draw(*args, **kwargs)

    canvas.draw = slow_full_draw
    got = [rgb.copy() for _, rgb in render_frames(prepared, enumerate(params))]
    plt.close(prepared.figure)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert drawer.enabled and drawer.partial_draws == len(params) - 1


class ContoursBesideColorbar(Animator):
    """Contours added again each frame, with a colorbar: the first draw shrinks its box."""

    def __init__(self, tight: bool):
        self.tight = tight

    def setup(self):
        fig, (self.flat, right) = plt.subplots(1, 2, figsize=(4, 2), dpi=50)
        fig.colorbar(ScalarMappable(Normalize(-1, 1), "viridis"), ax=self.flat)
        (self.line,) = right.plot(X, np.sin(X))
        self.grid = np.meshgrid(np.linspace(-2, 2, 15), np.linspace(-2, 2, 15))
        self.contours = None
        if self.tight:
            fig.tight_layout()  # leaves an inert layout engine behind
        return fig

    def update(self, frame_idx, params):
        gx, gy = self.grid
        if self.contours is not None:
            self.contours.remove()
        self.contours = self.flat.contourf(gx, gy, np.sin(gx * gy + params["phase"]), levels=6,
                                           vmin=-1, vmax=1)
        self.line.set_ydata(np.sin(X + params["phase"]))


@pytest.mark.parametrize("tight", [False, True])
def test_a_colorbar_placed_by_the_first_draw_costs_no_extra_full_draw(tight):
    # Only frame 0 and the check of the first blitted frame are full draws: measured before
    # the colorbar's box shrank, frame 0 would look moved, unrecorded, and frame 1 drawn in
    # full too. Frame 1 finds the contours added again and draws their axes whole.
    params = phases(3)
    want, _ = render(ContoursBesideColorbar(tight), params, auto_blit=False)
    got, prepared = render(ContoursBesideColorbar(tight), params, auto_blit=True)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    drawer = prepared.incremental
    assert (drawer.partial_draws, drawer.full_draws) == (2, 2)


def test_blitting_saves_drawing():
    prepared = PreparedFigure.prepare(wave.WaveAnimation())
    list(render_frames(prepared, enumerate(wave.param_by_frame(40))))
    drawer = prepared.incremental
    assert drawer.partial_draws >= 30 and drawer.full_draws <= 6


class ClearedEachFrame(Animator):
    """Clears its axes and plots again every frame: no frame can be blitted."""

    def setup(self):
        self.fig, self.ax = plt.subplots(figsize=(2, 1.5), dpi=60)
        return self.fig

    def update(self, frame_idx, params):
        self.ax.clear()
        self.ax.plot([0, 1, 2], [0, params["phase"], 1])
        self.ax.set_title(f"{frame_idx}")


def test_a_figure_no_frame_of_which_can_be_blitted_turns_blitting_off_after_a_few():
    params = phases(12)
    want, _ = render(ClearedEachFrame(), params, auto_blit=False)
    got, prepared = render(ClearedEachFrame(), params, auto_blit=True, keep_blitting=False)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    drawer = prepared.incremental
    assert not drawer.enabled and drawer.off_because == "every frame needs a full draw"
    assert drawer.partial_draws < FULL_DRAWS_IN_ROW  # a few tries, then full draws alone
    # Kept on whatever it costs (the exactness tests), it keeps recording every full draw.
    _, kept = render(ClearedEachFrame(), params, auto_blit=True)
    assert kept.incremental.enabled and kept.incremental.full_draws >= len(params) - 2
