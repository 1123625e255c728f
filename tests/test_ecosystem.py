"""The Celery ecosystem around the pipeline: beat, Flower, and the operations commands."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import obstore
import pytest
import yaml
from animators import BarCode, Slow, bar_params
from helpers import decode, wait_until
from s3 import weed_binary
from workers import ROOT, stop

from celery_animate import Settings
from celery_animate.announcement import check_webhook_url
from celery_animate.client.embedded.redis_server import free_port
from celery_animate.outputs import presigned_url
from celery_animate.outputs.object_store import open_store
from celery_animate.paths import parse_object_url
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


COMPOSE_OVERRIDE = "docker-compose.shared-volume.yml"
#: The services built from this repository, which read the env file.
APP_SERVICES = ("render", "encode", "flower", "web")


def compose_config(*files: str) -> dict:
    """What ``docker-compose config`` (Compose v1) makes of ``files``: parsed, validated and
    merged, with the env file and ${...} defaults filled in. No engine is needed."""
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs it with apt-get")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "AWS_"))}
    proc = subprocess.run([exe, *(arg for f in files for arg in ("-f", f)), "config"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def _mounts(service: dict) -> list[tuple[str, str]]:
    """``(source, target)`` of a service's volumes, in Compose v1's short or v2's long form."""
    return [(v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2])
            for v in service.get("volumes", [])]


def _ports(service: dict) -> list[str]:
    """``host_ip:published:target`` of a service's published ports, in either form."""
    return [f"{p.get('host_ip', '')}:{p['published']}:{p['target']}" if isinstance(p, dict)
            else p.removesuffix("/tcp") for p in service.get("ports", [])]


