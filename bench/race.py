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
from workers import private_cluster  # noqa: E402

from examples.gridspec_dashboard import GridSpecDashboard, param_by_frame  # noqa: E402


def attempt(label: str, video: Path, expected: int, render) -> str:
    """Run ``render()``, then count the frames of ``video``: "ok", or what went wrong."""
    started = time.monotonic()
    try:
        render()
        n = pvio.check_num_frames(video)
        outcome = "ok" if n == expected else f"{n} frames"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:200]}"
    print(f"{label}: {outcome} ({time.monotonic() - started:.1f} s)", flush=True)
    return outcome


def run_heavy(runs: int, out: Path) -> list[str]:
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CELERY_")}
    try:
        return [attempt(f"heavy {run}", out / f"heavy-{run}.mp4", 30, lambda run=run: GridSpecDashboard()
                        .make_video(out / f"heavy-{run}.mp4", param_by_frame(30), fps=10, num_workers=2,
                                    disable_progress_bar=True))
                for run in range(runs)]
    finally:
        os.environ.update(env_backup)


def run_hd(runs: int, out: Path) -> list[str]:
    with private_cluster(out, "race", encode_concurrency=2) as (_, settings):
        return [attempt(f"hd {run}", out / f"hd-{run}.mp4", 100, lambda run=run: HD()
                        .submit(out / f"hd-{run}.mp4", bar_params(100), fps=30, settings=settings)
                        .wait(timeout=600))
                for run in range(runs)]


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
