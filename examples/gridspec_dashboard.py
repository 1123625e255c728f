"""A large dashboard: 14 panels on a nested GridSpec, 3D surfaces included (2400x1800 pixels).

setup() is expensive here (many axes, ticks, a 3D projection); celery-animate
runs it once per worker process, and update() only swaps data.

    celery-animate render examples/gridspec_dashboard.py:GridSpecDashboard -o dashboard.mp4 --frames 60
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec

from celery_animate import Animator

N = 48


class GridSpecDashboard(Animator):
    def setup(self):
        fig = plt.figure(figsize=(24, 18), dpi=100)
        outer = GridSpec(3, 3, figure=fig, hspace=0.35, wspace=0.25)
        grid = np.linspace(-3, 3, N)
        self.X, self.Y = np.meshgrid(grid, grid)
        self.artists = {}

        self.ax3d = fig.add_subplot(outer[0, 0], projection="3d")
        self.ax3d.set(zlim=(-1.5, 1.5), title="surface")
        self.surface = None

        ax = fig.add_subplot(outer[0, 1])
        self.artists["contour_img"] = ax.imshow(np.zeros((N, N)), cmap="viridis", vmin=-1.5, vmax=1.5,
                                                extent=(-3, 3, -3, 3))
        ax.set_title("field (top view)")
        fig.colorbar(self.artists["contour_img"], ax=ax)

        ax = fig.add_subplot(outer[0, 2])
        t = np.linspace(0, 10, 500)
        self.lines = [ax.plot(t, np.zeros_like(t), lw=1.5, label=f"channel {k}")[0] for k in range(4)]
        ax.set(xlim=(0, 10), ylim=(-4, 4), title="channels")
        ax.legend(loc="upper right")

        inner = GridSpecFromSubplotSpec(2, 3, subplot_spec=outer[1, :], wspace=0.3, hspace=0.4)
        self.small = []
        for k in range(6):
            ax = fig.add_subplot(inner[k // 3, k % 3])
            (line,) = ax.plot(np.arange(100), np.zeros(100), color=f"C{k}")
            ax.set(xlim=(0, 100), ylim=(-2, 2), title=f"sensor {k}")
            ax.grid(True, alpha=0.3)
            self.small.append(line)

        ax = fig.add_subplot(outer[2, 0], projection="polar")
        self.polar = ax.plot(np.linspace(0, 2 * np.pi, 120), np.ones(120), color="C3")[0]
        ax.set_ylim(0, 2)
        ax.set_title("orientation")

        ax = fig.add_subplot(outer[2, 1])
        self.bars = ax.bar(np.arange(12), np.zeros(12), color="C4")
        ax.set(ylim=(0, 1), title="spectrum")

        sub = GridSpecFromSubplotSpec(2, 1, subplot_spec=outer[2, 2], hspace=0.5)
        ax = fig.add_subplot(sub[0])
        self.scatter = ax.scatter(np.zeros(200), np.zeros(200), s=6, c=np.arange(200), cmap="plasma")
        ax.set(xlim=(-3, 3), ylim=(-3, 3), title="particles")
        ax = fig.add_subplot(sub[1])
        self.text = ax.text(0.5, 0.5, "", ha="center", va="center", fontsize=28, transform=ax.transAxes)
        ax.set_axis_off()
        return fig

    def update(self, frame_idx, params):
        phase = params["phase"]
        Z = np.sin(self.X + phase) * np.cos(self.Y - 0.5 * phase)
        if self.surface is not None:
            self.surface.remove()
        self.surface = self.ax3d.plot_surface(self.X, self.Y, Z, cmap="viridis", vmin=-1.5, vmax=1.5,
                                              linewidth=0, antialiased=False)
        self.ax3d.view_init(elev=30, azim=(frame_idx * 2) % 360)
        self.artists["contour_img"].set_data(Z)
        t = self.lines[0].get_xdata()
        for k, line in enumerate(self.lines):
            line.set_ydata(np.sin((k + 1) * t + phase) * (1 + 0.5 * k))
        x = np.arange(100)
        for k, line in enumerate(self.small):
            line.set_ydata(np.sin(x / (5 + k) + phase * (k + 1) / 3) + params["noise"][k])
        theta = self.polar.get_xdata()
        self.polar.set_ydata(1 + 0.5 * np.cos(3 * theta + phase))
        for k, bar in enumerate(self.bars):
            bar.set_height(0.5 + 0.5 * np.sin(phase + k / 2))
        self.scatter.set_offsets(params["particles"])
        self.text.set_text(f"frame {frame_idx}")


def param_by_frame(n_frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    particles = rng.normal(size=(200, 2))
    for i in range(n_frames):
        particles = np.clip(particles + 0.05 * rng.normal(size=particles.shape), -3, 3)
        yield {"phase": 2 * np.pi * i / max(n_frames, 1), "noise": 0.1 * rng.normal(size=(6, 100)),
               "particles": particles.copy()}


if __name__ == "__main__":
    n = 30
    GridSpecDashboard().make_video("dashboard.mp4", param_by_frame(n), fps=15, n_frames=n)
