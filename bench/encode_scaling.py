"""Issue 12's encode-side measurements, on real processes: the frame store's peak against job
length, a short job beside a long one, parallel encoding, and what segments cost in quality.

    python bench/encode_scaling.py            # writes bench/results/encode_scaling.{md,json}
    python bench/encode_scaling.py --smoke    # small sizes: checks the script runs

Every cluster is a private redis-server with `celery worker` processes (prefork): render -c 2,
encode -c 1 unless said otherwise, default settings (segments of at most 60 frames, a window of
120).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import pvio  # noqa: E402
import redis  # noqa: E402
from animators import HD, NoisyHD, bar_params  # noqa: E402
from workers import cluster_env, start_worker, stop, wait_for_workers  # noqa: E402

from bench.sampling import PeakSampler  # noqa: E402
from celery_animate import Settings  # noqa: E402
from celery_animate.client.embedded.redis_server import RedisServer  # noqa: E402
from celery_animate.encode.join import join_segments  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ENCODING = {"video_mode": "cpu", "video_quality": 20, "video_preset": "medium"}


@contextmanager
def cluster(log_dir: Path, encoders: int = 1, **env: str):
    """A private Redis, a render worker (-c 2) and ``encoders`` encode processes: yields
    (settings, redis client)."""
    with RedisServer() as server:
        full_env = cluster_env(server.url, **env)
        workers = [start_worker(full_env, "render", 2, "bench-render", log_dir / "render.log"),
                   start_worker(full_env, "gpu", encoders, "bench-encode", log_dir / "encode.log")]
        settings = Settings.from_env(full_env)
        try:
            wait_for_workers(settings, ["bench-render", "bench-encode"])
            yield settings, redis.Redis.from_url(server.url)
        finally:
            for worker in workers:
                stop(worker)


class FramePeak(PeakSampler):
    """Samples, every 20 ms, how many frames and bytes the frame store holds; keeps the peak."""

    def __init__(self, client: redis.Redis):
        super().__init__(0.02)
        self.client, self.frames, self.bytes = client, 0, 0

    def sample(self) -> None:
        keys = list(self.client.scan_iter("celery_animate:frame:*", count=1000))
        if len(keys) > self.frames:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.strlen(key)
                self.bytes = max(self.bytes, sum(pipe.execute()))
            self.frames = len(keys)


def store_peak(work: Path, lengths: list[int]) -> list[dict]:
    """Peak frames and MiB in the store for jobs of ``lengths`` frames (1280x720 with noise: the
    one encoder is the bottleneck)."""
    rows = []
    with cluster(work) as (settings, client):
        for n in lengths:
            with FramePeak(client) as peak:
                started = time.monotonic()
                NoisyHD(tag="peak").submit(work / f"peak-{n}.mp4", bar_params(n), fps=30, settings=settings,
                                      **ENCODING).wait(timeout=3600)
                seconds = time.monotonic() - started
            rows.append({"frames": n, "peak_frames": peak.frames, "peak_mib": peak.bytes / 2**20,
                         "seconds": seconds})
            print(rows[-1], flush=True)
    return rows


def short_beside_long(work: Path, repeats: int, long_frames: int, encoders: int = 1) -> dict:
    """Seconds a 24-frame job takes alone, and submitted 3 s after a ``long_frames`` job, with
    ``encoders`` encode processes."""
    alone, beside = [], []
    with cluster(work, encoders) as (settings, _):
        def short() -> float:
            started = time.monotonic()
            HD(tag="short").submit(work / "short.mp4", bar_params(24), fps=24, settings=settings,
                                   **ENCODING).wait(timeout=600)
            return time.monotonic() - started

        for _ in range(repeats):
            alone.append(short())
            long = HD(tag="long").submit(work / "long.mp4", bar_params(long_frames), fps=30,
                                         settings=settings, **ENCODING)
            time.sleep(3)
            beside.append(short())
            long.cancel()
            time.sleep(2)
            print({"encoders": encoders, "alone": alone[-1], "beside": beside[-1]}, flush=True)
    return {"encoders": encoders, "alone_s": alone, "beside_s": beside,
            "ratio": statistics.median(beside) / statistics.median(alone)}


def sharing(work: Path, repeats: int, long_frames: int) -> list[dict]:
    """:func:`short_beside_long` with one encode process (the issue's setup) and two (the
    README's: ``-Q gpu -c 2``)."""
    return [short_beside_long(work, repeats, long_frames, encoders) for encoders in (1, 2)]


#: (encode processes, window, segment) in frames, for one long job: one segment (streamed by
#: one encoder, as before segments), a window of one segment (nothing renders while a segment
#: encodes), the defaults (a window of two), and two encoders with a window of four.
LAYOUTS = [(1, 120, 600), (1, 60, 60), (1, 120, 60), (2, 240, 60)]


def parallel_encode(work: Path, repeats: int, n_frames: int) -> dict:
    """Seconds for one ``n_frames`` job in each of :data:`LAYOUTS`, alternated."""
    labels = {layout: f"{layout[0]} encoder(s), window {layout[1]}, segments of {layout[2]}"
              for layout in LAYOUTS}
    times: dict[str, list[float]] = {label: [] for label in labels.values()}
    for _ in range(repeats):
        for layout, label in labels.items():
            encoders, window, segment = layout
            env = {"CELERY_ANIMATE_WINDOW_FRAMES": str(window),
                   "CELERY_ANIMATE_SEGMENT_FRAMES": str(segment)}
            with cluster(work, encoders, **env) as (settings, _):
                started = time.monotonic()
                HD(tag="par").submit(work / "par.mp4", bar_params(n_frames), fps=30,
                                     settings=settings, **ENCODING).wait(timeout=3600)
                times[label].append(time.monotonic() - started)
                print({label: times[label][-1]}, flush=True)
    return {"seconds": times, "median": {k: statistics.median(v) for k, v in times.items()}}


def test_pattern(n_frames: int, height: int = 720, width: int = 1280) -> list[np.ndarray]:
    """Smooth moving colour fields with fine detail: a fair load for a PSNR comparison."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n_frames):
        t = i / 30
        r = 127 + 120 * np.sin(x / 37 + 2 * t) * np.cos(y / 53 - t)
        g = 127 + 120 * np.sin((x + y) / 71 + 3 * t)
        b = 127 + 100 * np.sin(np.hypot(x - width / 2, y - height / 2) / 19 - 4 * t)
        frames.append(np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8))
    return frames


def psnr(path: Path, reference: list[np.ndarray]) -> float:
    import imageio

    with imageio.get_reader(str(path), "ffmpeg") as reader:
        errors = [np.mean((frame.astype(np.float64) - ref) ** 2)
                  for frame, ref in zip(reader, reference, strict=True)]
    return float(10 * np.log10(255**2 / np.mean(errors)))


def one_line_frames(n_frames: int) -> list[np.ndarray]:
    """The issue-11 one-line wave (640x480, axis labels, title) as the renderer draws it."""
    sys.path.insert(0, str(ROOT / "bench"))
    from ported import OneLine, one_line_params

    from celery_animate.render.frame_loop import PreparedFigure, render_frames

    prepared = PreparedFigure.prepare(OneLine())
    return [rgb for _, rgb in render_frames(prepared, enumerate(one_line_params(n_frames)))]


def segment_quality(work: Path, source: str, frames: list[np.ndarray], segment: int) -> dict:
    """PSNR against the source of a single-pass encode and of ``segment``-frame segments joined
    by stream copy, with the same libx264 settings, and their sizes."""
    n_frames = len(frames)
    options = {"mode": "cpu", "quality": ENCODING["video_quality"], "preset": ENCODING["video_preset"],
               "quiet": True}
    single = work / "single.mp4"
    started = time.monotonic()
    pvio.write_frames_to_video(str(single), frames, 30, **options)
    single_s = time.monotonic() - started
    parts = []
    started = time.monotonic()
    for k, first in enumerate(range(0, n_frames, segment)):
        parts.append(work / f"part{k}.mp4")
        pvio.write_frames_to_video(str(parts[-1]), frames[first:first + segment], 30, **options)
    joined = work / "joined.mp4"
    join_segments(parts, joined)
    segmented_s = time.monotonic() - started
    row = {"source": source, "frames": n_frames, "segment": segment,
           "single_psnr_db": psnr(single, frames), "segmented_psnr_db": psnr(joined, frames),
           "single_mib": single.stat().st_size / 2**20, "segmented_mib": joined.stat().st_size / 2**20,
           "single_s": single_s, "segmented_s": segmented_s}
    row["psnr_delta_db"] = row["segmented_psnr_db"] - row["single_psnr_db"]
    print(row, flush=True)
    return row


def report(results: dict) -> str:
    lines = ["# Encode-side scaling (issue 12)", "",
             f"Machine: {results['machine']}. Private Redis, `celery worker` processes (prefork), "
             "render -c 2, encode -c 1 unless said otherwise; 1280x720 frames, libx264 "
             f"quality {ENCODING['video_quality']}, preset {ENCODING['video_preset']}; default "
             "settings (segments of at most 60 frames, a window of 120 frames).", "",
             "## The frame store's peak against job length", "",
             "| frames | peak frames in store | peak MiB | seconds |", "|---|---|---|---|"]
    for row in results["store_peak"]:
        lines.append(f"| {row['frames']} | {row['peak_frames']} | {row['peak_mib']:.1f} | "
                     f"{row['seconds']:.1f} |")
    peaks = {row["frames"]: row["peak_mib"] for row in results["store_peak"]}
    if 100 in peaks and 400 in peaks:
        lines += ["", f"Peak for 400 frames / peak for 100 frames: **{peaks[400] / peaks[100]:.2f}x**."]
    lines += ["", "## A 24-frame job beside a long one", ""]
    for sharing in results["short_beside_long"]:
        lines.append(
            f"* {sharing['encoders']} encode process(es): alone "
            f"{', '.join(f'{s:.2f}' for s in sharing['alone_s'])} s; submitted 3 s after a "
            f"{results['long_frames']}-frame job {', '.join(f'{s:.2f}' for s in sharing['beside_s'])} s. "
            f"Median ratio **{sharing['ratio']:.2f}x**.")
    lines += ["", "## Window and encoders", "",
              f"One {results['parallel_frames']}-frame 1280x720 job, workers started "
              "for each run, median seconds:", "", "| layout | seconds | runs |", "|---|---|---|",
              *[f"| {label} | {results['parallel']['median'][label]:.1f} | "
                f"{', '.join(f'{t:.1f}' for t in runs)} |"
                for label, runs in results["parallel"]["seconds"].items()], "",
              "## What segments cost", "",
              "| source | frames | segment | PSNR single pass | PSNR segmented | delta | MiB single "
              "| MiB segmented | s single | s segmented |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["quality"]:
        lines.append(f"| {row['source']} | {row['frames']} | {row['segment']} | "
                     f"{row['single_psnr_db']:.2f} dB | "
                     f"{row['segmented_psnr_db']:.2f} dB | {row['psnr_delta_db']:+.3f} dB | "
                     f"{row['single_mib']:.2f} | {row['segmented_mib']:.2f} | {row['single_s']:.1f} | "
                     f"{row['segmented_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sharing-only", action="store_true",
                        help="measure only the short job beside a long one; keep the other results")
    args = parser.parse_args()
    lengths = [30, 130] if args.smoke else [100, 400, 1600]
    long_frames = 300 if args.smoke else 4800
    parallel_frames = 130 if args.smoke else 600
    repeats = 1 if args.smoke else 3
    if args.sharing_only:
        results = json.loads((RESULTS / "encode_scaling.json").read_text())
        with tempfile.TemporaryDirectory(prefix="celery-animate-bench-") as tmp:
            results["short_beside_long"] = sharing(Path(tmp), 5, long_frames)
        save(results)
        return
    with tempfile.TemporaryDirectory(prefix="celery-animate-bench-") as tmp:
        work = Path(tmp)
        results = {"machine": f"{platform.processor() or platform.machine()}, "
                              f"{__import__('os').cpu_count()} cores",
                   "long_frames": long_frames, "parallel_frames": parallel_frames}
        n = 60 if args.smoke else 600
        sources = {"colour fields 1280x720": test_pattern(n), "one line 640x480": one_line_frames(n)}
        results["quality"] = [segment_quality(work, name, frames, segment)
                              for name, frames in sources.items()
                              for segment in ((30,) if args.smoke else (120, 60))]
        results["store_peak"] = store_peak(work, lengths)
        results["short_beside_long"] = sharing(work, repeats, long_frames)
        results["parallel"] = parallel_encode(work, repeats if not args.smoke else 1, parallel_frames)
    if args.smoke:
        print(report(results))
    else:
        save(results)


def save(results: dict) -> None:
    """Write ``bench/results/encode_scaling.{json,md}`` and print the report."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encode_scaling.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    (RESULTS / "encode_scaling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