def test_compose_file_is_valid():
    """Validates docker-compose.yml: the services, their health checks, and that the workers and
    the web app share only Redis and the object store (SeaweedFS), with one set of keys."""
    config = compose_config("docker-compose.yml")
    services = config["services"]
    assert set(services) == {"redis", "s3", "buckets", "render", "encode", "flower", "web"}
    devices = services["encode"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu", "video"]}]
    for name in ["redis", "s3", "render", "encode", "flower", "web"]:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ["render", "encode"]:  # a worker answers a ping under its own node name
        assert f"inspect ping -d {name}@$" in " ".join(services[name]["healthcheck"]["test"])
    assert services["web"]["command"][0] == "gunicorn"
    assert "examples.webapp.app:app" in services["web"]["command"]

    # The object store: SeaweedFS with an S3 gateway on 8333, published on loopback only, whose
    # admin keys are the env file's; a one-shot creates the bucket once it is healthy.
    s3 = services["s3"]
    assert s3["image"].startswith("chrislusf/seaweedfs:") and s3["command"][:2] == ["server", "-s3"]
    assert "-s3.port=8333" in s3["command"] and "-ip.bind=0.0.0.0" in s3["command"]
    assert "http://127.0.0.1:8333/healthz" in s3["healthcheck"]["test"]
    assert _ports(s3) == ["127.0.0.1:8333:8333"] and _mounts(s3) == [("objects", "/data")]
    buckets = services["buckets"]
    assert buckets["command"] == ["python", "docker/create_buckets.py"]
    assert "COPY docker/create_buckets.py ./docker/" in (ROOT / "docker" / "Dockerfile").read_text()
    assert buckets["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert buckets["restart"] == "no"

    # Every app service waits for Redis and the bucket, mounts no volume, writes to the bucket.
    envs = {name: services[name]["environment"] for name in APP_SERVICES}
    for name in APP_SERVICES:
        assert services[name]["depends_on"] == {
            "redis": {"condition": "service_healthy"},
            "buckets": {"condition": "service_completed_successfully"}}, name
        assert "volumes" not in services[name], f"{name} mounts a volume"
        assert envs[name]["CELERY_ANIMATE_OUTPUT_ROOT"] == "s3://renders/"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CELERY_ANIMATE_WEBHOOK_SECRET"):
            assert envs[name][key] == s3["environment"][key] != "", (name, key)
    assert envs["encode"]["AWS_ENDPOINT_URL"] == envs["render"]["AWS_ENDPOINT_URL"] == "http://s3:8333"
    # The web app presigns for the browser, which reaches the store at its published port.
    web = envs["web"]
    assert web["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert web["CELERY_ANIMATE_WEB_OUTPUT"].startswith(web["CELERY_ANIMATE_OUTPUT_ROOT"])
    # The encode workers may POST each job's end to the web app, at the port it listens on.
    hook = web["CELERY_ANIMATE_WEB_WEBHOOK"]
    assert check_webhook_url(hook, Settings.from_env(envs["encode"]).webhook_allow) == hook
    assert hook.startswith("http://web:8000/") and "0.0.0.0:8000" in services["web"]["command"]


def test_compose_shared_volume_alternative_is_valid():
    """docker-compose.shared-volume.yml puts every video in one `data` volume instead, and adds
    beat, whose periodic renders prune a directory."""
    config = compose_config("docker-compose.yml", COMPOSE_OVERRIDE)
    services = config["services"]
    assert set(services) == {"redis", "s3", "buckets", "render", "encode", "beat", "flower", "web"}
    assert "data" in config["volumes"]
    for name in ["render", "encode", "beat", "web"]:
        assert _mounts(services[name]) == [("data", "/data")], name
        assert services[name]["environment"]["CELERY_ANIMATE_OUTPUT_ROOT"] == "/data/out", name
    assert services["encode"]["environment"]["NVIDIA_DRIVER_CAPABILITIES"]  # merged, not replaced
    assert services["web"]["environment"]["CELERY_ANIMATE_WEB_OUTPUT"] == "/data/out/web"
    beat = services["beat"]
    assert beat["command"][3] == "beat"
    assert beat["environment"]["CELERY_ANIMATE_DASHBOARD_DIR"].startswith("/data/out/")
    assert beat["depends_on"]["redis"]["condition"] == "service_healthy"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def test_compose_object_store_starts_with_its_flags_and_the_env_files_keys(tmp_path):
    """The `s3` service's command and environment, run with the tests' own SeaweedFS (the
    image's entrypoint flags first, free loopback ports after: the last value of a flag wins),
    then the `buckets` one-shot's script with its environment: the bucket is made, twice
    without harm, only the env file's keys get in, and a URL the web app presigns serves."""
    services = compose_config("docker-compose.yml")["services"]
    s3 = services["s3"]
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, port, s3_grpc = _free_ports(8)
    command = [weed_binary(), *s3["command"][:1], f"-dir={tmp_path}", "-volume.max=0",
               "-master.volumeSizeLimitMB=64", *s3["command"][1:],
               "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={master}",
               f"-master.port.grpc={master_grpc}", f"-volume.port={volume}",
               f"-volume.port.grpc={volume_grpc}", f"-filer.port={filer}",
               f"-filer.port.grpc={filer_grpc}", f"-s3.port={port}", f"-s3.port.grpc={s3_grpc}",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
    log = tmp_path / "weed.log"
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "AWS_"))}
    server = subprocess.Popen(command, env={**env, **s3["environment"]}, cwd=tmp_path,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        one_shot = {**env, **services["buckets"]["environment"], "AWS_ENDPOINT_URL": endpoint}
        for _ in range(2):  # a restart of the stack runs it again
            made = subprocess.run([sys.executable, "docker/create_buckets.py", "--timeout", "60"],
                                  env=one_shot, cwd=ROOT, capture_output=True, text=True, timeout=90)
            assert made.returncode == 0, made.stderr + log.read_text(errors="replace")[-2000:]
            assert "bucket 'renders' is ready" in made.stdout
        # Anonymous requests are refused: the env file's keys are the only way in.
        request = urllib.request.Request(f"{endpoint}/renders/web/x.mp4", data=b"x", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
        worker = Settings.from_env({**services["encode"]["environment"], "AWS_ENDPOINT_URL": endpoint})
        store = open_store(parse_object_url("s3://renders/", prefix=True), worker.object_store_env)
        obstore.put(store, "web/x.mp4", b"a video")
        web = Settings.from_env({**services["web"]["environment"], "AWS_ENDPOINT_URL": endpoint})
        with urllib.request.urlopen(presigned_url("s3://renders/web/x.mp4", web, 60),
                                    timeout=10) as response:
            assert response.read() == b"a video"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
