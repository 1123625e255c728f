"""Benchmark celery-animate against parallel-matplotlib-animation and FuncAnimation.

    python bench/run.py                 # full run, writes bench/results/{results.md,results.json,scaling.png}
    python bench/run.py --smoke         # a few frames per workload: checks every runner's output only

The report ends with the speed targets, each marked met or not: every one-shot within
1.10x its hardware limit, the fourteen-panel one-shot at most 0.85x parallel_animate's
time, the wave declaring animated_artists() never slower than the same wave blitted
automatically, and blit=True at most 1.03x blit=False on figures where blitting does not
pay (bench/blit_cost.py's figures, measured in the same run).

Runners, alternated within each repeat, same frames, libx264 at the same quality and preset:
  one-shot   celery-animate make_video() on the embedded default, cluster start-up included
  warm       celery-animate submit() + wait() on workers that are already running
  peer       parallel-matplotlib-animation 0.1.4 make_video()
  funcanim   matplotlib FuncAnimation + FFMpegWriter, serial
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pvio  # noqa: E402
import redis  # noqa: E402
from blit_cost import measure as measure_blit_cost  # noqa: E402
from results_files import write_results  # noqa: E402
from sampling import PeakSampler  # noqa: E402
from workloads import WORKLOADS, Workload  # noqa: E402

from celery_animate import EmbeddedCluster, RenderJob  # noqa: E402
from celery_animate.render.frame_loop import PreparedFigure, render_frames  # noqa: E402

FPS = 30
QUALITY = 20  # parallel-video-io's default, passed explicitly to every runner
PRESET = "slow"  # likewise
RUNNERS = ["one-shot", "warm", "peer", "funcanim"]
#: The same encode for both libraries: libx264 at the given quality and preset.
ENCODING = {"fps": FPS, "video_mode": "cpu", "video_quality": QUALITY, "video_preset": PRESET}

#: The speed targets the report checks.
LIMIT_TARGET = 1.10  # one-shot time / hardware limit, every workload
PEER_TARGET = ("fourteen panels 2400x1800", 0.85)  # one-shot time / parallel_animate's
BLIT_PAIR = ("wave, animated_artists()", "wave, automatic blitting")  # first <= second
BLIT_COST_TARGET = 1.03  # blit=True / blit=False where blitting does not pay


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def hardware_limit(workload: Workload, params: list, cores: int, path: Path) -> dict:
    """(CPU seconds of a serial render + CPU seconds of the encode) / cores."""
    animator = workload.ours()
    start = cpu_seconds()
    frames = [rgb for _, rgb in render_frames(PreparedFigure.prepare(animator), enumerate(params))]
    render_cpu = cpu_seconds() - start
    start = cpu_seconds()
    pvio.write_frames_to_video(
        str(path),
        frames,
        FPS,
        mode="cpu",
        quality=QUALITY,
        preset=PRESET,
        quiet=True,
    )
    encode_cpu = cpu_seconds() - start
    plt.close("all")
    return {"render_cpu": render_cpu, "encode_cpu": encode_cpu, "limit_s": (render_cpu + encode_cpu) / cores}


class StorePeak(PeakSampler):
    """Samples, every 10 ms while a job runs, the bytes the cluster's frame store holds above
    its baseline into ``peak``: the files in its shared-memory folder and its spill folder,
    else Redis's used_memory."""

    def __init__(self, cluster: EmbeddedCluster):
        super().__init__(0.01)
        self.folders = [folder for folder in (cluster.scratch, cluster.spill) if folder]
        self.client = (None if self.folders
                       else redis.Redis.from_url(cluster.settings.result_backend))
        self.baseline = self.used()
        self.peak = 0

    def used(self) -> int:
        if self.client is not None:
            return self.client.info("memory")["used_memory"]
        total = 0
        # Files and the job's folder come and go while this walks: whatever vanished counts 0.
        for root in self.folders:
            for folder, _, names in os.walk(root):
                for name in names:
                    with contextlib.suppress(FileNotFoundError):
                        total += os.stat(os.path.join(folder, name)).st_size
        return total

    def sample(self) -> None:
        self.peak = max(self.peak, self.used() - self.baseline)


