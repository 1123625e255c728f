"""Frames whose params arrive in any order, as from a parallel data loader.

Each item is wrapped in ``IndexedFrameParams(frame_id, params)``: its place
in the video comes from ``frame_id``, not from when it arrived.

    python examples/out_of_order_loader.py
"""

import random

import matplotlib.pyplot as plt
import numpy as np

from celery_animate import Animator, IndexedFrameParams

SIZE = 120


class MovingBlob(Animator):
    """Shows a synthetic 'video frame' (a Gaussian blob) and its frame number."""

    def setup(self):
        fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
        self.image = ax.imshow(np.zeros((SIZE, SIZE)), cmap="magma", vmin=0, vmax=1)
        ax.set_axis_off()
        self.label = ax.text(4, 10, "", color="white", fontsize=14)
        return fig

    def update(self, frame_idx, params):
        self.image.set_data(params)
        self.label.set_text(f"frame {frame_idx}")


def decoded_frame(i: int, n_frames: int) -> np.ndarray:
    angle = 2 * np.pi * i / n_frames
    cy, cx = SIZE / 2 + 35 * np.sin(angle), SIZE / 2 + 35 * np.cos(angle)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 120.0).astype(np.float32)


def param_by_frame(n_frames: int, seed: int = 0):
    """Yield frames in a shuffled order, each tagged with its true index."""
    order = list(range(n_frames))
    random.Random(seed).shuffle(order)
    for i in order:
        yield IndexedFrameParams(frame_id=i, params=decoded_frame(i, n_frames))


if __name__ == "__main__":
    n = 90
    MovingBlob().make_video("out_of_order.mp4", param_by_frame(n), fps=30, n_frames=n)
