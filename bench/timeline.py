"""Where a one-shot render's wall time goes: CPU use of every process, over time, per workload.

    python bench/timeline.py                 # every workload; writes bench/results/timeline.{md,json,png}
    python bench/timeline.py --only "one line 640x480"
    python bench/timeline.py --smoke         # a few frames each: checks the script runs

Each workload of bench/run.py is rendered once with ``make_video(num_workers=2)`` on the
embedded default (a warm-up run first), while a thread of this process reads the CPU
time of the whole process tree every 20 ms from ``/proc``. Processes are grouped by what
they do:

* **client**: this process (staging params, following the job);
* **render**: the render worker and its prefork pool (nice 0);
* **encode**: the encode worker and its pool process (nice 5), which feeds ffmpeg;
* **ffmpeg**: the libx264 encoder itself;
* **redis**: the embedded redis-server.

The chart stacks the cores each group used; the gap up to the machine's cores is idle.
The table sets the run against the hardware limit of bench/run.py: (CPU seconds of a
serial render + CPU seconds of the encode) / cores. A sampling profiler (py-spy) was
tried first: in this container it counts threads waiting in ``poll`` or on a lock as
running, so its flame graphs show where threads *are*, not where CPU goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import psutil  # noqa: E402
from results_files import write_results  # noqa: E402
from run import ENCODING, hardware_limit  # noqa: E402
from sampling import PeakSampler  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GROUPS = ["client", "render", "encode", "ffmpeg", "redis"]
COLOURS = {"client": "#7f7f7f", "render": "#1f77b4", "encode": "#2ca02c", "ffmpeg": "#98df8a",
           "redis": "#d62728"}


def group_of(process: psutil.Process, me: int) -> str:
    if process.pid == me:
        return "client"
    name = process.name()
    if "redis" in name:
        return "redis"
    if "ffmpeg" in name:
        return "ffmpeg"
    # The encode worker runs niced (ENCODER_NICENESS) and its pool inherits it.
    return "encode" if process.nice() > 0 else "render"


class CpuTimeline(PeakSampler):
    """Every ``interval`` seconds: CPU seconds used since the last sample, per group."""

    def __init__(self, interval: float = 0.05):
        super().__init__(interval)
        self.me = psutil.Process()
        self.last: dict[int, float] = {}
        self.start = time.perf_counter()
        self.samples: list[tuple[float, dict[str, float]]] = []

    def sample(self) -> None:
        used: Counter[str] = Counter()
        for process in [self.me, *self.me.children(recursive=True)]:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    total = times.user + times.system
                    group = group_of(process, self.me.pid)
            except psutil.Error:  # exited meanwhile
                continue
            used[group] += total - self.last.get(process.pid, total if process.pid == self.me.pid else 0.0)
            self.last[process.pid] = total
        self.samples.append((time.perf_counter() - self.start, dict(used)))


def run_once(workload, params, out: Path) -> tuple[float, CpuTimeline]:
    out.unlink(missing_ok=True)
    with CpuTimeline() as timeline:
        started = time.perf_counter()
        workload.ours().make_video(out, params, num_workers=2, disable_progress_bar=True, **ENCODING)
        wall = time.perf_counter() - started
        timeline.wall_from = started - timeline.start
    return wall, timeline


def summarise(wall: float, timeline: CpuTimeline, limit: dict, cores: int) -> dict:
    begin = timeline.wall_from
    cpu = Counter()
    for at, used in timeline.samples:
        if begin <= at <= begin + wall + timeline.interval:
            cpu.update(used)
    busy = sum(cpu.values())
    return {"wall_s": wall, "limit_s": limit["limit_s"], "vs_limit": wall / limit["limit_s"],
            "cpu_s": {g: cpu.get(g, 0.0) for g in GROUPS}, "busy_cpu_s": busy,
            "idle_core_s": max(0.0, wall * cores - busy),
            "limit_cpu_s": {"render": limit["render_cpu"], "encode": limit["encode_cpu"]}}


#: Width of the chart's bars (seconds): /proc counts CPU time in 10 ms ticks, so single
#: 20 ms samples are too coarse to read.
BIN_SECONDS = 0.1


def binned(timeline: CpuTimeline, wall: float) -> tuple[list[float], dict[str, list[float]]]:
    """Cores used per group in each :data:`BIN_SECONDS` of the run."""
    n = int(wall / BIN_SECONDS) + 1
    cores = {g: [0.0] * n for g in GROUPS}
    for at, used in timeline.samples:
        slot = int((at - timeline.wall_from) / BIN_SECONDS)
        if 0 <= slot < n:
            for group, seconds in used.items():
                cores[group][slot] += seconds / BIN_SECONDS
    return [i * BIN_SECONDS for i in range(n)], cores


def plot(runs: dict, cores: int, path: Path) -> None:
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.4 * len(runs)), dpi=100, squeeze=False)
    for ax, (name, (wall, timeline, summary)) in zip(axes[:, 0], runs.items(), strict=True):
        xs, used = binned(timeline, wall)
        stacks = [used[g] for g in GROUPS]
        ax.stackplot(xs, stacks, labels=GROUPS, colors=[COLOURS[g] for g in GROUPS], step="post")
        ax.axhline(cores, color="k", lw=0.8, ls="--")
        ax.axvline(summary["limit_s"], color="k", lw=1.2, label="hardware limit")
        ax.set(xlim=(0, wall), ylim=(0, cores + 0.5), ylabel="cores",
               title=f"{name}: {wall:.2f} s, {summary['vs_limit']:.2f}x the limit")
    axes[-1, 0].set_xlabel("seconds since make_video() was called")
    axes[0, 0].legend(loc="upper right", ncol=6, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report(summaries: dict, cores: int) -> str:
    lines = [f"One-shot `make_video(num_workers=2)` on the embedded default, {cores} cores. CPU "
             "seconds per process group while it ran (the limit's own are a serial render and "
             "one encode of the same frames).", "",
             "| workload | wall | limit | wall / limit | client | render (limit) | encode + ffmpeg "
             "(limit) | redis | idle core-s |", "|" + "---|" * 9]
    for name, s in summaries.items():
        c = s["cpu_s"]
        lines.append(
            f"| {name} | {s['wall_s']:.2f} s | {s['limit_s']:.2f} s | {s['vs_limit']:.2f}x "
            f"| {c['client']:.2f} | {c['render']:.2f} ({s['limit_cpu_s']['render']:.2f}) "
            f"| {c['encode'] + c['ffmpeg']:.2f} ({s['limit_cpu_s']['encode']:.2f}) "
            f"| {c['redis']:.2f} | {s['idle_core_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few frames each: the script runs")
    parser.add_argument("--only", action="append", help="workload name (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    runs, summaries = {}, {}
    for workload in WORKLOADS:
        if args.only and workload.name not in args.only:
            continue
        params = workload.frames(args.smoke)
        limit = hardware_limit(workload, params, cores, args.out / "timeline.mp4")
        run_once(workload, params, args.out / "timeline.mp4")  # warm-up: file caches, fonts
        wall, timeline = run_once(workload, params, args.out / "timeline.mp4")
        summaries[workload.name] = summarise(wall, timeline, limit, cores)
        runs[workload.name] = (wall, timeline, summaries[workload.name])
        print(f"{workload.name:28s} {wall:6.2f} s  {summaries[workload.name]['vs_limit']:.2f}x limit",
              flush=True)
    (args.out / "timeline.mp4").unlink(missing_ok=True)
    text = report(summaries, cores)
    if not args.smoke:
        plot(runs, cores, args.out / "timeline.png")
        write_results(args.out, "timeline", text, summaries)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
