"""The frame cache, end to end: real embedded clusters and real prefork workers on a real Redis.

Each test renders, changes one input of the frame cache's key, renders again, and checks
exactly which frames were drawn again (new frame entries in the cache, or the job's own
count), that the video has the right frames in order, and that it is byte-identical to a
render that used no cache.
"""

import importlib
import os
import sys
from pathlib import Path

import matplotlib
import pytest
import redis
from animators import BarCode, bar_params
from helpers import assert_video, serial_frames, wait_until

from celery_animate import RenderJob, wire
from celery_animate.cache import namespace_of
from celery_animate.config import Settings
from celery_animate.keys import cache_recency
from celery_animate.stores import open_frame_store

N = 40


def frame_entries(cache_dir: Path) -> set[str]:
    return {p.name for p in cache_dir.glob("entries/*/frame-*")}


@pytest.fixture
def embedded_cache(tmp_path, monkeypatch):
    """No cluster configured; the embedded cluster's cache in a folder of this test's own."""
    for key in list(os.environ):
        if key.startswith("CELERY_"):
            monkeypatch.delenv(key)
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("CELERY_ANIMATE_CACHE_DIR", str(cache_dir))
    return cache_dir


def test_embedded_reruns_draw_exactly_the_frames_whose_inputs_changed(embedded_cache, tmp_path):
    params = bar_params(N)
    first = BarCode(tag="cache").make_video(tmp_path / "a.mp4", params, fps=10, num_workers=2,
                                             cache=True, disable_progress_bar=True)
    drawn = frame_entries(embedded_cache)
    assert len(drawn) == N
    assert_video(tmp_path / "a.mp4", serial_frames(BarCode(tag="cache"), params))

    # Nothing changed: the whole video comes from the cache, without a cluster.
    again = BarCode(tag="cache").make_video(tmp_path / "b.mp4", params, fps=10, num_workers=2,
                                             cache=True, disable_progress_bar=True)
    assert (tmp_path / "b.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    assert again.encode_seconds == 0.0 and again.n_frames == first.n_frames
    assert again.outputs == [str(tmp_path / "b.mp4")]
    assert frame_entries(embedded_cache) == drawn

    # One frame's params: that frame alone is drawn again, and the video equals a cache-free one.
    changed = list(params)
    changed[7] = {"y": params[7]["y"] * 0.5}
    BarCode(tag="cache").make_video(tmp_path / "c.mp4", changed, fps=10, num_workers=2,
                                    cache=True, disable_progress_bar=True)
    assert len(frame_entries(embedded_cache) - drawn) == 1
    fresh = Settings.from_env({"CELERY_ANIMATE_SEGMENT_FRAMES": "60"})
    BarCode(tag="cache").make_video(tmp_path / "fresh.mp4", changed, fps=10, num_workers=2,
                                    cache=False, settings=fresh, disable_progress_bar=True)
    assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "fresh.mp4").read_bytes()
    assert_video(tmp_path / "c.mp4", serial_frames(BarCode(tag="cache"), changed))


@pytest.mark.parametrize("change", ["attribute", "dpi", "rcparam"])
def test_a_change_every_frame_depends_on_draws_every_frame_again(embedded_cache, tmp_path,
                                                                  change):
    params = bar_params(N)
    BarCode(tag="k").make_video(tmp_path / "a.mp4", params, fps=10, num_workers=2, cache=True,
                                disable_progress_bar=True)
    before = frame_entries(embedded_cache)
    animator, kwargs = BarCode(tag="k"), {}
    if change == "attribute":
        animator = BarCode(tag="k2")
    elif change == "dpi":
        kwargs = {"savefig_params": {"dpi": 50}}
    with matplotlib.rc_context({"lines.linewidth": 1.0} if change == "rcparam" else {}):
        animator.make_video(tmp_path / "b.mp4", params, fps=10, num_workers=2, cache=True,
                            disable_progress_bar=True, **kwargs)
    assert len(frame_entries(embedded_cache) - before) == N
    size = (128, 64) if change == "dpi" else (256, 128)
    with matplotlib.rc_context({"lines.linewidth": 1.0} if change == "rcparam" else {}):
        expected = serial_frames(animator, params) if change != "dpi" else None
    if expected is not None:
        assert_video(tmp_path / "b.mp4", expected, size=size)


CODE = """
import numpy as np
from animators import BarCode

class Tinted(BarCode):
    def update(self, frame_idx, params):
        super().update(frame_idx, params)
        self.line.set_color({color!r})
"""


