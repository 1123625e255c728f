"""Five panels of different kinds driven by one simulated time series.

    celery-animate render examples/multi_panel.py:MultiPanelAnimation -o multi_panel.mp4 --frames 300
"""

import matplotlib.pyplot as plt
import numpy as np

from celery_animate import Animator

HISTORY = 200


class MultiPanelAnimation(Animator):
    """Line, scatter, bars, heat map and histogram; 1000x600 pixels."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def setup(self):
        fig, axes = plt.subplots(2, 3, figsize=(10, 6), dpi=100, layout="constrained")
        self.ax_line, self.ax_scatter, self.ax_bars = axes[0]
        self.ax_heat, self.ax_hist, spare = axes[1]
        spare.remove()

        t = np.arange(HISTORY)
        (self.line,) = self.ax_line.plot(t, np.zeros(HISTORY), color="tab:blue")
        self.ax_line.set(xlim=(0, HISTORY), ylim=(-3, 3), title="signal")
        self.scatter = self.ax_scatter.scatter(np.zeros(64), np.zeros(64), c=np.arange(64), s=18)
        self.ax_scatter.set(xlim=(-3, 3), ylim=(-3, 3), title="phase portrait")
        self.bars = self.ax_bars.bar(np.arange(8), np.zeros(8), color="tab:orange")
        self.ax_bars.set(ylim=(0, 1), title="band power")
        self.heat = self.ax_heat.imshow(np.zeros((32, 32)), vmin=-1, vmax=1, cmap="RdBu_r")
        self.ax_heat.set(title="field", xticks=[], yticks=[])
        self.edges = np.linspace(-3, 3, 31)
        self.hist = self.ax_hist.stairs(np.zeros(30), self.edges, fill=True, color="tab:green")
        self.ax_hist.set(ylim=(0, 0.6), title="distribution")
        self.time_text = fig.suptitle("")
        # Solve the constrained layout once, then freeze it: re-solving it on
        # every frame would cost more than drawing the frame.
        fig.canvas.draw()
        fig.set_layout_engine("none")
        return fig

    def update(self, frame_idx, params):
        signal = params["signal"]
        self.line.set_ydata(signal)
        self.scatter.set_offsets(np.column_stack([signal[-64:], np.gradient(signal)[-64:] * 5]))
        for bar, height in zip(self.bars, params["bands"], strict=True):
            bar.set_height(height)
        self.heat.set_data(params["field"])
        density, _ = np.histogram(signal, bins=self.edges, density=True)
        self.hist.set_data(density)
        self.time_text.set_text(f"t = {frame_idx / 30:.2f} s")


def param_by_frame(n_frames: int, seed: int = 0):
    """Per-frame arrays computed up front; each frame carries only its own window."""
    rng = np.random.default_rng(seed)
    total = n_frames + HISTORY
    t = np.arange(total) / 30
    signal = np.sin(2 * np.pi * 0.5 * t) + 0.8 * np.sin(2 * np.pi * 1.7 * t) + 0.3 * rng.normal(size=total)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    for i in range(n_frames):
        window = signal[i: i + HISTORY]
        bands = np.abs(np.fft.rfft(window))[1:9]
        yield {
            "signal": window,
            "bands": bands / (bands.max() + 1e-9),
            "field": np.sin(6 * xx + 0.1 * i) * np.cos(6 * yy - 0.07 * i),
        }


if __name__ == "__main__":
    n = 150
    MultiPanelAnimation().make_video("multi_panel.mp4", param_by_frame(n), fps=30, n_frames=n)
