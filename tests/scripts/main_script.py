"""A parallel_animate-style script whose Animator lives in __main__.

Usage: python main_script.py OUTPUT N_FRAMES
"""

import sys

import numpy as np
from matplotlib.figure import Figure

from celery_animate import Animator


class MainBars(Animator):
    def setup(self):
        fig = Figure(figsize=(2.56, 1.28), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, 8)
        ax.set_ylim(0, 1)
        ax.set_axis_off()
        self.bars = ax.bar(np.arange(8) + 0.5, np.zeros(8), width=1.0, color="black")
        return fig

    def update(self, frame_idx, params):
        for k, bar in enumerate(self.bars):
            bar.set_height(float((frame_idx >> (7 - k)) & 1))


def frames(n):
    for i in range(n):
        yield {"i": i}


if __name__ == "__main__":
    output, n = sys.argv[1], int(sys.argv[2])
    MainBars().make_video(output, frames(n), fps=10, num_workers=2, video_quality=10,
                          disable_progress_bar=True)
