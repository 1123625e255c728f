"""Runs the two jobs that used to fail on the encoder race, N times each, and counts failures.

    python bench/race.py --runs 20        # writes bench/results/race.md

1. parallel_animate's kind of heavy figure (examples/gridspec_dashboard.py: 14 panels, 3D
   surface, 2400x1800, 30 frames) with make_video() on the embedded default, 2 workers;
2. a 1280x720, 100-frame job on a Redis with a render worker (-c 2) and the README's encode
   worker (`celery -A celery_animate worker -Q gpu -c 2`), all real processes.

Every video is decoded and its frame count checked; any exception counts as a failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pvio  # noqa: E402
from animators import HD, bar_params  # noqa: E402
from workers import cluster_env, start_worker, stop, wait_for_workers  # noqa: E402

from celery_animate import Settings  # noqa: E402
from celery_animate.embedded.redis_server import RedisServer  # noqa: E402
from examples.gridspec_dashboard import GridSpecDashboard, param_by_frame  # noqa: E402


def frames_in(path: Path) -> int:
    return pvio.check_num_frames(path)


def run_heavy(runs: int, out: Path) -> list[str]:
    outcomes = []
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CELERY_")}
    try:
        for run in range(runs):
            video = out / f"heavy-{run}.mp4"
            started = time.monotonic()
            try:
                GridSpecDashboard().make_video(video, param_by_frame(30), fps=10, num_workers=2,
                                               disable_progress_bar=True)
                n = frames_in(video)
                outcomes.append("ok" if n == 30 else f"{n} frames")
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            print(f"heavy {run}: {outcomes[-1]} ({time.monotonic() - started:.1f} s)", flush=True)
    finally:
        os.environ.update(env_backup)
    return outcomes


def run_hd(runs: int, out: Path) -> list[str]:
    outcomes = []
    with RedisServer() as server:
        env = cluster_env(server.url)
        workers = [start_worker(env, "render", 2, "race-render", out / "render.log"),
                   start_worker(env, "gpu", 2, "race-encode", out / "encode.log")]
        settings = Settings.from_env(env)
        try:
            wait_for_workers(settings, ["race-render", "race-encode"])
            for run in range(runs):
                video = out / f"hd-{run}.mp4"
                started = time.monotonic()
                try:
                    job = HD().submit(video, bar_params(100), fps=30, settings=settings)
                    job.wait(timeout=600)
                    n = frames_in(video)
                    outcomes.append("ok" if n == 100 else f"{n} frames")
                except Exception as exc:
                    outcomes.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                print(f"hd {run}: {outcomes[-1]} ({time.monotonic() - started:.1f} s)", flush=True)
        finally:
            for worker in workers:
                stop(worker)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celery-animate-race-") as tmp:
        heavy = run_heavy(args.runs, Path(tmp))
        hd = run_hd(args.runs, Path(tmp))
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    lines = [f"# Encoder race: {args.runs} runs each (commit {commit})", "",
             "| job | runs | succeeded | failures |", "|---|---|---|---|"]
    for name, outcomes in [("heavy figure, embedded, 2 workers", heavy),
                           ("1280x720, 100 frames, `-Q gpu -c 2` encode worker", hd)]:
        failures = sorted({o for o in outcomes if o != "ok"})
        lines.append(f"| {name} | {len(outcomes)} | {outcomes.count('ok')} | "
                     f"{'; '.join(failures) or 'none'} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "race.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(o == "ok" for o in heavy + hd) else 1


if __name__ == "__main__":
    sys.exit(main())
