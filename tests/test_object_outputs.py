"""Videos written to an object store: a real S3 server (SeaweedFS, tests/s3.py) and real workers.

The workers get the S3 endpoint and keys only through their environment, and
may write only under ``s3://renders/out/`` (and the bucket ``missing-bucket``,
which does not exist). The client fetches the video through a presigned URL
signed with its own environment's keys and decodes it. Every failure (a URL
the workers refuse, wrong keys, a missing bucket, the server going away)
fails the job with a clear error, writes nothing at the URL, leaves an older
object there as it was, and leaves nothing of the job in the staging directory.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from animators import BarCode, bar_params
from helpers import assert_video, serial_frames, wait_until
from s3 import SeaweedS3
from webhooks import Receiver
from workers import SPLIT, WorkerSpec, private_cluster

from celery_animate import OutputPathRefused, RenderFailed, Settings
from celery_animate.client.render_job import RenderJob
from celery_animate.outputs import object_store, open_output
from celery_animate.paths import output_path
from celery_animate.stores import open_frame_store

pytestmark = pytest.mark.cluster

BUCKET = "renders"
ROOTS = f"s3://{BUCKET}/out/,s3://missing-bucket/"
#: Paces the encode at the video's frame rate (ffmpeg's realtime filter).
SLOW_ENCODE = ["-vf", "realtime"]
OLD_OBJECT = b"an older video that a failed job must leave as it is"
SEGMENTS = {"CELERY_ANIMATE_SEGMENT_FRAMES": "16", "CELERY_ANIMATE_WINDOW_FRAMES": "48"}


def worker_env(server: SeaweedS3, staging: Path, **overrides: str) -> dict[str, str]:
    return {"CELERY_ANIMATE_OUTPUT_ROOT": ROOTS, "CELERY_ANIMATE_STAGING_DIR": str(staging),
            **SEGMENTS, **server.env(**overrides)}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        server.create_bucket(BUCKET)
        server.create_bucket("other")
        yield server


@pytest.fixture(scope="module")
def staging(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("staging")


@pytest.fixture(scope="module")
def cluster(s3, staging, tmp_path_factory):
    with private_cluster(tmp_path_factory.mktemp("s3-cluster"), SPLIT,
                         env=worker_env(s3, staging)) as cluster:
        yield cluster


def staged_files(staging: Path, job_id: str) -> list[Path]:
    """What of the job lies in the staging directory (its temporary files are named after it)."""
    return [path for path in staging.rglob("*") if job_id[:12] in path.name]


def assert_nothing_staged(staging: Path, job: RenderJob) -> None:
    wait_until(lambda: not staged_files(staging, job.id), timeout=15,
               message=f"job {job.id} to leave nothing in {staging}",
               show=lambda: staged_files(staging, job.id))


def client_job(job: RenderJob, s3: SeaweedS3, cluster, monkeypatch) -> RenderJob:
    """The job as a client whose own environment holds the broker and the S3 keys sees it."""
    for name, value in {**s3.env(), "CELERY_BROKER_URL": cluster.server.url,
                        "CELERY_RESULT_BACKEND": cluster.server.url}.items():
        monkeypatch.setenv(name, value)
    return RenderJob(job.id)


@pytest.mark.parametrize("n_frames", [12, 40], ids=["one-segment", "three-segments"])
def test_a_video_rendered_to_s3_is_fetched_whole_through_its_presigned_url(
        s3, cluster, staging, tmp_path, monkeypatch, n_frames):
    url = f"s3://{BUCKET}/out/prefix/v{n_frames}.mp4"
    params = bar_params(n_frames)
    job = BarCode(tag="s3").submit(url, params, fps=10, video_quality=10, settings=cluster.settings)
    result = job.wait(timeout=120)
    assert result.output == url and result.n_frames == n_frames
    assert s3.keys(BUCKET).count(f"out/prefix/v{n_frames}.mp4") == 1

    signed = client_job(job, s3, cluster, monkeypatch).url(expires=600)
    assert signed.startswith(s3.endpoint + f"/{BUCKET}/out/prefix/v{n_frames}.mp4?")
    assert "X-Amz-Signature=" in signed and "X-Amz-Expires=600" in signed
    downloaded = tmp_path / "downloaded.mp4"
    with urllib.request.urlopen(signed, timeout=30) as response:
        downloaded.write_bytes(response.read())
    assert downloaded.stat().st_size == result.size_bytes
    assert_video(downloaded, serial_frames(BarCode(), params))
    assert_nothing_staged(staging, job)


def test_three_machines_sharing_only_redis_and_s3_render_a_segmented_job(s3, tmp_path, monkeypatch):
    # A render node and two encode nodes, each with a temporary and a staging directory of its
    # own (as on three hosts): they share the Redis and the S3 server, nothing else. Five
    # segments, paced so that both encoders take some; the joiner reads the other's from the
    # store. The webhook's announcement carries a presigned URL of its own, signed by a worker.
    machines = {name: tmp_path / name for name in ("render", "enc-1", "enc-2")}
    specs = []
    for name, folder in machines.items():
        (folder / "tmp").mkdir(parents=True)
        env = {"TMPDIR": str(folder / "tmp"), "CELERY_ANIMATE_STAGING_DIR": str(folder / "staging")}
        specs.append(WorkerSpec("render" if name == "render" else "gpu", name,
                                2 if name == "render" else 1, env=env))
    receiver = Receiver()
    env = {**worker_env(s3, tmp_path / "unused"), "CELERY_ANIMATE_WINDOW_FRAMES": "48",
           "CELERY_ANIMATE_WEBHOOK_ALLOW": receiver.url, "CELERY_ANIMATE_WEBHOOK_SECRET": "s3cret"}
    try:
        with private_cluster(tmp_path, specs, env=env) as cluster:
            url = f"s3://{BUCKET}/out/three/seg.mp4"
            params = bar_params(80)  # five segments of 16 frames
            job = BarCode(tag="three").submit(url, params, fps=10, video_quality=10,
                                              video_extra_ffmpeg_params=SLOW_ENCODE,
                                              settings=cluster.settings,
                                              webhook=receiver.url + "three")
            result = job.wait(timeout=180)
            assert result.output == url and result.n_frames == 80
            for name in ("enc-1", "enc-2"):  # both encoders took segments, each on its own disk
                wrote = [line for line in cluster.logs[name].read_text(errors="replace").splitlines()
                         if f".{job.id[:12]}.s" in line and "wrote" in line]
                assert wrote and all(str(machines[name]) in line for line in wrote), (name, wrote)

            signed = client_job(job, s3, cluster, monkeypatch).url(expires=600)
            downloaded = tmp_path / "downloaded.mp4"
            with urllib.request.urlopen(signed, timeout=30) as response:
                downloaded.write_bytes(response.read())
            assert_video(downloaded, serial_frames(BarCode(), params))

            wait_until(lambda: receiver.to("/three"), timeout=30, message="the webhook",
                       show=job.webhook_status)
            [(_, _, body)] = receiver.to("/three")
            end = json.loads(body)
            assert end["state"] == "done" and end["output"] == url and end["n_frames"] == 80
            with urllib.request.urlopen(end["url"], timeout=30) as response:
                assert response.read() == downloaded.read_bytes()

            store = open_frame_store(cluster.settings)

            def leftovers() -> list:
                stored = [k for k in range(5) if store.get_segment(job.id, k) is not None]
                files = [p for folder in machines.values() for p in folder.rglob("*")
                         if job.id[:12] in str(p)]
                return stored + files + [k for k in s3.keys(BUCKET) if k.startswith("out/three/")
                                         and k != "out/three/seg.mp4"]

            wait_until(lambda: not leftovers(), timeout=15, message="the job to leave nothing",
                       show=leftovers)
    finally:
        receiver.close()


@pytest.mark.parametrize("url", [
    "s3://other/out/v.mp4",            # another bucket
    f"s3://{BUCKET}/elsewhere/v.mp4",  # the bucket, outside the root's prefix
    f"gs://{BUCKET}/out/v.mp4",        # another scheme
])
def test_a_url_outside_the_roots_is_refused_at_submit_and_by_the_worker(s3, cluster, staging,
                                                                         url):
    before = {bucket: s3.keys(bucket) for bucket in (BUCKET, "other")}
    # A client with the workers' settings refuses it before anything is enqueued.
    with pytest.raises(OutputPathRefused, match="outside CELERY_ANIMATE_OUTPUT_ROOT"):
        BarCode(tag="refused").submit(url, bar_params(4), fps=10, settings=cluster.settings)
    # One without roots sends it; the encode worker refuses it before writing anything.
    lax = replace(cluster.settings, output_root=None)
    job = BarCode(tag="refused").submit(url, bar_params(4), fps=10, settings=lax)
    with pytest.raises(RenderFailed, match=r"OutputPathRefused.*outside CELERY_ANIMATE_OUTPUT_ROOT"):
        job.wait(timeout=60)
    assert {bucket: s3.keys(bucket) for bucket in (BUCKET, "other")} == before
    assert not staged_files(staging, job.id)


@pytest.mark.parametrize("url", [f"s3://{BUCKET}/out/../escape.mp4", f"s3://{BUCKET}/out//v.mp4",
                                 f"s3://{BUCKET}/out/%2e%2e/v.mp4", f"s3://{BUCKET}/out/a\\v.mp4"])
def test_a_key_that_could_leave_its_prefix_is_refused_by_any_client(s3, cluster, url):
    before = s3.keys(BUCKET)
    lax = replace(cluster.settings, output_root=None)
    with pytest.raises(OutputPathRefused):
        BarCode(tag="tricks").submit(url, bar_params(4), fps=10, settings=lax)
    assert s3.keys(BUCKET) == before


def test_wrong_credentials_fail_the_job_naming_the_bucket_and_what_to_check(s3, make_cluster,
                                                                            staging):
    cluster = make_cluster(SPLIT, env=worker_env(s3, staging, AWS_SECRET_ACCESS_KEY="wrong"))
    url = f"s3://{BUCKET}/out/denied.mp4"
    job = BarCode(tag="denied").submit(url, bar_params(6), fps=10, settings=cluster.settings)
    with pytest.raises(RenderFailed, match="OutputAccessDenied") as info:
        job.wait(timeout=60)
    assert f"bucket {BUCKET!r}" in info.value.exc_message
    assert "AWS_SECRET_ACCESS_KEY" in info.value.exc_message
    assert s3.get(BUCKET, "out/denied.mp4") is None
    assert_nothing_staged(staging, job)


def test_a_missing_bucket_fails_the_job_clearly(s3, cluster, staging):
    job = BarCode(tag="nobucket").submit("s3://missing-bucket/v.mp4", bar_params(6), fps=10,
                                         settings=cluster.settings)
    with pytest.raises(RenderFailed, match=r"OutputBucketMissing.*'missing-bucket' does not exist"):
        job.wait(timeout=60)
    assert_nothing_staged(staging, job)


def test_an_old_object_survives_a_failed_job(s3, cluster, staging):
    s3.put(BUCKET, "out/kept.mp4", OLD_OBJECT)
    job = BarCode(tag="fails", fail_at=3).submit(f"s3://{BUCKET}/out/kept.mp4", bar_params(8),
                                                 fps=10, settings=cluster.settings)
    with pytest.raises(RenderFailed, match="boom at frame 3"):
        job.wait(timeout=60)
    assert s3.get(BUCKET, "out/kept.mp4") == OLD_OBJECT
    assert_nothing_staged(staging, job)


def test_the_server_stopping_during_the_upload_fails_the_job_and_writes_nothing(
        make_cluster, tmp_path):
    with SeaweedS3(tmp_path / "seaweed") as server:
        server.create_bucket(BUCKET)
        server.put(BUCKET, "out/old.mp4", OLD_OBJECT)
        staging = tmp_path / "staging"
        cluster = make_cluster(SPLIT, env=worker_env(server, staging))

        def stop_once_encoding() -> None:
            wait_until(lambda: any(p.suffix == ".mp4" for p in staging.rglob("*.partial.mp4")),
                       timeout=60, message="the encoder to be writing its staged file")
            server.kill()

        stopper = threading.Thread(target=stop_once_encoding, daemon=True)
        stopper.start()
        # 3 s of encoding at the video's pace: the server is gone before the upload.
        job = BarCode(tag="gone").submit(f"s3://{BUCKET}/out/old.mp4", bar_params(12), fps=4,
                                         video_extra_ffmpeg_params=SLOW_ENCODE,
                                         settings=cluster.settings)
        with pytest.raises(RenderFailed, match=r"OutputUploadFailed.*Nothing was written"):
            job.wait(timeout=120)
        stopper.join(5)
        assert_nothing_staged(staging, job)
        server.start()  # the same data: what it holds at the URL is still the old object
        assert server.get(BUCKET, "out/old.mp4") == OLD_OBJECT
        assert server.keys(BUCKET) == ["out/old.mp4"]


def test_a_big_video_is_uploaded_in_parts_and_appears_only_whole(s3, tmp_path, monkeypatch):
    # The threshold lowered so that 13 MiB go as a multipart upload of three parts.
    monkeypatch.setattr(object_store, "MULTIPART_BYTES", 1 << 20)
    monkeypatch.setattr(object_store, "PART_BYTES", 5 << 20)
    settings = Settings.from_env({**s3.env(), "CELERY_ANIMATE_STAGING_DIR": str(tmp_path)})
    output = open_output(output_path(f"s3://{BUCKET}/out/big.mp4", settings))
    tmp = output.temporary("e" * 32, 1)
    data = os.urandom(13 << 20)
    tmp.write_bytes(data)
    assert output.publish(tmp) == len(data)
    assert s3.get(BUCKET, "out/big.mp4") == data and not tmp.exists()
