"""Encode-side measurements on real processes: the frame store's peak (frames waiting for the
encoders, and encoded segments waiting for the join) against job length on a loaded machine, a
short job beside a long one, parallel encoding, and what segments cost in quality.

    python bench/encode_scaling.py                     # writes bench/results/encode_scaling.{md,json}
    python bench/encode_scaling.py --smoke             # small sizes: checks the script runs
    python bench/encode_scaling.py --only store-peak   # re-measures one section, keeps the others

Every cluster is a private redis-server with `celery worker` processes (prefork): render -c 2,
encode -c 1 unless said otherwise, default settings (segments of at most 60 frames, a window of
120).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
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

from bench.results_files import write_results  # noqa: E402
from bench.sampling import PeakSampler  # noqa: E402
from celery_animate import Settings, keys  # noqa: E402
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


#: The store-peak jobs: 1280x720 noise with libx264's preset ``slower``, so the encoders are the
#: bottleneck by far and frames pile up in the store unless the window holds them back.
PEAK_ENCODING = {**ENCODING, "video_preset": "slower"}
#: Encode processes in the store-peak cluster: more than one, so several segments of the job
#: are encoded at once (a window of two segments lets two encode).
PEAK_ENCODERS = 2


class FramePeak(PeakSampler):
    """Samples, every 20 ms, the frames in the frame store and the encoded segments kept there
    until the join (count and bytes of each, in one pass); keeps the peaks of each and of their
    sum, and once a second a line of the job's state (see :meth:`timeline`)."""

    def __init__(self, client: redis.Redis):
        super().__init__(0.02)
        self.client = client
        self.job_id: str | None = None  # set once submitted: the timeline reads its record
        self.frames = self.bytes = self.segments = self.segment_bytes = 0
        self.both = self.both_bytes = 0
        self.samples = 0
        self.timeline: list[dict] = []
        self._started = time.monotonic()
        self._next_line = 0.0

    def _sizes(self, pattern: str) -> tuple[list[bytes], list[int]]:
        keys = list(self.client.scan_iter(pattern, count=1000))
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.strlen(key)
            return keys, pipe.execute()

    def sample(self) -> None:
        frame_keys, frame_sizes = self._sizes("celery_animate:frame:*")
        segment_keys, segment_sizes = self._sizes("celery_animate:segment:*")
        frames, frame_bytes = len(frame_keys), sum(frame_sizes)
        segments, segment_bytes = len(segment_keys), sum(segment_sizes)
        self.samples += 1
        self.frames, self.bytes = max(self.frames, frames), max(self.bytes, frame_bytes)
        self.segments = max(self.segments, segments)
        self.segment_bytes = max(self.segment_bytes, segment_bytes)
        self.both = max(self.both, frames + segments)
        self.both_bytes = max(self.both_bytes, frame_bytes + segment_bytes)
        now = time.monotonic() - self._started
        if self.job_id is not None and now >= self._next_line:
            self._next_line = now + 1.0
            self.timeline.append(self._line(now, frame_keys, frame_bytes, segments, segment_bytes))

    def _line(self, now: float, frame_keys: list[bytes], frame_bytes: int, segments: int,
              segment_bytes: int) -> dict:
        """The job's state now: frames stored (count, MiB, lowest and highest index), segments
        kept, the first segment not encoded yet, the encode leases alive, and seconds since an
        encoder last made progress."""
        job = keys.job(self.job_id)
        indices = [int(key.rsplit(b":", 1)[1]) for key in frame_keys]
        leases = [key for key in self.client.scan_iter(f"{job}:lease*", count=1000)
                  if not key.endswith(b":generation")]
        encoded_at = self.client.hget(job, "encoded_at")
        return {"t": round(now, 1), "frames": len(frame_keys), "frame_mib": round(frame_bytes / 2**20, 1),
                "lowest": min(indices, default=None), "highest": max(indices, default=None),
                "segments": segments, "segment_mib": round(segment_bytes / 2**20, 1),
                "first_unfinished": int(self.client.bitpos(keys.segments(self.job_id), 0)),
                "leases": len(leases),
                "idle_s": round(time.time() - float(encoded_at), 1) if encoded_at else None}


