"""The frame cache: a first run, a re-run that changed nothing, a re-run that changed 10 frames.

    python bench/cache.py            # writes bench/results/cache.{md,json}
    python bench/cache.py --smoke    # 60 frames, one round: checks the script runs

The workload is examples/wave.py's ``WaveAnimation`` (640x480, 600 frames, libx264), on
two deployments:

* **embedded**: ``make_video(num_workers=2)`` with nothing configured, each call
  starting and stopping its own cluster, as a script run again would;
* **cluster**: a private Redis with real ``celery worker`` processes (prefork; render -c 2,
  encode -c 1) that share a ``CELERY_ANIMATE_CACHE_SECRET``, warmed by a short job first;
  ``submit().wait()``.

Each round starts from an empty cache and times, in this order: a render without the
cache (what a run costs without it), the first run with ``cache=True`` (an empty cache),
the same job again, and the job with the params of 10 consecutive frames changed. The
last video is compared byte for byte with a cache-free render of the same params and
segments. Rounds alternate nothing else; the table gives medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.encode_scaling import cluster  # noqa: E402
from bench.results_files import write_results  # noqa: E402
from celery_animate import Settings  # noqa: E402
from examples.wave import WaveAnimation, param_by_frame  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FPS = 30
CHANGED = range(300, 310)
STEPS = ("no cache", "first run, cache=True", "unchanged re-run", "10 frames changed")


def changed_params(params: list) -> list:
    out = list(params)
    for i in CHANGED:
        out[i] = {"phase": params[i]["phase"] + 0.5}
    return out


def embedded_round(work: Path, params: list) -> tuple[dict[str, float], bool, dict]:
    """One round on the embedded cluster; returns seconds per step, whether the changed re-run
    equals a cache-free render byte for byte, and how many frames it drew."""
    cache_dir = work / "cache"
    env = {"CELERY_ANIMATE_CACHE_DIR": str(cache_dir)}
    plain = Settings.from_env({})
    cached = Settings.from_env(env)
    seconds = {}
    calls = [("no cache", params, plain, False), ("first run, cache=True", params, cached, True),
             ("unchanged re-run", params, cached, True),
             ("10 frames changed", changed_params(params), cached, True)]
    for k, (step, these, settings, cache) in enumerate(calls):
        started = time.perf_counter()
        WaveAnimation().make_video(work / f"{k}.mp4", these, fps=FPS, num_workers=2, cache=cache,
                                   settings=settings, disable_progress_bar=True)
        seconds[step] = time.perf_counter() - started
        print(f"embedded: {step}: {seconds[step]:.2f} s", flush=True)
    drawn = len(list(cache_dir.glob("entries/*/frame-*"))) - len(params)
    fresh = Settings.from_env({"CELERY_ANIMATE_SEGMENT_FRAMES": "60"})
    WaveAnimation().make_video(work / "fresh.mp4", changed_params(params), fps=FPS, num_workers=2,
                               settings=fresh, disable_progress_bar=True)
    same = (work / "3.mp4").read_bytes() == (work / "fresh.mp4").read_bytes()
    return seconds, same, {"frames_drawn": drawn}


def cluster_round(work: Path, params: list) -> tuple[dict[str, float], bool, dict]:
    """One round on a fresh private cluster whose workers share a cache secret."""
    env = {"CELERY_ANIMATE_CACHE_SECRET": secrets.token_hex(16)}
    seconds, stats = {}, {}
    with cluster(work, 1, **env) as (settings, _):
        # A first job, not timed: the workers' processes import and set up what they need once.
        WaveAnimation().submit(str(work / "warm.mp4"), params[:30], fps=FPS,
                               settings=settings).wait(timeout=600)
        calls = [("no cache", params, False), ("first run, cache=True", params, True),
                 ("unchanged re-run", params, True), ("10 frames changed", changed_params(params), True),
                 ("fresh", changed_params(params), False)]
        for k, (step, these, cache) in enumerate(calls):
            started = time.perf_counter()
            job = WaveAnimation().submit(str(work / f"c{k}.mp4"), these, fps=FPS, cache=cache,
                                         settings=settings)
            job.wait(timeout=600)
            if step != "fresh":
                seconds[step] = time.perf_counter() - started
                stats[step] = {key: round(value, 3) for key, value in job.stats().items()
                               if key in ("frames_drawn", "frames_from_cache", "segments_from_cache")}
                print(f"cluster: {step}: {seconds[step]:.2f} s {stats[step]}", flush=True)
    same = (work / "c3.mp4").read_bytes() == (work / "c4.mp4").read_bytes()
    return seconds, same, stats


def summarise(rounds: list[dict[str, float]]) -> dict:
    median = {step: statistics.median(r[step] for r in rounds) for step in STEPS}
    first = median["first run, cache=True"]
    return {"median_s": median, "runs_s": {step: [r[step] for r in rounds] for step in STEPS},
            "vs_first_run": {step: median[step] / first for step in STEPS},
            "cache_overhead": first / median["no cache"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n_frames, rounds = (60, 1) if args.smoke else (600, args.rounds)
    params = param_by_frame(n_frames)
    if args.smoke:
        global CHANGED
        CHANGED = range(20, 30)
    results: dict = {"frames": n_frames, "rounds": rounds,
                     "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "loadavg_before": " / ".join(f"{x:.1f}" for x in os.getloadavg())}
    for name, one_round in (("embedded", embedded_round), ("cluster", cluster_round)):
        timings, identical, details = [], [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="celery-animate-cache-bench-") as tmp:
                seconds, same, detail = one_round(Path(tmp), params)
            timings.append(seconds)
            identical.append(same)
            details.append(detail)
        results[name] = {**summarise(timings), "byte_identical": identical, "details": details}
    results["loadavg_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    setup = (f"examples/wave.py WaveAnimation, {n_frames} frames 640x480, {FPS} fps, libx264; "
             f"{rounds} rounds, median; {results['machine']}, Python {platform.python_version()}; "
             f"load average {results['loadavg_before']} before, {results['loadavg_after']} after")
    lines = ["# The frame cache: re-runs against the first run", "", setup, "",
             "| deployment | step | median s | vs first run with the cache |", "|---|---|---|---|"]
    for name in ("embedded", "cluster"):
        for step in STEPS:
            lines.append(f"| {name} | {step} | {results[name]['median_s'][step]:.2f} | "
                         f"{results[name]['vs_first_run'][step]:.3f}x |")
    lines += ["", "The re-run with 10 changed frames gave a video byte-identical to a cache-free "
              "render with the same segments: "
              + ", ".join(f"{name} {results[name]['byte_identical']}" for name in ("embedded", "cluster")),
              "", "Frames drawn by the re-run with 10 changed frames: "
              f"embedded {[d['frames_drawn'] for d in results['embedded']['details']]}, cluster "
              f"{[d['10 frames changed']['frames_drawn'] for d in results['cluster']['details']]}."]
    if not args.smoke:
        write_results(RESULTS, "cache", "\n".join(lines) + "\n", results, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