def run_one_shot(workload, params, path, workers, cluster):
    workload.ours().make_video(path, params, num_workers=workers, disable_progress_bar=True, **ENCODING)
    return {}


def run_warm(workload, params, path, workers, cluster):
    with StorePeak(cluster) as peak:
        job = workload.ours().submit(path, params, num_workers=workers, settings=cluster.settings,
                                     **ENCODING)
        job.wait(timeout=3600)
    return {"stats": RenderJob(job.id, cluster.settings).stats(), "store_peak": peak.peak}


def run_peer(workload, params, path, workers, cluster):
    workload.peer().make_video(path, params, num_workers=workers, disable_progress_bar=True, **ENCODING)
    return {}


def run_funcanimation(workload, params, path, workers, cluster):
    import imageio_ffmpeg
    from matplotlib import animation

    plt.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    animator = workload.ours()
    fig = animator.setup_figure()

    def step(i):
        animator.update(i, params[i])
        return []

    movie = animation.FuncAnimation(fig, step, frames=len(params), repeat=False, cache_frame_data=False)
    writer = animation.FFMpegWriter(
        fps=FPS,
        codec="libx264",
        extra_args=["-crf", str(QUALITY), "-preset", PRESET, "-profile:v", "high", "-pix_fmt", "yuv420p"],
    )
    movie.save(path, writer=writer, dpi=fig.dpi)
    plt.close(fig)
    return {}


RUN = {"one-shot": run_one_shot, "warm": run_warm, "peer": run_peer, "funcanim": run_funcanimation}


def timed(runner, workload, params, path, workers, cluster) -> dict:
    Path(path).unlink(missing_ok=True)
    start = time.perf_counter()
    extra = RUN[runner](workload, params, path, workers, cluster)
    seconds = time.perf_counter() - start
    frames = pvio.check_num_frames(path)
    if frames != len(params):
        raise SystemExit(f"{runner} wrote {frames} frames for {workload.name}, expected {len(params)}")
    return {"seconds": seconds, **extra}


def encoder_rss(workers: int, sizes: tuple[int, ...], out: Path) -> dict:
    """The encode process's peak RSS for the blitted wave at several frame counts (fresh cluster each)."""
    from examples.wave import BlittedWaveAnimation, param_by_frame

    rss = {}
    for n in sizes:
        with EmbeddedCluster(workers) as cluster:
            job = BlittedWaveAnimation().submit(out / f"rss-{n}.mp4", param_by_frame(n),
                                                num_workers=workers, settings=cluster.settings,
                                                **ENCODING)
            job.wait(timeout=3600)
            rss[n] = job.stats()["encoder_peak_rss_mb"]
    return rss


def scaling(workload: Workload, params: list, worker_counts: list[int], out: Path) -> dict:
    curves: dict[str, dict[int, float]] = {"celery-animate (warm)": {}, "parallel_animate": {}}
    for workers in worker_counts:
        with EmbeddedCluster(workers) as cluster:
            run_warm(workload, params[:24], out / "scale-warmup.mp4", workers, cluster)
            curves["celery-animate (warm)"][workers] = timed(
                "warm", workload, params, out / "scale.mp4", workers, cluster
            )["seconds"]
        curves["parallel_animate"][workers] = timed(
            "peer", workload, params, out / "scale.mp4", workers, None
        )["seconds"]
    return curves


