"""Where a one-shot render's wall time goes: CPU use of every process, over time, per workload.

    python bench/timeline.py                 # every workload; writes bench/results/timeline.{md,json,png}
    python bench/timeline.py --only "one line 640x480"
    python bench/timeline.py --smoke         # a few frames each: checks the script runs

Each workload of bench/run.py is rendered with ``make_video(num_workers=2)`` on the
embedded default three times: a warm-up run; a run measured exactly and not sampled (each
process's CPU time read just before the cluster stops, the machine's from ``/proc/stat``),
for the tables; and a run during which a thread of this process reads the CPU time of
the whole process tree every 50 ms, for the chart. Processes are grouped by what they do:

* **client**: this process (staging params, following the job);
* **render**: the render worker and its prefork pool (nice 0);
* **encode**: the encode worker and its pool process (nice 5), which feeds ffmpeg;
* **ffmpeg**: the libx264 encoder itself;
* **redis**: the embedded redis-server.

The chart stacks the cores each group used; the gap up to the machine's cores is idle.
The table sets the run against the hardware limit of bench/run.py: (CPU seconds of a
serial render + CPU seconds of the encode) / cores, and splits the difference into what
made it: the figure's warm-up, CPU the run spent beyond the limit's, and idle cores (the
machine is otherwise quiet, so its busy time is the run's).

**The warm-up bound.** A figure's first frame costs more than the rest: ``setup()``
runs first, and the frame is a full draw that records the paint order for blitting.
What it costs beyond an ordinary frame is the *warm-up* W (measured serially, beside the
limit). Until the first frame exists the encoder has nothing to do, and each process
warms its own figure (``setup()`` runs in every worker process), so for those W seconds
the other cores either warm figures of their own, which the serial render does not, or
idle. However well the rest overlaps, a run of this pipeline cannot beat
limit + (1 - 1/cores) x W: the *bound*.

A sampling profiler (py-spy) was tried first: in this container it counts threads
waiting in ``poll`` or on a lock as running, so its flame graphs show where threads
*are*, not where CPU goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
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

from celery_animate import EmbeddedCluster  # noqa: E402
from celery_animate.render.frame_loop import PreparedFigure, render_frames  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORKERS = 2
GAP_PARTS = ["warm_up", "render", "encode", "other", "idle"]
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


def process_cpu(process: psutil.Process, me: int, reaped: bool = False) -> tuple[str, float] | None:
    """``(group, CPU seconds so far)`` of ``process``, with its reaped children's if ``reaped``;
    None once it has exited."""
    try:
        with process.oneshot():
            times = process.cpu_times()
            group = group_of(process, me)
    except psutil.Error:
        return None
    seconds = times.user + times.system
    return group, seconds + (times.children_user + times.children_system if reaped else 0.0)


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
            read = process_cpu(process, self.me.pid)
            if read is None:  # exited meanwhile
                continue
            group, total = read
            used[group] += total - self.last.get(process.pid, total if process.pid == self.me.pid else 0.0)
            self.last[process.pid] = total
        self.samples.append((time.perf_counter() - self.start, dict(used)))


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (``/proc/stat``: all but idle
    and iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def run_sampled(workload, params, out: Path) -> tuple[float, CpuTimeline]:
    """One one-shot run, sampled for the chart: its wall seconds and per-group timeline."""
    out.unlink(missing_ok=True)
    with CpuTimeline() as timeline:
        started = time.perf_counter()
        workload.ours().make_video(out, params, num_workers=WORKERS, disable_progress_bar=True,
                                   **ENCODING)
        wall = time.perf_counter() - started
        timeline.wall_from = started - timeline.start
    return wall, timeline


def cluster_cpu() -> Counter:
    """CPU seconds so far of every process under this one, by group (ffmpeg's in the encode
    process that reaped it)."""
    me = psutil.Process()
    used: Counter[str] = Counter()
    for process in me.children(recursive=True):
        read = process_cpu(process, me.pid, reaped=True)
        if read is not None:
            used[read[0]] += read[1]
    return used


@contextlib.contextmanager
def totals_at_stop() -> Iterator[Counter]:
    """Yields a Counter that gets :func:`cluster_cpu` of the embedded cluster just before it
    stops: its processes are killed, and their counters go with them. The bench wraps
    ``EmbeddedCluster.stop`` for this, so the run itself is not sampled."""
    totals: Counter[str] = Counter()
    original = EmbeddedCluster.stop

    def stop(cluster: EmbeddedCluster) -> None:
        if not totals:  # the first call, while the processes live
            totals.update(cluster_cpu())
        original(cluster)

    EmbeddedCluster.stop = stop
    try:
        yield totals
    finally:
        EmbeddedCluster.stop = original


def run_exact(workload, params, out: Path) -> tuple[float, float, Counter]:
    """One one-shot run, not sampled: its wall seconds, the machine's busy CPU seconds meanwhile,
    and CPU seconds by group."""
    out.unlink(missing_ok=True)
    with totals_at_stop() as totals:
        own, busy, started = time.process_time(), machine_busy_seconds(), time.perf_counter()
        workload.ours().make_video(out, params, num_workers=WORKERS, disable_progress_bar=True,
                                   **ENCODING)
        wall = time.perf_counter() - started
        busy, own = machine_busy_seconds() - busy, time.process_time() - own
    totals["client"] = own
    return wall, busy, totals


def warm_up_seconds(workload, params) -> float:
    """The figure's warm-up W, CPU seconds: ``setup()`` and the first frame of a serial render,
    less the median frame."""
    started = time.process_time()
    prepared = PreparedFigure.prepare(workload.ours())
    frame_seconds = []  # the first also holds setup()
    for _ in render_frames(prepared, enumerate(params)):
        now = time.process_time()
        frame_seconds.append(now - started)
        started = now
    plt.close("all")
    return max(0.0, frame_seconds[0] - statistics.median(frame_seconds))


def summarise(wall: float, busy: float, cpu: Counter, limit: dict, warm_up: float,
              cores: int) -> dict:
    limit_cpu = {"render": limit["render_cpu"], "encode": limit["encode_cpu"]}
    idle = max(0.0, wall * cores - busy)
    bound = limit["limit_s"] + (1 - 1 / cores) * warm_up
    duplicated = (cores - 1) * warm_up  # what the other cores spend while the first figure warms
    encode = cpu["encode"] + cpu["ffmpeg"]
    # wall - limit = (busy - limit CPU + idle) / cores, split by where the CPU went.
    gap = {
        "warm_up": duplicated / cores,
        "render": (cpu["render"] - limit_cpu["render"] - duplicated) / cores,
        "encode": (encode - limit_cpu["encode"]) / cores,
        "other": (busy - cpu["render"] - encode) / cores,  # client, Redis, the kernel
        "idle": idle / cores,
    }
    return {"wall_s": wall, "limit_s": limit["limit_s"], "vs_limit": wall / limit["limit_s"],
            "warm_up_s": warm_up, "bound_s": bound, "vs_bound": wall / bound,
            "cpu_s": {g: cpu.get(g, 0.0) for g in GROUPS}, "busy_cpu_s": busy,
            "idle_core_s": idle, "limit_cpu_s": limit_cpu, "gap_s": gap}


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
        ax.axvline(summary["bound_s"], color="k", lw=1.2, ls=":", label="warm-up bound")
        ax.set(xlim=(0, wall), ylim=(0, cores + 0.5), ylabel="cores",
               title=f"{name}: {wall:.2f} s, {wall / summary['limit_s']:.2f}x the limit")
    axes[-1, 0].set_xlabel("seconds since make_video() was called")
    axes[0, 0].legend(loc="upper right", ncol=7, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report(summaries: dict, cores: int) -> str:
    lines = [f"One-shot `make_video(num_workers={WORKERS})` on the embedded default, {cores} cores. "
             "W is the figure's warm-up: `setup()` and its first frame, beyond an ordinary "
             "frame. The bound is the limit plus what W costs the other cores (see "
             "bench/timeline.py). The run's time beyond the limit is split into seconds of wall "
             "time: W's share, CPU the render and encode processes spent beyond the limit's own "
             "(the render's beyond the other cores' warm-ups), other processes and the kernel, "
             "and idle cores.", "",
             "| workload | wall | limit | W | bound | wall / limit | wall / bound "
             "| warm-up | render | encode | other | idle |", "|" + "---|" * 12]
    for name, s in summaries.items():
        gap = s["gap_s"]
        lines.append(
            f"| {name} | {s['wall_s']:.2f} s | {s['limit_s']:.2f} s | {s['warm_up_s']:.2f} s "
            f"| {s['bound_s']:.2f} s | {s['vs_limit']:.2f}x | {s['vs_bound']:.2f}x "
            + " ".join(f"| {gap[part]:+.2f} s" for part in GAP_PARTS) + " |")
    lines += ["", "CPU seconds per process group (the limit's own in brackets: a serial render, one "
              "encode of the same frames):", "",
              "| workload | client | render | encode + ffmpeg | redis | busy, all processes "
              "| idle core-s |", "|" + "---|" * 7]
    for name, s in summaries.items():
        c, limit = s["cpu_s"], s["limit_cpu_s"]
        lines.append(
            f"| {name} | {c['client']:.2f} | {c['render']:.2f} ({limit['render']:.2f}) "
            f"| {c['encode'] + c['ffmpeg']:.2f} ({limit['encode']:.2f}) | {c['redis']:.2f} "
            f"| {s['busy_cpu_s']:.2f} ({limit['render'] + limit['encode']:.2f}) "
            f"| {s['idle_core_s']:.2f} |")
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
        warm_up = warm_up_seconds(workload, params)
        run_exact(workload, params, args.out / "timeline.mp4")  # warm-up: file caches, fonts
        wall, busy, cpu = run_exact(workload, params, args.out / "timeline.mp4")
        summaries[workload.name] = summarise(wall, busy, cpu, limit, warm_up, cores)
        sampled_wall, timeline = run_sampled(workload, params, args.out / "timeline.mp4")
        runs[workload.name] = (sampled_wall, timeline, summaries[workload.name])
        summary = summaries[workload.name]
        print(f"{workload.name:28s} {wall:6.2f} s  {summary['vs_limit']:.2f}x limit  "
              f"{summary['vs_bound']:.2f}x bound", flush=True)
    (args.out / "timeline.mp4").unlink(missing_ok=True)
    text = report(summaries, cores)
    if not args.smoke:
        plot(runs, cores, args.out / "timeline.png")
        write_results(args.out, "timeline", text, summaries)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
