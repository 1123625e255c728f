"""What the broker lets in: no pickle, no unlisted imports, private embedded Redis, TLS, output roots."""

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from animators import BarCode, bar_params
from helpers import assert_video, serial_frames
from workers import WorkerSpec, private_cluster

from celery_animate import AnimatorNotAllowed, ConfigurationError, RenderFailed, RenderJob
from celery_animate.client.embedded.redis_server import RedisServer, free_port
from celery_animate.connection import job_redis
from celery_animate.job import lifecycle
from celery_animate.job.messages import send_chord
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.render.loading import pack_attrs
from celery_animate.worker.app import RENDER_TASK, app_for


class Exploit:
    """Unpickling this runs a command: what a pickle-accepting worker would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.cluster
def test_pickled_message_is_refused_not_executed(cluster, tmp_path):
    marker = tmp_path / "pickle-ran"
    app_for(cluster.settings).send_task(RENDER_TASK, args=(Exploit(marker),), queue="render",
                                        serializer="pickle")
    log = cluster.logs[0]
    deadline = time.monotonic() + 30
    while "application/x-python-serialize" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Refusing to deserialize untrusted content of type pickle" in log.read_text()
    assert not marker.exists()


@pytest.mark.cluster
def test_animator_outside_the_allowlist_is_refused_before_import(cluster, tmp_path):
    """A message naming a module the workers do not allow fails the job; the module is never imported."""
    settings = cluster.settings
    record = JobRecord(job_redis(settings), uuid.uuid4().hex)
    record.stage_chunk(0, b"\x91\x92\x00\x80", ttl=60)  # [(0, {})] in msgpack
    spec = JobSpec("evil_module:Evil", pack_attrs(BarCode()), str(tmp_path / "evil.mp4"), 1, 1,
                   RenderOptions(fps=1))
    lifecycle.create(record, spec)
    send_chord(app_for(settings), settings, record.job_id, 1)
    with pytest.raises(RenderFailed) as info:
        RenderJob(record.job_id, settings).wait(timeout=60)
    assert info.value.exc_type == "celery_animate.errors.AnimatorNotAllowed"
    assert "'evil_module:Evil' is not in CELERY_ANIMATE_ALLOWED_ANIMATORS" in info.value.exc_message
    assert not os.path.exists(cluster.env["CA_TEST_EVIL_MARKER"])


@pytest.mark.cluster
def test_client_with_an_allowlist_refuses_before_enqueueing(use_cluster, tmp_path):
    settings = replace(use_cluster.settings, allowed_animators=("examples",))
    with pytest.raises(AnimatorNotAllowed, match="'animators:BarCode' is not in"):
        BarCode().submit(tmp_path / "x.mp4", [1], fps=1, settings=settings)


def test_embedded_redis_is_private():
    with RedisServer() as server:
        assert len(server.password) >= 24
        anonymous = redis.Redis(host="127.0.0.1", port=server.port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        client = redis.Redis.from_url(server.url)
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
        # The password is not on any command line.
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                assert server.password.encode() not in cmdline
    assert RedisServer().password != RedisServer().password


@pytest.mark.cluster
def test_job_ids_are_random_and_frames_are_per_job(use_cluster, tmp_path):
    jobs = [BarCode().submit(tmp_path / f"{k}.mp4", bar_params(3), fps=3) for k in range(3)]
    assert len({job.id for job in jobs}) == 3 and all(len(job.id) == 32 for job in jobs)
    for job in jobs:
        job.wait(timeout=60)


@pytest.mark.cluster
def test_output_paths(use_cluster, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="is not a writable directory"):
        BarCode().submit(blocker / "x.mp4", [1], fps=1)
    with pytest.raises(ValueError, match="is a directory"):
        BarCode().submit(tmp_path, [1], fps=1)
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("CELERY_ANIMATE_OUTPUT_ROOT", str(root))
    for escape in ["../outside.mp4", "/etc/passwd", "a/../../b.mp4"]:
        with pytest.raises(PermissionError, match="outside CELERY_ANIMATE_OUTPUT_ROOT"):
            BarCode().submit(escape, [1], fps=1)


@dataclass(frozen=True)
class TLSRedis:
    """What :func:`workers.private_cluster` needs of a server: its URL."""

    url: str


@contextlib.contextmanager
def _tls_redis(tmp_path: Path) -> Iterator[TLSRedis]:
    """A TLS-only redis-server with a password, answering, and trusting the CA that signed its
    certificate; stopped on exit. ``redis.ConnectionError`` if it does not answer within 10 s."""
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "san.ext", "-out", "server.crt")
    port, password = free_port(), uuid.uuid4().hex
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--requirepass", password,
         "--save", "", "--appendonly", "no"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = (f"rediss://:{password}@127.0.0.1:{port}/0?ssl_cert_reqs=required"
           f"&ssl_ca_certs={tmp_path / 'ca.crt'}")
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield TLSRedis(url)
    finally:
        server.terminate()
        server.wait()


@pytest.mark.skipif(not shutil.which("redis-server") or not shutil.which("openssl"),
                    reason="needs redis-server built with TLS and openssl")
def test_rediss_broker_with_password(tmp_path):
    with _tls_redis(tmp_path) as server, \
            private_cluster(tmp_path, [WorkerSpec("render,gpu", "tls")], server=server) as cluster:
        params = bar_params(5)
        job = BarCode().submit(tmp_path / "tls.mp4", params, fps=5, video_quality=10,
                               settings=cluster.settings)
        job.wait(timeout=120)
        assert_video(tmp_path / "tls.mp4", serial_frames(BarCode(), params))


def test_submit_without_a_cluster_says_how_to_get_one(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("CELERY_"):
            monkeypatch.delenv(key)
    with pytest.raises(ConfigurationError, match="set CELERY_BROKER_URL"):
        BarCode().submit(tmp_path / "x.mp4", [1], fps=1)
