"""Fixtures that start real parts: a private redis-server and `celery worker` processes (prefork).

Nothing here talks to the machine's own Redis or RabbitMQ: every server is
started on a free loopback port with its own password, and stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from workers import cluster_env, start_worker, stop, wait_for_workers

from celery_animate import Settings
from celery_animate.client.embedded.redis_server import RedisServer


def pytest_collection_modifyitems(items):
    """Everything outside tests/unit starts real processes: `pytest -m "not cluster"` runs the rest."""
    for item in items:
        if "unit" not in item.path.parent.parts:
            item.add_marker(pytest.mark.cluster)


@dataclass
class Cluster:
    settings: Settings
    env: dict[str, str]
    setup_log: Path
    logs: list[Path]


@pytest.fixture
def extra_workers(cluster, tmp_path):
    """Start more workers on the test Redis: ``extra_workers(queue, name, **env)``; stopped after the test.

    ``args`` passes more `celery worker` options.
    """
    started: list[subprocess.Popen] = []

    def start(queue: str, name: str, concurrency: int = 1, args: tuple[str, ...] = (),
              **env: str) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        worker = start_worker({**cluster.env, "CA_TEST_SETUP_LOG": "", **env}, queue, concurrency,
                              name, log, args)
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
