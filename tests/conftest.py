"""Fixtures that start real parts: a private redis-server and `celery worker` processes (prefork).

Nothing here talks to the machine's own Redis or RabbitMQ: every server is
started on a free loopback port with its own password, and stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from celery_animate import Settings
from celery_animate.cluster import RedisServer
from celery_animate.pipeline import app_for

TESTS = Path(__file__).parent
ROOT = TESTS.parent


@dataclass
class Cluster:
    settings: Settings
    env: dict[str, str]
    setup_log: Path
    logs: list[Path]

    def worker_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.logs if p.exists())


def cluster_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "CA_TEST_"))}
    env.update(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url,
               PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), **extra)
    return env


def start_worker(env: dict[str, str], queue: str, concurrency: int, name: str,
                 log: Path) -> subprocess.Popen:
    """A real `celery worker` process (prefork) in its own session, so its pool can be killed with it."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_animate", "worker", "--pool=prefork",
         f"--concurrency={concurrency}", f"--queues={queue}", f"--hostname={name}@%h",
         "--loglevel=INFO", "--without-gossip", "--without-mingle"],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_workers(settings: Settings, names: list[str], timeout: float = 60) -> None:
    app = app_for(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        seen = {host.split("@")[0] for reply in replies for host in reply}
        if set(names) <= seen:
            return
    raise RuntimeError(f"workers {names} did not answer a ping within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # pool processes it left behind


@pytest.fixture
def extra_workers(cluster, tmp_path):
    """Start more workers on the test Redis: ``extra_workers(queue, name, **env)``; stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(queue: str, name: str, concurrency: int = 1, **env: str) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        worker = start_worker({**cluster.env, "CA_TEST_SETUP_LOG": "", **env}, queue, concurrency,
                              name, log)
        started.append(worker)
        worker.log = log  # type: ignore[attr-defined]
        wait_for_workers(cluster.settings, [name])
        return worker

    yield start
    for worker in started:
        stop(worker)


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def cluster(redis_server, tmp_path_factory):
    """Two real `celery worker` processes: render (-c 2, prefork) and encode (-c 1)."""
    tmp = tmp_path_factory.mktemp("cluster")
    setup_log = tmp / "setup-log"
    setup_log.mkdir()
    env = cluster_env(redis_server.url, CA_TEST_SETUP_LOG=str(setup_log),
                      CELERY_ANIMATE_PREWARM="animators:BarCode",
                      CELERY_ANIMATE_ALLOWED_ANIMATORS="animators,examples",
                      CA_TEST_EVIL_MARKER=str(tmp / "evil-module-imported"))
    logs = [tmp / "render.log", tmp / "encode.log"]
    workers = [start_worker(env, "render", 2, "render", logs[0]),
               start_worker(env, "gpu", 1, "encode", logs[1])]
    settings = Settings.from_env(env)
    try:
        wait_for_workers(settings, ["render", "encode"])
        yield Cluster(settings, env, setup_log, logs)
    finally:
        for worker in workers:
            stop(worker)


@pytest.fixture
def use_cluster(cluster, monkeypatch):
    """Point make_video()/RenderJob in this process at the test cluster."""
    for key in list(os.environ):
        if key.startswith("CELERY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CELERY_BROKER_URL", cluster.settings.broker_url)
    return cluster


@pytest.fixture
def redis_client(redis_server):
    return redis.Redis.from_url(redis_server.url)