def plot_scaling(curves: dict, serial_seconds: float, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    counts = sorted(next(iter(curves.values())))
    ax.plot(counts, counts, "k--", lw=1, label="ideal")
    for label, times in curves.items():
        ax.plot(counts, [serial_seconds / times[w] for w in counts], "o-", label=label)
    ax.set(xlabel="workers", ylabel="speedup over FuncAnimation (serial)", title=title, xticks=counts)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def medians(entry: dict) -> dict[str, float]:
    return {r: statistics.median(entry["runs"][r]) for r in RUNNERS if entry["runs"][r]}


def report(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; {results['workers']} workers; "
        f"median of {results['repeats']} alternated runs (FuncAnimation: {results['funcanim_repeats']}); "
        f"libx264 crf {QUALITY} preset {PRESET}.",
        "",
    ]
    lines += [
        "| workload | frames | one-shot (a) | warm (b) | parallel_animate (c) | FuncAnimation (d) "
        "| a/c | a / limit | b/c | hardware limit | a's MP4 = c's |",
        "|" + "---|" * 11,
    ]
    for name, w in results["workloads"].items():
        med = medians(w)
        limit = w["limit"]["limit_s"]
        lines.append(
            f"| {name} | {w['frames']} | {med['one-shot']:.2f} s | {med['warm']:.2f} s | {med['peer']:.2f} s "
            f"| {med['funcanim']:.2f} s | {med['one-shot'] / med['peer']:.2f} "
            f"| {med['one-shot'] / limit:.2f} | {med['warm'] / med['peer']:.2f} | {limit:.2f} s "
            f"| {'byte-identical' if w.get('identical_to_peer') else 'differs'} |"
        )
    lines += [
        "",
        "The hardware limit is (CPU seconds of a serial blitted render + CPU seconds of the "
        "encode) / cores, measured once per repeat beside the runs (median).",
        "",
        "Where the time goes in the warm runs (seconds summed over processes, median run):",
        "",
        "| workload | queue wait | setup | render | store put | store get | wait for frames | encode "
        "| frame store peak / raw RGB | encoder peak RSS |",
        "|" + "---|" * 10,
    ]
    for name, w in results["workloads"].items():
        s, raw = w["warm_stats"], w["raw_bytes"]
        lines.append(
            f"| {name} | {s.get('queue_wait', 0):.2f} | {s.get('setup', 0):.2f} | {s.get('render', 0):.2f} "
            f"| {s.get('store_put', 0):.2f} | {s.get('store_get', 0):.2f} "
            f"| {s.get('wait_for_frames', 0):.2f} | {s.get('encode', 0):.2f} "
            f"| {w['store_peak'] / 2**20:.1f} MB / {raw / 2**20:.0f} MB ({w['store_peak'] / raw:.1%}) "
            f"| {s.get('encoder_peak_rss_mb', 0):.0f} MB |"
        )
    if results.get("encoder_rss"):
        sizes = ", ".join(f"{n} frames: {mb:.0f} MB" for n, mb in results["encoder_rss"].items())
        lines += ["", f"Encode process peak RSS, blitted wave: {sizes}."]
    lines += ["", "Targets:", ""] + [f"- {'met' if met else 'NOT met'}: {text}"
                                     for met, text in targets(results)]
    return "\n".join(lines) + "\n"


def targets(results: dict) -> list[tuple[bool, str]]:
    """Each speed target this run can judge: (met, what was measured)."""
    workloads, checks = results["workloads"], []
    for name, w in workloads.items():
        ratio = medians(w)["one-shot"] / w["limit"]["limit_s"]
        checks.append((ratio <= LIMIT_TARGET,
                       f"{name}: one-shot {ratio:.2f}x its hardware limit (at most {LIMIT_TARGET:.2f}x)"))
    name, most = PEER_TARGET
    if name in workloads:
        med = medians(workloads[name])
        ratio = med["one-shot"] / med["peer"]
        checks.append((ratio <= most,
                       f"{name}: one-shot {ratio:.2f}x parallel_animate (at most {most:.2f}x)"))
    declared, automatic = BLIT_PAIR
    if declared in workloads and automatic in workloads:
        a, b = medians(workloads[declared])["one-shot"], medians(workloads[automatic])["one-shot"]
        checks.append((a <= b, f"animated_artists() wave {a:.2f} s, automatically blitted wave "
                               f"{b:.2f} s, one-shot ({a / b:.2f}x; at most 1.00x)"))
    for figure, r in results.get("blit_cost", {}).items():
        checks.append((r["ratio"] <= BLIT_COST_TARGET,
                       f"{figure}: blit=True {r['ratio']:.3f}x blit=False (at most "
                       f"{BLIT_COST_TARGET:.2f}x where blitting does not pay; turned off: "
                       f"{r['turned_off_because'] or 'no, it pays here'})"))
    return checks


def save(results: dict, out: Path) -> str:
    text = report(results)
    write_results(out, "results", text, results)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few frames each: correctness only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--funcanim-repeats", type=int, default=1,
                        help="FuncAnimation is serial and slow: run it this many times only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", action="append", help="workload name (repeatable)")
    parser.add_argument(
        "--scaling", default="1,2,3,4", help="worker counts for the scaling plot ('' to skip)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.scaling = 1, ""
    args.out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}",
        "workers": args.workers,
        "repeats": args.repeats,
        "funcanim_repeats": min(args.funcanim_repeats, args.repeats),
        "workloads": {},
    }
    if args.scaling:
        # First, while this process is small: the encoder is forked from it, and its peak RSS
        # counts the pages it shares with this process (the frames held for the hardware limit
        # later made 160 MB read as 620 MB).
        results["encoder_rss"] = encoder_rss(args.workers, (600, 6000), args.out)
    with EmbeddedCluster(args.workers) as warm_cluster:
        for workload in WORKLOADS:
            if args.only and workload.name not in args.only:
                continue
            params = workload.frames(args.smoke)
            first = workload.ours()
            height, width = first.setup_figure().canvas.get_width_height()[::-1]
            plt.close("all")
            entry = {
                "frames": len(params),
                "raw_bytes": len(params) * height * width * 3,
                "runs": {r: [] for r in RUNNERS},
                "limits": [],
            }
            warm_extras, identical = [], []
            for repeat in range(args.repeats):
                # The limit is measured once per repeat too, on the same noisy machine.
                entry["limits"].append(hardware_limit(workload, params, cores, args.out / "limit.mp4"))
                order = RUNNERS[repeat % 4 :] + RUNNERS[: repeat % 4]  # alternate who goes first
                paths = {}
                for runner in order:
                    if runner == "funcanim" and repeat >= args.funcanim_repeats:
                        continue
                    path = paths[runner] = args.out / f"{WORKLOADS.index(workload)}-{runner}.mp4"
                    outcome = timed(runner, workload, params, path, args.workers, warm_cluster)
                    entry["runs"][runner].append(outcome["seconds"])
                    if runner == "warm":
                        warm_extras.append(outcome)
                    print(f"{workload.name:20s} {runner:9s} {outcome['seconds']:7.2f} s", flush=True)
                # Same pixels through the same encoder settings: the same bytes, if drawing is exact.
                identical.append(paths["one-shot"].read_bytes() == paths["peer"].read_bytes())
            entry["identical_to_peer"] = all(identical)
            entry["limit"] = sorted(entry["limits"], key=lambda m: m["limit_s"])[len(entry["limits"]) // 2]
            median_run = sorted(warm_extras, key=lambda o: o["seconds"])[len(warm_extras) // 2]
            entry["warm_stats"], entry["store_peak"] = median_run["stats"], median_run["store_peak"]
            results["workloads"][workload.name] = entry
            save(results, args.out)  # a later crash keeps what was measured
    results["blit_cost"] = {
        name: {k: v for k, v in r.items() if k != "rounds"}
        for name, r in measure_blit_cost(30 if args.smoke else 150, 1 if args.smoke else 7,
                                         say=lambda line: print(line, flush=True)).items()
    }
    if args.scaling:
        wave = WORKLOADS[0]
        params = wave.frames(False)
        counts = [int(c) for c in args.scaling.split(",")]
        curves = scaling(wave, params, counts, args.out)
        serial = statistics.median(
            results["workloads"].get(wave.name, {}).get("runs", {}).get("funcanim")
            or [timed("funcanim", wave, params, args.out / "scale.mp4", 1, None)["seconds"]]
        )
        results["scaling"] = curves
        plot_scaling(curves, serial, args.out / "scaling.png", f"wave, {len(params)} frames, {cores} cores")
    text = save(results, args.out)
    for leftover in args.out.glob("*.mp4"):
        leftover.unlink()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
