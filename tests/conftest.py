"""Fixtures that start real parts: a private redis-server and `celery worker` processes (prefork).

Nothing here talks to the machine's own Redis or RabbitMQ: every server is
started on a free loopback port with its own password, and stopped at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from workers import SPLIT, PrivateCluster, WorkerSpec, private_cluster

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
    logs: list[Path]  # the render worker's, then the encode worker's
    private: PrivateCluster


@pytest.fixture
def extra_workers(cluster, tmp_path):
    """Start more workers on the test Redis: ``extra_workers(queue, name, **env)``; stopped after the test.

    ``args`` passes more `celery worker` options. The worker's log is ``tmp_path / f"{name}.log"``,
    also its ``log`` attribute.
    """
    # The session cluster's server and environment, with this test's logs and processes.
    workers = dataclasses.replace(cluster.private, logs={}, processes={}, log_dir=tmp_path)

    def start(queue: str, name: str, concurrency: int = 1, args: tuple[str, ...] = (),
              **env: str) -> subprocess.Popen:
        worker = workers.start(WorkerSpec(queue, name, concurrency, {"CA_TEST_SETUP_LOG": "", **env}, args))
        worker.log = workers.logs[name]  # type: ignore[attr-defined]
        return worker

    yield start
    workers.stop_all()


@pytest.fixture
def make_cluster(tmp_path) -> Iterator[Callable[..., PrivateCluster]]:
    """``make_cluster(workers=SPLIT, **options)``: :func:`workers.private_cluster` with its logs in
    ``tmp_path``, for a test that needs a Redis and workers of its own; all stopped after the test."""
    with contextlib.ExitStack() as stack:
        def make(workers: Sequence[WorkerSpec] = SPLIT, **options: Any) -> PrivateCluster:
            return stack.enter_context(private_cluster(tmp_path, workers, **options))

        yield make


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
    env = {"CA_TEST_SETUP_LOG": str(setup_log), "CELERY_ANIMATE_PREWARM": "animators:BarCode",
           "CELERY_ANIMATE_ALLOWED_ANIMATORS": "animators,examples",
           "CA_TEST_EVIL_MARKER": str(tmp / "evil-module-imported")}
    with private_cluster(tmp, SPLIT, env=env, server=redis_server) as private:
        yield Cluster(private.settings, private.env, setup_log,
                      [private.logs[spec.name] for spec in SPLIT], private)


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