def test_changed_code_is_drawn_again_with_the_new_code(embedded_cache, tmp_path, monkeypatch):
    module = tmp_path / "tinted_cache_mod.py"
    module.write_text(CODE.format(color="tab:red"))
    monkeypatch.syspath_prepend(str(tmp_path))
    tinted = importlib.import_module("tinted_cache_mod")
    try:
        params = bar_params(N)
        tinted.Tinted().make_video(tmp_path / "a.mp4", params, fps=10, num_workers=2, cache=True,
                                   disable_progress_bar=True)
        before = frame_entries(embedded_cache)
        module.write_text(CODE.format(color="tab:green"))
        importlib.reload(tinted)
        tinted.Tinted().make_video(tmp_path / "b.mp4", params, fps=10, num_workers=2,
                                   cache=True, disable_progress_bar=True)
        assert len(frame_entries(embedded_cache) - before) == N
        assert_video(tmp_path / "b.mp4", serial_frames(tinted.Tinted(), params))
    finally:
        sys.modules.pop("tinted_cache_mod", None)


def cache_env(secret: str) -> dict[str, str]:
    return {"CELERY_ANIMATE_CACHE_SECRET": secret, "CELERY_ANIMATE_FRAME_STORE": "redis",
            "CELERY_ANIMATE_ALLOWED_ANIMATORS": "animators"}


def test_forged_cache_entries_are_drawn_again_and_never_reach_a_video(make_cluster, tmp_path):
    private = make_cluster(env=cache_env("workers-secret"))
    settings = private.settings
    params = bar_params(N)
    out = tmp_path / "a.mp4"
    job = BarCode(tag="forge").submit(out, params, fps=10, settings=settings, cache=True)
    job.wait(timeout=120)
    assert job.stats()["frames_drawn"] == N

    # A stranger on the broker writes over every cached frame: random bytes, another entry's
    # (validly sealed) bytes, and an entry sealed with a secret he guessed.
    client = redis.Redis.from_url(settings.broker_url)
    namespace = namespace_of("workers-secret")
    names = sorted(client.zrange(cache_recency(namespace), 0, -1))
    frames = [name for name in names if b":frame-" in name]
    assert len(frames) == N
    donor = client.get(frames[0])
    for k, name in enumerate(frames[1:], start=1):
        client.set(name, b"\0" * 64 + donor[64:] if k % 2 else donor)
    job = BarCode(tag="forge").submit(tmp_path / "b.mp4", params, fps=10, settings=settings,
                                      cache=True)
    job.wait(timeout=120)
    assert job.stats()["frames_drawn"] == N - 1  # all but the untouched donor
    assert_video(tmp_path / "b.mp4", serial_frames(BarCode(tag="forge"), params))


def test_workers_with_another_secret_share_nothing(make_cluster, tmp_path):
    first = make_cluster(env=cache_env("one"))
    params = bar_params(N)
    BarCode(tag="ns").submit(tmp_path / "a.mp4", params, fps=10, settings=first.settings,
                             cache=True).wait(timeout=120)
    first.stop_all()
    second = make_cluster(env=cache_env("two"), server=first.server)
    job = BarCode(tag="ns").submit(tmp_path / "b.mp4", params, fps=10, settings=second.settings,
                                   cache=True)
    job.wait(timeout=120)
    assert job.stats()["frames_drawn"] == N


def test_a_worker_without_a_secret_renders_in_full(make_cluster, tmp_path):
    private = make_cluster(env={"CELERY_ANIMATE_ALLOWED_ANIMATORS": "animators"})
    params = bar_params(N)
    for name in ("a.mp4", "b.mp4"):
        job = BarCode().submit(tmp_path / name, params, fps=10, settings=private.settings,
                               cache=True)
        job.wait(timeout=120)
        assert job.stats()["frames_drawn"] == N
    assert_video(tmp_path / "b.mp4", serial_frames(BarCode(), params))
    assert RenderJob(job.id, private.settings).progress().rendered == N
    log = private.logs["render"].read_text()
    assert "asks for the frame cache, but this worker has no CELERY_ANIMATE_CACHE_SECRET" in log


def test_many_writers_at_once_keep_a_redis_cache_within_its_bound(redis_server):
    """Four processes' worth of writers (threads with clients of their own) on a real Redis: the
    count of bytes stays exact and the cache never holds more than its bound."""
    from concurrent.futures import ThreadPoolExecutor

    from celery_animate.cache import RedisCache
    from celery_animate.keys import cache_sizes

    namespace = namespace_of("bound")
    bound = 20_000

    def write(worker: int) -> None:
        cache = RedisCache(redis.Redis.from_url(redis_server.url), namespace, bound, 600)
        for k in range(50):
            cache.put(f"frame-{worker * 1000 + k:064x}", bytes(1000 + worker))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    client = redis.Redis.from_url(redis_server.url)
    entries = client.zrange(cache_recency(namespace), 0, -1)
    held = sum(client.strlen(entry) for entry in entries)
    assert held == int(client.hget(cache_sizes(namespace), "total")) <= bound
    assert len(entries) >= bound // 1003 - 1
    RedisCache(client, namespace, bound, 600).clear()
    assert not client.keys(f"*{namespace}*")


