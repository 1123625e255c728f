"""A large fleet simulated on one machine: celery-animate's own overhead at 8 to 64 render processes.

    python bench/fleet_sim.py                      # writes bench/results/fleet_sim.{md,json,png}
    python bench/fleet_sim.py --processes 8,16 --delay 0.2 --long-processes ""

Each frame of the animator costs ``--delay`` seconds of sleeping and a tiny
figure (256x128), so a frame costs the machine almost nothing and what the
measurement shows is the pipeline: queueing, store round trips, progress,
the hand-off to the encoder. Render processes come as worker nodes of 8
(``celery worker -c 8``, each its own process tree and node name), with one
encode node, on a private Redis. Per process count:

- throughput as a share of the ideal ``frames * delay / processes`` seconds,
  timed from submit() to the finished video on warm workers (each process has
  already set up this animator's figure);
- Redis commands per frame (INFO ``total_commands_processed``, everything
  included: broker, results, progress, frames);
- seconds until submit() returns (it sends every chunk's message first), and
  from submit() to the start of the first chunk, as its worker recorded it
  (the first frame is rendered one frame's delay later).

Each process count renders 16 frames per process (8 s of ideal work, where
the job's fixed costs show: sending it, the last segment's encode, the
join); ``--long-processes`` also renders 64 frames per process (32 s), where
what shows is the steady state, the render window included; ``--two-encoders``
runs the 16-frame job again with an encode node of two processes (the
README's ``-Q gpu -c 2``), where the chord's callback can overtake the last
segment's encode.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pvio  # noqa: E402
import redis  # noqa: E402
from animators import Slow, bar_params  # noqa: E402
from workers import cluster_env, start_worker, stop, wait_for_workers  # noqa: E402

from bench.results_files import write_results  # noqa: E402
from celery_animate import Settings  # noqa: E402
from celery_animate.client.embedded.redis_server import RedisServer  # noqa: E402
from celery_animate.job.record import JobRecord  # noqa: E402

PER_NODE = 8


def run_job(settings: Settings, frames: int, processes: int, delay: float, out: Path) -> dict:
    client = redis.Redis.from_url(settings.broker_url)
    commands = client.info("stats")["total_commands_processed"]
    wall = time.time()
    started = time.perf_counter()
    job = Slow(delay).submit(out, bar_params(frames), fps=25, num_workers=processes,
                             video_quality=20, settings=settings)
    submitted = time.perf_counter() - started
    job.wait(timeout=600)
    seconds = time.perf_counter() - started
    if pvio.check_num_frames(str(out)) != frames:
        raise SystemExit(f"{out} does not have {frames} frames")
    # When the first chunk started, as its worker noted in the job's record (this machine's clock):
    # submit() is still sending the later chunks then, so polling after it returns would not tell.
    first_chunk = float(JobRecord(client, job.id).field("started")) - wall
    ideal = frames * delay / processes
    return {"seconds": seconds, "ideal": ideal, "share": ideal / seconds,
            "commands_per_frame": (client.info("stats")["total_commands_processed"] - commands) / frames,
            "submit_s": submitted, "first_chunk_s": first_chunk}


def measure(processes: int, delay: float, frames_per_process: int, repeats: int, work: Path,
            window_per_process: int = 8, encoders: int = 1) -> dict:
    nodes = max(1, processes // PER_NODE)
    # The render window sized for the fleet, as its operator would: the default 120 frames
    # throttles 32 processes that make 64 frames a second to about half the ideal.
    window = max(120, window_per_process * processes)
    with RedisServer() as server:
        env = cluster_env(server.url, CELERY_ANIMATE_WINDOW_FRAMES=str(window))
        names = [f"render-{k}" for k in range(nodes)] + ["encode"]
        workers = [start_worker(env, "render", processes // nodes, name, work / f"{name}.log")
                   for name in names[:-1]]
        workers.append(start_worker(env, "gpu", encoders, "encode", work / "encode.log"))
        settings = Settings.from_env(env)
        try:
            wait_for_workers(settings, names, timeout=300)
            # Every pool process imports, connects and sets up this animator's figure (the
            # same attributes: the figure cache is keyed by them) once before timing.
            run_job(settings, 2 * processes, processes, delay, work / "warmup.mp4")
            runs = [run_job(settings, frames_per_process * processes, processes, delay,
                            work / f"sim-{processes}.mp4") for _ in range(repeats)]
        finally:
            for worker in workers:
                stop(worker)
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return {"processes": processes, "nodes": nodes, "encoders": encoders,
            "frames": frames_per_process * processes, "window": window, "runs": runs, **median}


def report(results: dict) -> str:
    lines = [f"Simulated fleet on {results['machine']}: each frame sleeps {results['delay']} s "
             f"(256x128 figure); render nodes of {PER_NODE} processes and one encode node on one "
             f"Redis; median of {results['repeats']} runs on warm workers.", "",
             "| render processes | nodes | encode processes | frames | frames / process | window "
             "| ideal | measured | share of ideal | Redis commands / frame | submit() returns "
             "| submit to first chunk |",
             "|" + "---|" * 12]
    for row in results["rows"]:
        lines.append(f"| {row['processes']} | {row['nodes']} | {row.get('encoders', 1)} "
                     f"| {row['frames']} "
                     f"| {row['frames'] // row['processes']} | {row['window']} "
                     f"| {row['ideal']:.1f} s "
                     f"| {row['seconds']:.1f} s | {row['share']:.0%} | {row['commands_per_frame']:.1f} "
                     f"| {row['submit_s']:.2f} s | {row['first_chunk_s']:.2f} s |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Share of the ideal throughput against render processes, one line per job shape."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    shapes: dict[tuple[int, int], list[dict]] = {}
    for row in results["rows"]:
        shapes.setdefault((row["frames"] // row["processes"], row.get("encoders", 1)), []).append(row)
    for (per_process, encoders), rows in sorted(shapes.items()):
        rows.sort(key=lambda row: row["processes"])
        ax.plot([row["processes"] for row in rows], [100 * row["share"] for row in rows], "o-",
                label=f"{per_process} frames per process, {encoders} encode process"
                      + ("es" if encoders > 1 else ""))
    ax.axhline(90, color="k", ls="--", lw=1, label="90 %")
    counts = sorted({row["processes"] for row in results["rows"]})
    ax.set(xlabel="render processes", ylabel="share of ideal throughput [%]", xscale="log",
           xticks=counts, xticklabels=[str(n) for n in counts], ylim=(50, 100),
           title=f"Simulated fleet ({results['delay']} s frames) on {results['machine']}")
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="8,16,32,64")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds each frame sleeps")
    parser.add_argument("--frames-per-process", type=int, default=16)
    parser.add_argument("--long-processes", default="32",
                        help="process counts also measured with --long-frames-per-process")
    parser.add_argument("--long-frames-per-process", type=int, default=64)
    parser.add_argument("--two-encoders", default="32",
                        help="process counts also measured with an encode node of 2 processes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window-per-process", type=int, default=8,
                        help="CELERY_ANIMATE_WINDOW_FRAMES per render process (at least 120)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "delay": args.delay,
               "repeats": args.repeats, "rows": []}
    with tempfile.TemporaryDirectory() as work:
        counts = {"": args.processes, "long": args.long_processes, "two": args.two_encoders}
        runs = [(int(p), args.long_frames_per_process if kind == "long" else args.frames_per_process,
                 2 if kind == "two" else 1)
                for kind, listed in counts.items() for p in listed.split(",") if p]
        for processes, frames_per_process, encoders in runs:
            row = measure(processes, args.delay, frames_per_process, args.repeats, Path(work),
                          args.window_per_process, encoders)
            results["rows"].append(row)
            print(f"{processes:3d} processes, {encoders} encode: {row['share']:.0%} of ideal, "
                  f"{row['commands_per_frame']:.1f} Redis commands/frame, "
                  f"first chunk after {row['first_chunk_s']:.2f} s", flush=True)
    text = report(results)
    write_results(args.out, "fleet_sim", text, results)
    plot(results, args.out / "fleet_sim.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
