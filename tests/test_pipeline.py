"""The chord end to end: a real Redis, real `celery worker` processes (prefork), decoded videos."""

import json
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from animators import BarCode, NotAFigure, bar_params
from helpers import assert_video, decode, serial_frames, wait_until

from celery_animate import IndexedFrameParams, JobCancelled, RenderFailed, RenderJob
from celery_animate.errors import ConfigurationError

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("store", ["redis", "file"])
def test_make_video_on_cluster_with_both_frame_stores(use_cluster, extra_workers, tmp_path, store,
                                                       redis_client):
    scratch = tmp_path / "scratch"
    settings = use_cluster.settings
    if store == "file":  # the workers' own setting decides where frames go
        env = {"CELERY_ANIMATE_FRAME_STORE": f"file://{scratch}"}
        extra_workers("render-file", "render-file", concurrency=2, **env)
        extra_workers("gpu-file", "encode-file", **env)
        settings = replace(settings, render_queue="render-file", encode_queue="gpu-file")
    params = bar_params(30)
    result = BarCode().make_video(tmp_path / "out.mp4", params, fps=15, num_workers=2,
                                  video_quality=10, disable_progress_bar=True, settings=settings)
    assert (result.n_frames, result.width, result.height) == (30, 256, 128)
    assert result.encoder == "libx264" and result.size_bytes == (tmp_path / "out.mp4").stat().st_size
    assert_video(tmp_path / "out.mp4", serial_frames(BarCode(), params))
    # Frames and staged params are deleted once the video is written (just after the job's end,
    # which make_video may see first).
    def leftovers() -> list:
        found = redis_client.keys("celery_animate:frame:*")
        found += redis_client.keys("celery_animate:job:*:chunk:*")
        return found + (list(scratch.iterdir()) if store == "file" else [])

    wait_until(lambda: not leftovers(), message="frames and params to be deleted", show=leftovers)


def test_generator_of_shuffled_indexed_params(use_cluster, tmp_path):
    params = bar_params(40)
    order = list(range(40))
    random.Random(7).shuffle(order)

    def loader():  # like a parallel data loader: frames arrive in any order
        for i in order:
            yield IndexedFrameParams(i, params[i])

    BarCode().make_video(tmp_path / "shuffled.mp4", loader(), fps=10, num_workers=2,
                         video_quality=10, disable_progress_bar=True, preload_factor=3)
    assert_video(tmp_path / "shuffled.mp4", serial_frames(BarCode(), params))


