"""Animators the tests render. Workers import this module as ``animators``.

``BarCode`` paints its frame index as 8 black/white cells (bit 7 on the left)
in the top half and a line from its params in the bottom half, so a decoded
video tells both the order of its frames and whether the params arrived.
"""

import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from celery_animate import Animator

WIDTH, HEIGHT = 256, 128
BITS = 8


class BarCode(Animator):
    def __init__(self, tag: str = "", fail_at: int | None = None):
        self.tag = tag
        self.fail_at = fail_at

    def setup(self):
        log_dir = os.environ.get("CA_TEST_SETUP_LOG")
        if log_dir:
            with open(os.path.join(log_dir, str(os.getpid())), "a") as f:
                f.write(f"{type(self).__name__}:{self.tag}\n")
        fig = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, BITS)
        ax.set_ylim(-1, 2)
        ax.set_axis_off()
        self.cells = [ax.add_patch(Rectangle((k, 1), 1, 1, color="white")) for k in range(BITS)]
        (self.line,) = ax.plot(np.linspace(0, BITS, 50), np.zeros(50), color="tab:red", lw=3)
        return fig

    def update(self, frame_idx, params):
        if self.fail_at is not None and frame_idx == self.fail_at:
            raise ZeroDivisionError(f"boom at frame {frame_idx}")
        for k, cell in enumerate(self.cells):
            bit = (frame_idx >> (BITS - 1 - k)) & 1
            cell.set_color("black" if bit else "white")
        self.line.set_ydata(np.asarray(params["y"], dtype=float))


def bar_params(n_frames: int):
    """Params as numpy arrays: a sine whose phase moves with the frame."""
    x = np.linspace(0, 2 * np.pi, 50)
    return [{"y": 0.8 * np.sin(x + 0.3 * i) - 0.1} for i in range(n_frames)]


def decode_index(frame: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> int:
    """The frame index painted by :class:`BarCode` on a ``width`` x ``height`` figure."""
    cell_w = width // BITS
    value = 0
    for k in range(BITS):
        patch = frame[height // 6 - 8: height // 6 + 8, k * cell_w + 8: (k + 1) * cell_w - 8]
        value = (value << 1) | int(patch.mean() < 128)
    return value


class OddSize(BarCode):
    """A 300x150 figure: the video is padded to 304x160, never rescaled."""

    def setup(self):
        fig = super().setup()
        fig.set_size_inches(3.0, 1.5)
        return fig


class NotAFigure(Animator):
    def setup(self):
        return "a string"

    def update(self, frame_idx, params):
        pass


class CrashOnce(BarCode):
    """Kills its own worker process at frame ``crash_at``, the first time only (``marker`` records it)."""

    def __init__(self, marker: str, crash_at: int):
        super().__init__(tag="crash")
        self.marker = marker
        self.crash_at = crash_at

    def update(self, frame_idx, params):
        if frame_idx == self.crash_at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), 9)
        super().update(frame_idx, params)


class Slow(BarCode):
    """Takes ``delay`` seconds a frame, to leave time to break things mid-job."""

    def __init__(self, delay: float):
        super().__init__(tag="slow")
        self.delay = delay

    def update(self, frame_idx, params):
        import time

        time.sleep(self.delay)
        super().update(frame_idx, params)


class Grows(BarCode):
    """Changes its figure's size at frame 3, which a video cannot follow."""

    def update(self, frame_idx, params):
        super().update(frame_idx, params)
        if frame_idx == 3:
            self.line.figure.set_size_inches(3.2, 1.28)


class SetupFails(BarCode):
    def setup(self):
        raise RuntimeError("no data file for the background")


class BlittedBarCode(BarCode):
    def animated_artists(self):
        return [*self.cells, self.line]


class RestylesMidway(BlittedBarCode):
    """Changes a static artist (the axes' background colour) at frame 4: the background must follow."""

    def update(self, frame_idx, params):
        super().update(frame_idx, params)
        if frame_idx == 4:
            self.line.axes.set_facecolor("lightyellow")


class DiesAt(BarCode):
    """Kills its own worker process at frame ``die_at``, every time: a poison chunk."""

    def __init__(self, die_at: int):
        super().__init__(tag="dies")
        self.die_at = die_at

    def update(self, frame_idx, params):
        if frame_idx == self.die_at:
            os.kill(os.getpid(), 9)
        super().update(frame_idx, params)


class HD(BarCode):
    """A 1280x720 figure: the size of the README's encode-worker example."""

    def setup(self):
        fig = super().setup()
        fig.set_size_inches(12.8, 7.2)
        return fig


class NoisyHD(HD):
    """1280x720 with a field of noise that changes every frame: cheap to render, slow to encode,
    so the encoder is the job's bottleneck (the benchmark's case for the render window)."""

    def setup(self):
        fig = super().setup()
        self.noise = fig.figimage(np.zeros((360, 640, 3), np.uint8), xo=320, yo=180, zorder=5)
        return fig

    def update(self, frame_idx, params):
        super().update(frame_idx, params)
        rng = np.random.default_rng(frame_idx)
        self.noise.set_data(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8))