def test_an_identical_job_follows_the_one_running_and_a_different_one_does_not(make_cluster,
                                                                               tmp_path):
    from animators import Slow

    from celery_animate.keys import identical_job

    private = make_cluster(env=cache_env("same"))
    settings = private.settings
    params = bar_params(24)
    out = tmp_path / "same.mp4"
    first = Slow(0.1).submit(out, params, fps=10, settings=settings, cache=True)
    second = Slow(0.1).submit(out, params, fps=10, settings=settings, cache=True)
    other = Slow(0.1).submit(tmp_path / "other.mp4", params, fps=10, settings=settings, cache=True)
    assert second.id == first.id and other.id != first.id
    first.wait(timeout=120)
    assert first.stats()["frames_drawn"] == 24  # drawn once, for both callers
    assert_video(out, serial_frames(BarCode(), params))
    other.wait(timeout=120)
    # Once it ended, the same job is a new job (its frames now come from the cache).
    client = redis.Redis.from_url(settings.broker_url)
    wait_until(lambda: not client.keys(identical_job("*")), 30, "the notes go with their jobs")
    again = Slow(0.1).submit(out, params, fps=10, settings=settings, cache=True)
    assert again.id != first.id
    again.wait(timeout=120)
    assert again.stats()["frames_drawn"] == 0


def test_a_forged_identical_note_is_taken_over(make_cluster, tmp_path):
    from celery_animate.keys import identical_job

    private = make_cluster(env=cache_env("notes"))
    client = redis.Redis.from_url(private.settings.broker_url)
    params = bar_params(12)
    job = BarCode(tag="note").submit(tmp_path / "n.mp4", params, fps=10,
                                     settings=private.settings, cache=True)
    job.wait(timeout=120)
    # A stranger points every fingerprint he can guess at nonsense, and at a finished job.
    fingerprint = client.hget(f"celery_animate:job:{job.id}", "identical").decode()
    wait_until(lambda: not client.exists(identical_job(fingerprint)), 30, "the note goes")
    for target in (b"../../etc", job.id.encode()):
        client.set(identical_job(fingerprint), target)
        fresh = BarCode(tag="note").submit(tmp_path / "n.mp4", params, fps=10,
                                           settings=private.settings, cache=True)
        assert fresh.id not in (job.id, "../../etc")
        fresh.wait(timeout=120)
        assert_video(tmp_path / "n.mp4", serial_frames(BarCode(), params))


def test_a_few_changed_frames_are_finished_in_this_process_with_the_clusters_bytes(
        embedded_cache, tmp_path, monkeypatch):
    from celery_animate.client import dispatch

    params = bar_params(130)  # three segments of 44 frames
    BarCode(tag="local").make_video(tmp_path / "a.mp4", params, fps=10, num_workers=2,
                                    cache=True, disable_progress_bar=True)
    drawn = frame_entries(embedded_cache)
    changed = list(params)
    changed[50] = {"y": params[50]["y"] * 0.5}

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for one changed frame")

    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "EmbeddedCluster", no_cluster)
        result = BarCode(tag="local").make_video(tmp_path / "b.mp4", changed, fps=10,
                                                 num_workers=2, cache=True,
                                                 disable_progress_bar=True)
    assert result.n_frames == 130 and result.outputs == [str(tmp_path / "b.mp4")]
    assert len(frame_entries(embedded_cache) - drawn) == 1
    fresh = Settings.from_env({"CELERY_ANIMATE_SEGMENT_FRAMES": "60"})
    BarCode(tag="local").make_video(tmp_path / "fresh.mp4", changed, fps=10, num_workers=2,
                                    settings=fresh, disable_progress_bar=True)
    assert (tmp_path / "b.mp4").read_bytes() == (tmp_path / "fresh.mp4").read_bytes()
    assert_video(tmp_path / "b.mp4", serial_frames(BarCode(tag="local"), changed))

    # Changes in every segment: that is a cluster's work again.
    everywhere = list(changed)
    for k in (5, 60, 120):
        everywhere[k] = {"y": params[k]["y"] * 0.25}
    with monkeypatch.context() as patch:
        started = []
        real = dispatch.EmbeddedCluster
        patch.setattr(dispatch, "EmbeddedCluster", lambda *a, **k: started.append(1) or real(*a, **k))
        BarCode(tag="local").make_video(tmp_path / "c.mp4", everywhere, fps=10, num_workers=2,
                                        cache=True, disable_progress_bar=True)
    assert started and len(frame_entries(embedded_cache) - drawn) == 4
    assert_video(tmp_path / "c.mp4", serial_frames(BarCode(tag="local"), everywhere))