@contextmanager
def cpu_load(processes: int, niceness: int):
    """``processes`` busy-loop Python processes at ``niceness`` for the ``with`` block: the other
    work a shared machine runs."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             preexec_fn=lambda: os.nice(niceness)) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def window_misses(timeline: list[dict], window: int, segment: int) -> list[dict]:
    """The timeline's lines with a frame stored past the window's end (the first unfinished
    segment's first frame + ``window``, plus the chunk in flight at its edge: half a segment)."""
    return [line for line in timeline if line["highest"] is not None
            and line["highest"] >= line["first_unfinished"] * segment + window + segment // 2]


def store_peak(work: Path, order: list[int], hogs: int, niceness: int) -> dict:
    """Peaks in the store for 1280x720 noise jobs of ``order``'s lengths in frames, run in that
    order on one cluster with :data:`PEAK_ENCODERS` encode processes while ``hogs`` busy loops
    load the machine: frames, encoded segments, and both sampled together."""
    lengths = sorted(set(order))
    runs = []
    with cpu_load(hogs, niceness), cluster(work, PEAK_ENCODERS) as (settings, client):
        for n in order:
            with FramePeak(client) as peak:
                started = time.monotonic()
                job = NoisyHD(tag="peak").submit(work / f"peak-{n}.mp4", bar_params(n), fps=30,
                                                 settings=settings, **PEAK_ENCODING)
                peak.job_id = job.id
                job.wait(timeout=3600)
                seconds = time.monotonic() - started
            timeline = peak.timeline
            misses = window_misses(timeline, settings.window_frames, settings.segment_length)
            runs.append({"frames": n, "peak_frames": peak.frames, "peak_mib": peak.bytes / 2**20,
                         "peak_segments": peak.segments,
                         "peak_segment_mib": peak.segment_bytes / 2**20,
                         "peak_both": peak.both, "peak_both_mib": peak.both_bytes / 2**20,
                         "seconds": seconds, "samples": peak.samples,
                         "timeline_lines": len(timeline), "lines_past_window": len(misses),
                         "lines_past_window_without_lease": sum(1 for line in misses
                                                                if not line["leases"]),
                         "max_idle_s": max((line["idle_s"] or 0 for line in timeline), default=0),
                         "timeline": timeline})
            print({k: v for k, v in runs[-1].items() if k != "timeline"}, flush=True)
    median = {}
    for n in lengths:
        mine = [run for run in runs if run["frames"] == n]
        median[str(n)] = {key: statistics.median(run[key] for run in mine)
                          for key in ("peak_frames", "peak_mib", "peak_segments", "peak_segment_mib",
                                      "peak_both", "peak_both_mib", "seconds")}
        median[str(n)]["runs"] = len(mine)
    short, long = (median[str(n)] for n in (min(lengths), max(lengths)))
    return {"setup": {"encoders": PEAK_ENCODERS, "preset": PEAK_ENCODING["video_preset"],
                      "quality": PEAK_ENCODING["video_quality"], "hogs": hogs, "niceness": niceness,
                      "window": settings.window_frames, "segment": settings.segment_length,
                      "lengths": lengths, "order": order},
            "runs": runs, "median": median,
            "ratio": {"frames_mib": long["peak_mib"] / short["peak_mib"],
                      "frames_count": long["peak_frames"] / short["peak_frames"],
                      "both_mib": long["peak_both_mib"] / short["peak_both_mib"]}}


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
    """:func:`short_beside_long` with one encode process and two (the
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
    """The one-line wave of ``ported.py`` (640x480, axis labels, title) as the renderer draws it."""
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


def store_peak_report(peak: dict) -> list[str]:
    """The store-peak section: medians per job length, every run, the ratios and what the
    once-a-second timeline says about the window."""
    setup = peak["setup"]
    short, long = min(setup["lengths"]), max(setup["lengths"])
    lines = ["## The frame store's peak against job length, on a loaded machine", "",
             f"Render -c 2, one encode worker with {setup['encoders']} processes; 1280x720 frames "
             "with a field of noise that changes every frame (`NoisyHD`), libx264 quality "
             f"{setup['quality']}, preset {setup['preset']}, so the encoders are the bottleneck; "
             f"segments of {setup['segment']} frames, a window of {setup['window']}. "
             f"{setup['hogs']} busy-loop Python process(es) at nice {setup['niceness']} ran for the "
             "whole measurement (load average "
             f"{setup.get('loadavg_before', '?')} before it, {setup.get('loadavg_after', '?')} after), "
             "beside whatever else shared the machine. Jobs of "
             f"{' and '.join(map(str, setup['lengths']))} frames alternated, in the order "
             f"{', '.join(map(str, setup['order']))}, on one cluster. The store is sampled every "
             "20 ms; frames and segments are counted in the same sample, so their sum's peak is a "
             "real moment's.", "",
             "Medians:", "",
             "| frames | runs | frames in store: peak | MiB | encoded segments stored: peak | MiB "
             "| frames + segments: peak | MiB | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for n in setup["lengths"]:
        m = peak["median"][str(n)]
        lines.append(f"| {n} | {m['runs']} | {m['peak_frames']:g} | {m['peak_mib']:.1f} | "
                     f"{m['peak_segments']:g} | "
                     f"{m['peak_segment_mib']:.1f} | {m['peak_both']:g} | {m['peak_both_mib']:.1f} | "
                     f"{m['seconds']:.0f} |")
    ratio = peak["ratio"]
    lines += ["", f"Ratio {long} frames / {short} frames (medians): frames alone "
              f"**{ratio['frames_mib']:.2f}x** in MiB ({ratio['frames_count']:.2f}x in count); "
              f"frames + segments **{ratio['both_mib']:.2f}x** in MiB.", "",
              "Every run, in the order run (a line of the timeline is one second; \"past the "
              "window\": a frame stored at or beyond the first unfinished segment's first frame + "
              "the window + half a segment, the most a chunk at the window's edge may add; "
              "\"no lease\": of those, the lines when no encode lease of the job was alive; "
              "the JSON keeps a line every 5 s and every line past the window):", "",
              "| frames | frames: peak | MiB | segments: peak | MiB | both: peak | MiB | seconds "
              "| timeline lines | past the window | no lease | most s without encoder progress |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in peak["runs"]:
        lines.append(f"| {run['frames']} | {run['peak_frames']} | {run['peak_mib']:.1f} | "
                     f"{run['peak_segments']} | {run['peak_segment_mib']:.1f} | {run['peak_both']} | "
                     f"{run['peak_both_mib']:.1f} | {run['seconds']:.0f} | "
                     f"{run.get('timeline_lines', len(run['timeline']))} | "
                     f"{run['lines_past_window']} | {run['lines_past_window_without_lease']} | "
                     f"{run['max_idle_s']:.1f} |")
    return lines


def report(results: dict) -> str:
    lines = ["# Encode-side scaling", "",
             f"Machine: {results['machine']}. Private Redis, `celery worker` processes (prefork), "
             "render -c 2, encode -c 1 unless said otherwise; 1280x720 frames, libx264 "
             f"quality {ENCODING['video_quality']}, preset {ENCODING['video_preset']} unless said "
             "otherwise; default settings (segments of at most 60 frames, a window of 120 frames).",
             "", *store_peak_report(results["store_peak"])]
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


def measure_store_peak(work: Path, args: argparse.Namespace) -> dict:
    order = [130, 250] if args.smoke else [int(n) for n in args.peak_order.split(",")]
    before = os.getloadavg()
    peak = store_peak(work, order, args.hogs, args.hog_nice)
    after = os.getloadavg()
    peak["setup"]["loadavg_before"] = " / ".join(f"{x:.1f}" for x in before)
    peak["setup"]["loadavg_after"] = " / ".join(f"{x:.1f}" for x in after)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", choices=["store-peak", "sharing"],
                        help="measure only this section; keep the other results (with --smoke: "
                             "print the report, save nothing)")
    parser.add_argument("--sharing-only", action="store_const", const="sharing", dest="only",
                        help="the same as --only sharing")
    parser.add_argument("--hogs", type=int, default=2,
                        help="busy-loop processes loading the machine during the store peak (2)")
    parser.add_argument("--hog-nice", type=int, default=0, help="their niceness (0)")
    parser.add_argument("--peak-order", default="400,1600,1600,400",
                        help="the store peak's job lengths in frames, in the order run "
                             "(400,1600,1600,400: about 25 minutes on 2 loaded cores)")
    args = parser.parse_args()
    # A SIGTERM (a `kill`, a scheduler's stop) unwinds like Ctrl-C: the workers, their Redis and
    # the busy loops are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    long_frames = 300 if args.smoke else 4800
    parallel_frames = 130 if args.smoke else 600
    repeats = 1 if args.smoke else 3
    if args.only:
        results = json.loads((RESULTS / "encode_scaling.json").read_text())
        with tempfile.TemporaryDirectory(prefix="celery-animate-bench-") as tmp:
            if args.only == "sharing":
                results["short_beside_long"] = sharing(Path(tmp), 1 if args.smoke else 5, long_frames)
            else:
                results["store_peak"] = measure_store_peak(Path(tmp), args)
        if args.smoke:
            print(report(results))
        else:
            save(results)
        return
    with tempfile.TemporaryDirectory(prefix="celery-animate-bench-") as tmp:
        work = Path(tmp)
        results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                   "long_frames": long_frames, "parallel_frames": parallel_frames}
        n = 60 if args.smoke else 600
        sources = {"colour fields 1280x720": test_pattern(n), "one line 640x480": one_line_frames(n)}
        results["quality"] = [segment_quality(work, name, frames, segment)
                              for name, frames in sources.items()
                              for segment in ((30,) if args.smoke else (120, 60))]
        results["store_peak"] = measure_store_peak(work, args)
        results["short_beside_long"] = sharing(work, repeats, long_frames)
        results["parallel"] = parallel_encode(work, repeats if not args.smoke else 1, parallel_frames)
    if args.smoke:
        print(report(results))
    else:
        save(results)


def thin_timelines(peak: dict, every: float = 5.0) -> None:
    """Keep of each store-peak run's timeline a line every ``every`` seconds and every line past
    the window (the JSON stays small; the report's counts are taken before)."""
    setup = peak["setup"]
    for run in peak["runs"]:
        misses = {id(line) for line in window_misses(run["timeline"], setup["window"],
                                                     setup["segment"])}
        kept, last = [], -every
        for line in run["timeline"]:
            if id(line) in misses or line["t"] >= last + every:
                kept.append(line)
                last = line["t"] if id(line) not in misses else last
        run["timeline"] = kept


def save(results: dict) -> None:
    """Write ``bench/results/encode_scaling.{json,md}`` and print the report."""
    thin_timelines(results["store_peak"])
    text = report(results)
    write_results(RESULTS, "encode_scaling", text, results)
    print(text)


if __name__ == "__main__":
    main()
