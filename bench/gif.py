"""A 300-frame 640x480 GIF: celery-animate against matplotlib's PillowWriter, same frames.

    python bench/gif.py            # writes bench/results/gif.{md,json}
    python bench/gif.py --smoke    # 20 frames, one run: checks the script runs

Both draw bench/ported.py's ``OneLine`` (a line, labels, a title that changes)
with the same params: matplotlib through ``FuncAnimation.save(writer=PillowWriter)``
in this process, celery-animate through ``make_video(..., "x.gif")`` on the
embedded default (its cluster's start-up included) with 2 workers, and with
``num_workers=1`` (in this process). Runs alternate; the table gives medians.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT.parent), str(ROOT)]

import matplotlib  # noqa: E402

matplotlib.use("Agg")
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402
from ported import OneLine, one_line_params  # noqa: E402
from results_files import write_results  # noqa: E402

RESULTS = ROOT / "results"
FPS = 30


def pillow(path: Path, params: list) -> None:
    animator = OneLine()
    figure = animator.setup()

    def draw(index: int) -> tuple:
        animator.update(index, params[index])
        return ()

    FuncAnimation(figure, draw, frames=len(params), blit=False).save(path, writer=PillowWriter(fps=FPS))


def ours(path: Path, params: list, workers: int) -> None:
    OneLine().make_video(path, params, fps=FPS, num_workers=workers, disable_progress_bar=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n_frames, runs = (20, 1) if args.smoke else (300, args.runs)
    params = one_line_params(n_frames)
    ways = {"PillowWriter": lambda p: pillow(p, params),
            "celery-animate, 2 workers": lambda p: ours(p, params, 2),
            "celery-animate, num_workers=1": lambda p: ours(p, params, 1)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            for k, (name, way) in enumerate(ways.items()):
                path = Path(tmp) / f"{run}-{k}.gif"
                started = time.perf_counter()
                way(path)
                seconds[name].append(time.perf_counter() - started)
                sizes[name] = path.stat().st_size
                print(f"run {run}: {name}: {seconds[name][-1]:.2f} s, {sizes[name] / 2**20:.2f} MiB",
                      flush=True)
    base = statistics.median(seconds["PillowWriter"])
    rows = [{"way": name, "median_s": statistics.median(values), "runs_s": values,
             "vs_pillow": statistics.median(values) / base, "size_mib": sizes[name] / 2**20}
            for name, values in seconds.items()]
    setup = (f"{n_frames} frames, 640x480, {FPS} fps, {runs} runs alternated, median; "
             f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    lines = ["# A 640x480 GIF: celery-animate against PillowWriter", "", setup, "",
             "| way | median s | time vs PillowWriter | file MiB |", "|---|---|---|---|"]
    lines += [f"| {r['way']} | {r['median_s']:.2f} | {r['vs_pillow']:.2f}x | {r['size_mib']:.2f} |"
              for r in rows]
    if not args.smoke:
        write_results(RESULTS, "gif", "\n".join(lines) + "\n", {"setup": setup, "rows": rows},
                      indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