def test_a_kept_video_goes_under_the_output_root_like_the_first(embedded_cache, tmp_path,
                                                                 monkeypatch):
    root, elsewhere = tmp_path / "root", tmp_path / "cwd"
    root.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("CELERY_ANIMATE_OUTPUT_ROOT", str(root))
    monkeypatch.chdir(elsewhere)
    params = bar_params(N)
    first = BarCode(tag="root").make_video("a.mp4", params, fps=10, num_workers=2, cache=True,
                                           disable_progress_bar=True)
    (root / "a.mp4").rename(root / "first.mp4")
    again = BarCode(tag="root").make_video("a.mp4", params, fps=10, num_workers=2, cache=True,
                                           disable_progress_bar=True)
    assert again.encode_seconds == 0.0 and again.output == first.output == str(root / "a.mp4")
    assert (root / "a.mp4").read_bytes() == (root / "first.mp4").read_bytes()
    assert list(elsewhere.iterdir()) == []


def test_an_unchanged_cluster_job_publishes_its_kept_video_and_a_forged_one_is_rendered(
        make_cluster, tmp_path):
    """Workers on a real Redis keep a segmented job's whole video; the same job again stores no
    frame and gets the same bytes, and leaves nothing behind. A stranger who replaces the kept
    video's entry (with another video's sealed entry, or with garbage) gets a fresh render."""
    env = {**cache_env("kept"), "CELERY_ANIMATE_SEGMENT_FRAMES": "8"}
    private = make_cluster(env=env)
    settings = private.settings
    client = redis.Redis.from_url(settings.broker_url)
    store = open_frame_store(settings)
    params = bar_params(N)
    expected = serial_frames(BarCode(tag="kept"), params)
    first = BarCode(tag="kept").submit(tmp_path / "a.mp4", params, fps=10, settings=settings,
                                       cache=True)
    first.wait(timeout=120)
    assert first.stats()["frames_drawn"] == N and "video_from_cache" not in first.stats()
    other = BarCode(tag="kept").submit(tmp_path / "o.mp4", params[::-1], fps=10,
                                       settings=settings, cache=True)
    other.wait(timeout=120)

    again = BarCode(tag="kept").submit(tmp_path / "b.mp4", params, fps=10, settings=settings,
                                       cache=True)
    result = again.wait(timeout=120)
    stats = again.stats()
    assert stats["video_from_cache"] == 1 and stats["frames_drawn"] == 0
    assert (tmp_path / "b.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    assert (result.n_frames, result.outputs) == (N, [str(tmp_path / "b.mp4")])
    assert_video(tmp_path / "b.mp4", expected)
    progress = again.progress()
    assert (progress.rendered, progress.encoded) == (N, N)
    spec_segments = N // 8

    def leftovers() -> list:
        return ([k for k in range(N) if store.get_many(again.id, [k])[0] is not None]
                + [k for k in range(spec_segments + 1) if store.get_segment(again.id, k) is not None]
                + [key for key in client.scan_iter(f"*{again.id}*") if client.ttl(key) < 0])

    wait_until(lambda: not leftovers(), message="the job's data to be deleted", show=leftovers)

    namespace = namespace_of("kept")
    videos = [name for name in client.zrange(cache_recency(namespace), 0, -1) if b":video-" in name]
    assert len(videos) == 2  # one per job that differs
    first_bytes = (tmp_path / "a.mp4").read_bytes()
    mine = next(name for name in videos if wire.unpackb(client.get(name)[32:])[1] == first_bytes)
    theirs = next(name for name in videos if name != mine)
    for k, forged in enumerate((client.get(theirs), b"\0" * 32 + client.get(mine)[32:])):
        client.set(mine, forged)
        job = BarCode(tag="kept").submit(tmp_path / f"f{k}.mp4", params, fps=10, settings=settings,
                                         cache=True)
        job.wait(timeout=120)
        assert "video_from_cache" not in job.stats()
        assert job.stats()["frames_from_cache"] == N
        assert (tmp_path / f"f{k}.mp4").read_bytes() == first_bytes
