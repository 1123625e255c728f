"""A service's request rate and latency over the last hour, for periodic renders with Celery beat.

The data is synthesised from the time the animator is created, so every
periodic render shows a different hour. ``config/beat_schedule.py`` renders it
on a schedule; by hand:

    celery-animate render examples/metrics_dashboard.py:MetricsDashboard -o dashboard.mp4 --frames 120
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from celery_animate import Animator

MINUTES = 60


class MetricsDashboard(Animator):
    """Two panels over the last hour with a cursor sweeping through it (800x450 pixels)."""

    def __init__(self, end_time: float | None = None):
        self.end_time = time.time() if end_time is None else end_time

    def setup(self):
        rng = np.random.default_rng(int(self.end_time) // 60)
        minutes = np.linspace(-MINUTES, 0, 721)
        phase = (self.end_time / 3600) % 1 * 2 * np.pi
        wave = np.sin(2 * np.pi * minutes / MINUTES + phase)
        self.rate = 400 + 120 * wave + rng.normal(0, 15, minutes.size)
        self.latency = 80 + 0.05 * (self.rate - 400) + rng.gamma(2.0, 6.0, minutes.size)
        self.minutes = minutes
        fig, (ax_rate, ax_latency) = plt.subplots(2, 1, figsize=(8, 4.5), dpi=100, sharex=True)
        ax_rate.plot(minutes, self.rate, color="tab:blue", lw=1)
        ax_rate.set(ylabel="requests/s", xlim=(-MINUTES, 0))
        ax_latency.plot(minutes, self.latency, color="tab:red", lw=1)
        ax_latency.set(ylabel="p95 latency (ms)", xlabel="minutes ago")
        self.cursors = [ax.axvline(-MINUTES, color="black", lw=1.5) for ax in (ax_rate, ax_latency)]
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.end_time))
        self.title = fig.suptitle(f"last hour to {stamp}")
        fig.tight_layout()
        return fig

    def update(self, frame_idx, params):
        minute = params["minute"]
        for cursor in self.cursors:
            cursor.set_xdata([minute, minute])
        i = int(np.searchsorted(self.minutes, minute).clip(0, self.minutes.size - 1))
        self.title.set_text(f"{-minute:4.1f} min ago: {self.rate[i]:.0f} req/s, "
                            f"p95 {self.latency[i]:.0f} ms")

    def animated_artists(self):
        return [*self.cursors, self.title]


def param_by_frame(n_frames: int):
    """The cursor walks from an hour ago to now."""
    return [{"minute": float(m)} for m in np.linspace(-MINUTES, 0, n_frames)]