def test_submit_then_follow_from_another_process(use_cluster, tmp_path, redis_client):
    params = bar_params(20)
    job = BarCode(tag="submit").submit(tmp_path / "submitted.mp4", params, fps=10, video_quality=10)
    assert len(job.id) == 32
    # Jobs are followed through their record: the client listens to no chunk's result.
    assert redis_client.pubsub_channels("celery-task-meta-*") == []
    code = ("import json, sys; from celery_animate import RenderJob; "
            "r = RenderJob(sys.argv[1]).wait(timeout=120); print(json.dumps(r.__dict__))")
    out = subprocess.run([sys.executable, "-c", code, job.id], env=use_cluster.env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["output"] == str(tmp_path / "submitted.mp4") and result["n_frames"] == 20
    progress = job.progress()
    assert (progress.state, progress.rendered, progress.encoded) == ("done", 20, 20)
    stats = job.stats()
    assert stats["render"] > 0 and stats["encode"] > 0 and stats["store_put"] > 0
    assert stats["queue_wait"] >= 0 and stats["encoder_peak_rss_mb"] > 10
    assert_video(tmp_path / "submitted.mp4", serial_frames(BarCode(), params))


def test_setup_runs_once_per_worker_process(use_cluster, tmp_path):
    def setups(tag):
        counts = {}
        for log in use_cluster.setup_log.iterdir():
            if Path(f"/proc/{log.name}").exists():  # pool processes killed by earlier tests are gone
                counts[log.name] = log.read_text().splitlines().count(f"BarCode:{tag}")
        return {pid: n for pid, n in counts.items() if n}

    # 48 frames in 16 chunks: each of the 2 render processes takes several chunks.
    for attempt in range(2):
        BarCode(tag="count").make_video(tmp_path / f"count{attempt}.mp4", bar_params(48), fps=10,
                                        num_workers=2, preload_factor=8, disable_progress_bar=True)
        per_process = setups("count")
        assert 1 <= len(per_process) <= 2 and set(per_process.values()) == {1}, per_process
    # BarCode() is pre-warmed by CELERY_ANIMATE_PREWARM at process start: once per
    # process, and a job using it adds no setup() at all.
    before = setups("")
    # The 2 render processes; the encode worker's process never sets up a figure.
    assert len(before) == 2 and set(before.values()) == {1}, before
    BarCode().make_video(tmp_path / "warm.mp4", bar_params(24), fps=10, num_workers=2,
                         disable_progress_bar=True)
    assert setups("") == before


def test_user_exception_reaches_wait_with_type_and_traceback(use_cluster, tmp_path, redis_client):
    job = BarCode(tag="fail", fail_at=5).submit(tmp_path / "fail.mp4", bar_params(30), fps=10)
    with pytest.raises(RenderFailed) as info:
        job.wait(timeout=120)
    assert info.value.exc_type == "ZeroDivisionError"
    assert info.value.exc_message == "boom at frame 5 (raised by update() for frame 5)"
    assert "in update" in info.value.remote_traceback
    assert not (tmp_path / "fail.mp4").exists()
    # The streaming encoder stops at its next poll and removes its temporary file.
    wait_until(lambda: list(tmp_path.iterdir()) == [], message="the encoder's temporary file to go",
               show=lambda: list(tmp_path.iterdir()))


def test_setup_must_return_a_figure(use_cluster, tmp_path):
    job = NotAFigure().submit(tmp_path / "nf.mp4", [0, 1], fps=10)
    with pytest.raises(RenderFailed, match=r"setup\(\) must return the matplotlib Figure"):
        job.wait(timeout=60)


def test_bad_input_is_refused_before_enqueueing(use_cluster, tmp_path, redis_client):
    # Let earlier tests' jobs settle first, so their keys do not come and go meanwhile.
    queues = [f"{queue}{level}" for queue in ("render", "gpu")
              for level in ["", *(f":{n}" for n in range(1, 10))]]  # one list per priority
    wait_until(lambda: not redis_client.keys("celery_animate:job:*:lease")
               and not redis_client.keys("celery_animate:job:*:chunk:*")
               and not redis_client.exists("unacked", *queues), message="earlier jobs to settle")
    before = set(redis_client.keys("*"))
    anim = BarCode()
    with pytest.raises(ValueError, match="fps must be a positive number"):
        anim.submit(tmp_path / "x.mp4", [1], fps=0)
    with pytest.raises(ValueError, match="video_quality"):
        anim.submit(tmp_path / "x.mp4", [1], fps=1, video_quality=60)
    with pytest.raises(ValueError, match="video_mode"):
        anim.submit(tmp_path / "x.mp4", [1], fps=1, video_mode="fast")
    with pytest.raises(TypeError, match=r"params of frame 2: value\['f'\] is a builtins.builtin_function"):
        anim.submit(tmp_path / "x.mp4", [{"f": 1}, {"f": 2}, {"f": len}], fps=1)
    with pytest.raises(ValueError, match="appears twice"):
        anim.submit(tmp_path / "x.mp4", [IndexedFrameParams(1, 0), IndexedFrameParams(1, 0)], fps=1)
    with pytest.raises(ValueError, match="empty"):
        anim.submit(tmp_path / "x.mp4", iter(()), fps=1)
    with pytest.raises(ValueError, match="n_frames must be a positive int"):
        anim.submit(tmp_path / "x.mp4", [1], fps=1, n_frames=-2)
    with pytest.raises(ValueError, match="n_frames is 5 but param_by_frame has only 3 frames"):
        anim.submit(tmp_path / "x.mp4", (p for p in bar_params(3)), fps=1, n_frames=5)
    with pytest.raises(ValueError, match="2 are missing: 2-3"):
        anim.submit(tmp_path / "x.mp4", [IndexedFrameParams(i, {}) for i in (0, 1, 4)], fps=1)
    anim.unpicklable = {1, 2}
    with pytest.raises(TypeError, match=r"attribute of BarCode: value\['unpicklable'\] is a builtins.set"):
        anim.submit(tmp_path / "x.mp4", [1], fps=1)
    assert set(redis_client.keys("*")) == before  # nothing staged, nothing enqueued


class MainLike(BarCode):
    pass


def test_main_module_class_is_refused_on_a_remote_cluster(use_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(MainLike, "__module__", "__main__")
    with pytest.raises(ConfigurationError, match="defined in the script being run"):
        MainLike().submit(tmp_path / "m.mp4", [1], fps=1)


def test_unknown_job_id(use_cluster):
    from celery_animate import JobNotFound

    with pytest.raises(JobNotFound):
        RenderJob("0" * 32).progress()


def test_numpy_params_reach_update(use_cluster, tmp_path):
    params = [{"y": np.full(50, v, dtype=np.float16)} for v in np.linspace(-0.9, 0.9, 8)]
    BarCode().make_video(tmp_path / "np.mp4", params, fps=8, num_workers=2, video_quality=10,
                         disable_progress_bar=True)
    assert_video(tmp_path / "np.mp4", serial_frames(BarCode(), params))


def test_cancel_stops_the_job_and_deletes_its_frames(use_cluster, tmp_path, redis_client):
    job = BarCode(tag="cancel").submit(tmp_path / "cancel.mp4", bar_params(200), fps=10,
                                        num_workers=2, preload_factor=10)
    deadline = time.monotonic() + 60
    while job.progress().rendered < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.cancel() is True
    with pytest.raises(JobCancelled):
        job.wait(timeout=60)
    # Chunks still queued are skipped; the chord's callback then deletes what was stored.
    deadline = time.monotonic() + 60
    while redis_client.keys(f"celery_animate:frame:{job.id}:*") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_client.keys(f"celery_animate:frame:{job.id}:*")
    assert job.progress().rendered < 200
    wait_until(lambda: list(tmp_path.iterdir()) == [], message="the encoder's temporary file to go",
               show=lambda: list(tmp_path.iterdir()))


def test_enqueue_only_process_needs_no_encoder(use_cluster, tmp_path):
    """A web app that submits and follows jobs never imports pvio or torch."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from animators import BarCode, bar_params; "
        "job = BarCode().submit(sys.argv[1], bar_params(6), fps=6); job.wait(timeout=120); "
        "print(sorted(m for m in ('pvio', 'torch', 'imageio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "light.mp4"),
                          str(Path(__file__).parent)], env=use_cluster.env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert len(decode(tmp_path / "light.mp4")) == 6


def test_progress_bars_follow_rendering_and_encoding(use_cluster, tmp_path, capsys):
    BarCode().make_video(tmp_path / "bars.mp4", bar_params(16), fps=8, num_workers=2,
                         disable_progress_bar=False)
    err = capsys.readouterr().err
    assert "Rendering frames: 100%" in err and "16/16" in err
    assert "Encoding video: 100%" in err


def test_the_poster_frame_is_there_while_the_job_runs(use_cluster, tmp_path, redis_client):
    import io

    from animators import Slow
    from PIL import Image

    from celery_animate.render.grab import poster_png

    params = bar_params(30)
    job = Slow(0.1).submit(tmp_path / "poster.mp4", params, fps=10, num_workers=2, preload_factor=2)
    wait_until(lambda: job.poster() is not None, message="the poster frame")
    assert job.progress().state in ("queued", "rendering", "encoding")  # the video is not made yet
    poster = job.poster()
    first = serial_frames(BarCode(), params[:1])[0]
    assert poster == poster_png(first)
    assert Image.open(io.BytesIO(poster)).size == (256, 128)  # already under 320 pixels a side
    job.wait(timeout=120)
    # What the record holds is input from a stranger: anything but a PNG is not a poster.
    redis_client.hset(f"celery_animate:job:{job.id}", "poster", b"<script>alert(1)</script>")
    assert job.poster() is None
