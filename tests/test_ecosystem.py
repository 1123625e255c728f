"""The Celery ecosystem around the pipeline: beat, Flower, and the operations commands."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from animators import BarCode, Slow, bar_params
from helpers import decode, wait_until
from workers import ROOT, stop

from celery_animate.client.embedded.redis_server import free_port
from celery_animate.worker.tasks.periodic import prune

pytestmark = pytest.mark.cluster


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "celery_animate.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_beat_renders_the_dashboard_periodically_and_keeps_the_newest(cluster, tmp_path):
    out = tmp_path / "dashboards"
    env = {**cluster.env, "CELERY_ANIMATE_BEAT_SCHEDULE": "config.beat_schedule",
           "CELERY_ANIMATE_DASHBOARD_EVERY": "1.5", "CELERY_ANIMATE_DASHBOARD_FRAMES": "6",
           "CELERY_ANIMATE_DASHBOARD_DIR": str(out), "CELERY_ANIMATE_DASHBOARD_KEEP": "2"}
    log = tmp_path / "beat.log"
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_animate", "beat", "-S", "celery.beat:Scheduler",
         "--loglevel=INFO"], env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: log.read_text().count("Sending due task metrics-dashboard") >= 4,
                   timeout=60, message="beat to send four renders", show=log.read_text)
    finally:
        stop(beat)
    wait_until(lambda: len(list(out.glob("MetricsDashboard-*.mp4"))) >= 2, timeout=60,
               message="dashboards to be written")
    time.sleep(3)  # the last render may still be finishing
    videos = sorted(out.glob("MetricsDashboard-*.mp4"))
    assert 2 <= len(videos) <= 3  # keep=2, plus at most the one written after the last prune
    for video in videos:
        frames = decode(video)
        assert len(frames) == 6 and frames[0].shape == (464, 800, 3)


def test_prune_keeps_the_newest(tmp_path):
    for stamp in ["20260101T000000Z", "20260101T010000Z", "20260101T020000Z"]:
        (tmp_path / f"Dash-{stamp}.mp4").write_bytes(b"")
    (tmp_path / "other.mp4").write_bytes(b"")
    prune(tmp_path, "Dash", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dash-20260101T020000Z.mp4", "other.mp4"]


def test_flower_shows_the_jobs_tasks(cluster, tmp_path):
    port = free_port()
    env = {**cluster.env, "FLOWER_UNAUTHENTICATED_API": "true"}
    log = tmp_path / "flower.log"
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_animate", "flower", f"--port={port}",
         "--address=127.0.0.1"], env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def api(path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def answers():
        try:
            api("/api/workers?refresh=1")
            return True
        except OSError:
            return False

    try:
        wait_until(answers, timeout=60, message="Flower to answer", show=log.read_text)
        time.sleep(1)  # let Flower's event receiver subscribe before the job runs
        job = BarCode(tag="flower").submit(tmp_path / "f.mp4", bar_params(8), fps=8,
                                            settings=cluster.settings)
        job.wait(timeout=60)

        def tasks():
            return {t["name"]: t["state"] for t in api("/api/tasks").values()
                    if str(t.get("args", "")).find(job.id) >= 0}

        wait_until(lambda: {"celery_animate.render_chunk", "celery_animate.encode_video",
                            "celery_animate.stream_video"} <= set(tasks()),
                   timeout=30, message="the job's tasks in Flower", show=tasks)
        # The chord's callback may still be on its way when the streaming encoder finished the job.
        wait_until(lambda: set(tasks().values()) == {"SUCCESS"}, timeout=30,
                   message="every task of the job to succeed", show=tasks)
    finally:
        stop(flower)


def test_jobs_cancel_and_doctor_commands(cluster, tmp_path):
    # 80 s of rendering: still running after two CLI calls on a slow machine; cancel ends it.
    job = Slow(0.2).submit(tmp_path / "slow.mp4", bar_params(400), fps=5, settings=cluster.settings)
    listing = cli("jobs", env=cluster.env)
    assert listing.returncode == 0 and job.id in listing.stdout
    cancelled = cli("cancel", job.id, env=cluster.env)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{job.id} cancelled"
    assert cli("cancel", job.id, env=cluster.env).returncode == 1  # already ended
    assert f"{job.id}  cancelled" in cli("jobs", env=cluster.env).stdout

    doctor = cli("doctor", env=cluster.env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    assert [line.split(":")[0].split(maxsplit=1)[1] for line in lines] == [
        "broker", "result backend", "frame store", "workers", "encoder"]
    assert "render: 1 worker(s); gpu: 1 worker(s)" in doctor.stdout
    assert "no CUDA device on the encode worker: videos are encoded with libx264" in doctor.stdout

    broken = {**cluster.env, "CELERY_ANIMATE_ENCODE_QUEUE": "nobody-listens"}
    doctor = cli("doctor", env=broken)
    assert doctor.returncode == 1
    assert "PROBLEM  workers: no worker consumes queue(s) nobody-listens" in doctor.stdout


def test_compose_file_is_valid():
    """`docker-compose config` (Compose v1) parses and validates the file; no engine is needed."""
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs it with apt-get")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    proc = subprocess.run([exe, "-f", "docker-compose.yml", "config"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for service in ["redis:", "render:", "encode:", "beat:", "flower:", "web:"]:
        assert f"\n  {service}" in proc.stdout
    encode = proc.stdout[proc.stdout.index("\n  encode:"):proc.stdout.index("\n  flower:")]
    assert "- capabilities:\n            - gpu\n            - video\n            count: 1\n" \
           "            driver: nvidia" in encode
    services = yaml.safe_load(proc.stdout)["services"]
    for name in ["redis", "render", "encode", "flower", "web"]:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ["render", "encode"]:  # a worker answers a ping under its own node name
        assert f"inspect ping -d {name}@$" in " ".join(services[name]["healthcheck"]["test"])
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["web"]["command"][0] == "gunicorn"
    assert "examples.webapp.app:app" in services["web"]["command"]
