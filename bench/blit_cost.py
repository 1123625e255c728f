"""What automatic blitting costs on figures where it cannot pay, side by side with ``blit=False``.

Two figures written the way people write them outside this project, on which
blitting switches itself off:

* **cleared axes**: ``update()`` calls ``ax.clear()`` and plots again, so every
  frame changes the axes' children, limits and ticks;
* **scatter, everything changes**: offsets, colours and sizes of 2,000 points
  every frame.

Each figure's frames are drawn in this process (``render_frames``, as a render
worker draws them; nothing is packed or encoded), with ``blit=True`` and with
``blit=False``, alternated, from a fresh ``setup()`` each time. The report is the
median of each and their ratio, and whether the frames are identical.

    python bench/blit_cost.py [--frames 150] [--rounds 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from results_files import write_results  # noqa: E402

from celery_animate import Animator  # noqa: E402
from celery_animate.render.frame_loop import PreparedFigure, render_frames  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: The target: blitting that does not pay costs at most this much over drawing in full.
TARGET = 1.03


class ClearedAxes(Animator):
    """Clears its axes and plots again every frame."""

    def setup(self):
        self.fig, self.ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        self.x = np.linspace(0, 4 * np.pi, 400)
        return self.fig

    def update(self, frame_idx, params):
        self.ax.clear()
        self.ax.plot(self.x, np.sin(self.x + params["phase"]) * params["gain"], lw=2)
        self.ax.set_title(f"frame {frame_idx}")


class ChangingScatter(Animator):
    """A scatter whose offsets, colours and sizes all change every frame."""

    def setup(self):
        self.fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        rng = np.random.default_rng(0)
        self.base = rng.normal(size=(2000, 2))
        self.scatter = ax.scatter(*self.base.T, s=10, c=np.zeros(2000), vmin=-1, vmax=1)
        ax.set(xlim=(-4, 4), ylim=(-4, 4))
        return self.fig

    def update(self, frame_idx, params):
        phase = params["phase"]
        self.scatter.set_offsets(self.base * (1 + 0.3 * np.sin(phase + self.base[:, :1])))
        self.scatter.set_array(np.sin(self.base[:, 0] * 3 + phase))
        self.scatter.set_sizes(8 + 6 * np.cos(self.base[:, 1] + phase) ** 2)


FIGURES = {"cleared axes": ClearedAxes, "scatter, everything changes": ChangingScatter}


def params_for(n_frames: int) -> list[dict]:
    return [{"phase": 0.05 * i, "gain": 1 + 0.002 * i} for i in range(n_frames)]


def draw_all(cls: type, params: list[dict], blit: bool) -> tuple[float, list[bytes], str | None]:
    """Seconds to draw every frame from a fresh setup(), each frame's digest, and why blitting
    turned itself off (None if it stayed on or was not asked for)."""
    prepared = PreparedFigure.prepare(cls(), note_rc=False)
    started = time.perf_counter()
    digests = [rgb.tobytes()[::997] for _, rgb in
               render_frames(prepared, enumerate(params), auto_blit=blit)]
    seconds = time.perf_counter() - started
    why = prepared.incremental.off_because if blit else None
    plt.close(prepared.figure)
    return seconds, digests, why


def measure(n_frames: int = 150, rounds: int = 7, say=print) -> dict:
    """Per figure of :data:`FIGURES`: median seconds with ``blit=True`` and ``blit=False``
    (alternated, ``rounds`` each), their ratio, whether the frames were identical, and why
    blitting turned itself off."""
    params = params_for(n_frames)
    results = {}
    for name, cls in FIGURES.items():
        times: dict[bool, list[float]] = {True: [], False: []}
        same, why = True, None
        draw_all(cls, params[:10], True)  # imports and first-draw caches, untimed
        for k in range(rounds):
            order = (True, False) if k % 2 == 0 else (False, True)
            drawn = {}
            for blit in order:
                seconds, digests, off = draw_all(cls, params, blit)
                times[blit].append(seconds)
                drawn[blit] = digests
                why = off or why
            same = same and drawn[True] == drawn[False]
        on, off = statistics.median(times[True]), statistics.median(times[False])
        results[name] = {"blit": on, "no_blit": off, "ratio": on / off, "identical": same,
                         "turned_off_because": why, "rounds": times}
        say(f"{name}: blit=True {on:.3f} s, blit=False {off:.3f} s, {on / off:.3f}x, "
            f"identical {same}, blitting turned off: {why}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results = measure(args.frames, args.rounds)
    lines = ["# Automatic blitting where it does not pay", "",
             f"{args.frames} frames 640x480 drawn in one process (no packing, no encoding), "
             f"blit=True and blit=False alternated, {args.rounds} rounds, median; "
             f"{platform.machine()}, Python {platform.python_version()}, matplotlib "
             f"{matplotlib.__version__}. Target: at most {TARGET:.2f}x.", "",
             "| figure | blit=True | blit=False | ratio | frames identical | blitting turned off |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['blit']:.3f} s | {r['no_blit']:.3f} s | {r['ratio']:.3f}x | "
                     f"{r['identical']} | {r['turned_off_because'] or 'no'} |")
    write_results(RESULTS, "blit_cost", "\n".join(lines) + "\n", results, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
