"""Per-frame costs outside draw(), at three frame sizes: grab, pack, store, fetch, unpack.

    python bench/frame_costs.py          # writes bench/results/frame_costs.md

Frames are real renders (the wave example, scaled by dpi, so they compress like plots
do). The store round trips go to a private redis-server on loopback, and to a folder in
/dev/shm (the embedded default's frame store). Medians of 30, on an otherwise idle machine.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import redis  # noqa: E402

from celery_animate.client.embedded.redis_server import RedisServer  # noqa: E402
from celery_animate.frames import pack_frame, unpack_frame  # noqa: E402
from celery_animate.ids import new_job_id  # noqa: E402
from celery_animate.render.grab import grab_rgb  # noqa: E402
from celery_animate.stores import DirectoryFrameStore, RedisFrameStore  # noqa: E402
from examples.wave import WaveAnimation, param_by_frame  # noqa: E402

#: Figure size in inches and dpi for each frame size.
SIZES = {"640x480": (6.4, 4.8, 100), "1920x1080": (6.4, 3.6, 300), "2400x1800": (6.4, 4.8, 375)}


def median_ms(action, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    rows = []
    shared = tempfile.mkdtemp(prefix="frame-costs-", dir="/dev/shm")
    with RedisServer() as server:
        store = RedisFrameStore(redis.Redis.from_url(server.url), ttl=60)
        folder = DirectoryFrameStore(shared, ttl=60)
        job = new_job_id()
        for width, height, dpi in SIZES.values():
            animator = WaveAnimation()
            fig = animator.setup_figure()
            fig.set_size_inches(width, height)
            fig.set_dpi(dpi)
            animator.update(3, param_by_frame(10)[3])
            fig.canvas.draw()
            rgba = np.asarray(fig.canvas.buffer_rgba())
            rgb = grab_rgb(fig, draw=False)
            payload = pack_frame(rgb)
            store.put(job, 0, payload)
            folder.put(job, 0, payload)
            rows.append((
                f"{rgb.shape[1]}x{rgb.shape[0]}",
                median_ms(lambda rgba=rgba: np.ascontiguousarray(rgba[:, :, :3])),
                median_ms(lambda fig=fig: grab_rgb(fig, draw=False)),
                median_ms(lambda rgb=rgb: pack_frame(rgb)),
                rgb.nbytes / len(payload),
                median_ms(lambda payload=payload: store.put(job, 0, payload)),
                median_ms(lambda: store.get_many(job, [0])),
                median_ms(lambda payload=payload: folder.put(job, 0, payload)),
                median_ms(lambda: folder.get_many(job, [0])),
                median_ms(lambda payload=payload: unpack_frame(payload)),
            ))
    shutil.rmtree(shared, ignore_errors=True)
    lines = ["| frame | RGBA→RGB, one slice copy (0.1) | RGBA→RGB now | zstd-1 pack | ratio | "
             "Redis SET | Redis GET | /dev/shm write | /dev/shm read | unpack |", "|" + "---|" * 10]
    for size, old, new, pack, ratio, put, get, shm_put, shm_get, unpack in rows:
        lines.append(f"| {size} | {old:.2f} ms | {new:.2f} ms | {pack:.2f} ms | {ratio:.0f}:1 | "
                     f"{put:.2f} ms | {get:.2f} ms | {shm_put:.2f} ms | {shm_get:.2f} ms "
                     f"| {unpack:.2f} ms |")
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "results" / "frame_costs.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
