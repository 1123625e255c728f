"""Animations as a parallel_animate user writes them: no ``animated_artists()``, nothing tuned.

Each ``update()`` changes what a scientist's script typically changes (data,
titles, whole artists removed and drawn again), and each figure is built the
plain pyplot way. Porting one means changing the import only. Each frame
depends only on its index and params, as rendering in parallel requires (a
fixed quiver scale, explicit colors instead of the property cycle), so the
videos of both libraries can be compared byte for byte.

    OneLine         640x480, one line with labels and a changing title
    FivePanels      2000x400: line, bars, image with colorbar, 3D line, scatter
    FourteenPanels  2400x1800: every panel changes, 3D surface, contours, polar, quiver...
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from celery_animate import Animator


class OneLine(Animator):
    def setup(self):
        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        self.x = np.linspace(0, 4 * np.pi, 500)
        (self.line,) = ax.plot(self.x, np.cos(self.x), color="C0", lw=2)
        ax.set_xlim(0, 4 * np.pi)
        ax.set_ylim(-1.5, 1.5)
        ax.set_xlabel("position x [m]")
        ax.set_ylabel("amplitude")
        self.title = ax.set_title("")
        return fig

    def update(self, frame_idx, params):
        self.line.set_ydata(np.cos(self.x - params["phase"]) * params["gain"])
        self.title.set_text(f"t = {params['t']:.2f} s")


def one_line_params(n_frames: int) -> list[dict]:
    return [{"phase": 0.05 * i, "gain": 1 + 0.3 * np.sin(0.02 * i), "t": i / 30} for i in range(n_frames)]


class FivePanels(Animator):
    def setup(self):
        fig = plt.figure(figsize=(20, 4), dpi=100)
        self.t = np.linspace(0, 10, 400)
        ax = fig.add_subplot(1, 5, 1)
        (self.line,) = ax.plot(self.t, np.sin(self.t))
        ax.set(xlim=(0, 10), ylim=(-2, 2), xlabel="time [s]", ylabel="signal", title="signal")
        ax = fig.add_subplot(1, 5, 2)
        self.bars = ax.bar(np.arange(10), np.ones(10), color="C1")
        ax.set(ylim=(0, 2.2), title="spectrum")
        ax = fig.add_subplot(1, 5, 3)
        self.grid = np.linspace(-3, 3, 80)
        self.image = ax.imshow(np.zeros((80, 80)), vmin=-1, vmax=1, cmap="magma", origin="lower")
        fig.colorbar(self.image, ax=ax)
        ax.set_title("field")
        ax = fig.add_subplot(1, 5, 4, projection="3d")
        (self.helix,) = ax.plot(np.cos(self.t), np.sin(self.t), self.t)
        ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), zlim=(0, 10), title="trajectory")
        ax = fig.add_subplot(1, 5, 5)
        rng = np.random.default_rng(1)
        self.points = rng.normal(size=(300, 2))
        self.scatter = ax.scatter(*self.points.T, s=8, c=np.arange(300), cmap="viridis")
        ax.set(xlim=(-4, 4), ylim=(-4, 4), title="particles")
        self.suptitle = fig.suptitle("")
        fig.tight_layout()
        return fig

    def update(self, frame_idx, params):
        phase = params["phase"]
        self.line.set_ydata(np.sin(self.t + phase) + 0.5 * np.sin(3 * self.t - phase))
        for k, bar in enumerate(self.bars):
            bar.set_height(1 + np.sin(phase + k / 2))
        xx, yy = np.meshgrid(self.grid, self.grid)
        self.image.set_data(np.sin(xx + phase) * np.cos(yy - phase / 2))
        radius = 1 + 0.3 * np.sin(phase)
        self.helix.set_data_3d(radius * np.cos(self.t + phase), radius * np.sin(self.t + phase), self.t)
        c, s = np.cos(phase / 4), np.sin(phase / 4)
        self.scatter.set_offsets(self.points @ np.array([[c, -s], [s, c]]))
        self.suptitle.set_text(f"frame {frame_idx}")


def five_panels_params(n_frames: int) -> list[dict]:
    return [{"phase": 0.08 * i} for i in range(n_frames)]


class FourteenPanels(Animator):
    """Every panel changes every frame; three artists are removed and drawn again each time."""

    def setup(self):
        fig = plt.figure(figsize=(24, 18), dpi=100)
        n = 40
        self.grid = np.linspace(-3, 3, n)
        self.xx, self.yy = np.meshgrid(self.grid, self.grid)
        self.t = np.linspace(0, 2 * np.pi, 200)
        self.ax = {}
        self.surface_ax = fig.add_subplot(4, 4, 1, projection="3d")
        self.surface_ax.set(zlim=(-1.2, 1.2), title="surface")
        self.surface = None
        self.contour_ax = fig.add_subplot(4, 4, 2)
        self.contour_ax.set_title("contours")
        self.contour = None
        polar = fig.add_subplot(4, 4, 3, projection="polar")
        (self.rose,) = polar.plot(self.t, 1 + 0.5 * np.sin(3 * self.t))
        polar.set(ylim=(0, 2), title="rose")
        ax = fig.add_subplot(4, 4, 4)
        q = np.linspace(-2, 2, 12)
        self.qx, self.qy = np.meshgrid(q, q)
        self.quiver = ax.quiver(self.qx, self.qy, self.qx, self.qy, scale=30)
        ax.set_title("flow")
        ax = fig.add_subplot(4, 4, 5)
        self.image = ax.imshow(np.zeros((n, n)), vmin=-1, vmax=1, cmap="coolwarm")
        fig.colorbar(self.image, ax=ax)
        ax.set_title("image")
        ax = fig.add_subplot(4, 4, 6)
        self.lines = [ax.plot(self.t, np.sin(self.t), label=f"mode {k}")[0] for k in range(3)]
        ax.set(ylim=(-1.5, 1.5), title="modes")
        ax.legend(loc="lower left")
        ax = fig.add_subplot(4, 4, 7)
        rng = np.random.default_rng(2)
        self.cloud = rng.normal(size=(400, 2))
        self.scatter = ax.scatter(*self.cloud.T, s=6, c=np.zeros(400), vmin=-1, vmax=1)
        ax.set(xlim=(-4, 4), ylim=(-4, 4), title="cloud")
        ax = fig.add_subplot(4, 4, 8)
        self.bars = ax.bar(np.arange(16), np.ones(16))
        ax.set(ylim=(0, 2), title="bars")
        ax = fig.add_subplot(4, 4, 9)
        self.edges = np.linspace(-4, 4, 41)
        self.stairs = ax.stairs(np.zeros(40), self.edges, fill=True)
        ax.set(ylim=(0, 0.5), title="histogram")
        self.band_ax = fig.add_subplot(4, 4, 10)
        self.band_ax.set(xlim=(0, 2 * np.pi), ylim=(-2, 2), title="band")
        self.band = None
        ax = fig.add_subplot(4, 4, 11)
        (self.steps,) = ax.step(np.arange(30), np.zeros(30), "o-", where="mid", ms=4)
        ax.set(ylim=(-1.5, 1.5), title="samples")
        ax = fig.add_subplot(4, 4, 12)
        self.mesh = ax.pcolormesh(self.grid, self.grid, np.zeros((n - 1, n - 1)), vmin=-1, vmax=1,
                                  shading="flat")
        ax.set_title("mesh")
        ax = fig.add_subplot(4, 4, 13)
        (self.orbit,) = ax.plot(np.cos(self.t), np.sin(self.t))
        self.marker = ax.annotate("probe", (1, 0), xytext=(1.3, 1.3), arrowprops={"arrowstyle": "->"})
        ax.set(xlim=(-2, 2), ylim=(-2, 2), aspect="equal", title="orbit")
        ax = fig.add_subplot(4, 4, 14)
        ax.set_axis_off()
        self.readout = ax.text(0.5, 0.5, "", ha="center", va="center", fontsize=24)
        fig.tight_layout()
        return fig

    def update(self, frame_idx, params):
        phase = params["phase"]
        zz = np.sin(self.xx + phase) * np.cos(self.yy - phase)
        if self.surface is not None:
            self.surface.remove()
        self.surface = self.surface_ax.plot_surface(self.xx, self.yy, zz, cmap="viridis",
                                                    vmin=-1, vmax=1)
        if self.contour is not None:
            self.contour.remove()
        self.contour = self.contour_ax.contourf(self.xx, self.yy, zz, levels=10, cmap="viridis")
        self.rose.set_ydata(1 + 0.5 * np.sin(3 * self.t + phase))
        self.quiver.set_UVC(np.cos(self.qy + phase), np.sin(self.qx - phase))
        self.image.set_data(zz)
        for k, line in enumerate(self.lines):
            line.set_ydata(np.sin((k + 1) * self.t + phase))
        self.scatter.set_offsets(self.cloud * (1 + 0.2 * np.sin(phase)))
        self.scatter.set_array(np.sin(self.cloud[:, 0] + phase))
        for k, bar in enumerate(self.bars):
            bar.set_height(1 + 0.8 * np.sin(phase + k / 3))
        counts, _ = np.histogram(self.cloud[:, 0] + np.sin(phase), self.edges, density=True)
        self.stairs.set_data(counts)
        if self.band is not None:
            self.band.remove()
        self.band = self.band_ax.fill_between(self.t, np.sin(self.t + phase) - 0.5,
                                              np.sin(self.t + phase) + 0.5, color="C2", alpha=0.4)
        self.steps.set_ydata(np.sin(np.arange(30) / 4 + phase))
        self.mesh.set_array(zz[:-1, :-1].ravel())
        self.marker.xy = (np.cos(phase), np.sin(phase))
        self.readout.set_text(f"frame {frame_idx}\nphase {phase:.2f}")


def fourteen_panels_params(n_frames: int) -> list[dict]:
    return [{"phase": 0.2 * i} for i in range(n_frames)]
