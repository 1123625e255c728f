"""Starting real `celery worker` processes for the tests, and waiting for them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celery_animate import Settings
from celery_animate.client.embedded.redis_server import RedisServer
from celery_animate.worker.app import app_for

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def cluster_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "CA_TEST_"))}
    env.update(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url,
               PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), **extra)
    return env


def start_worker(env: dict[str, str], queue: str, concurrency: int, name: str,
                 log: Path, args: tuple[str, ...] = ()) -> subprocess.Popen:
    """A real `celery worker` process (prefork) in its own session, so its pool can be killed with it.

    ``args`` are more `celery worker` options, e.g. ``("--time-limit=3",)``.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_animate", "worker", "--pool=prefork",
         f"--concurrency={concurrency}", f"--queues={queue}", f"--hostname={name}@%h",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", *args],
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


@contextlib.contextmanager
def private_cluster(log_dir: Path, prefix: str, encode_concurrency: int = 1):
    """A Redis of its own with a render worker (-c 2) and an encode worker: yields (server, settings)."""
    with RedisServer() as server:
        env = cluster_env(server.url)
        names = [f"{prefix}-render", f"{prefix}-encode"]
        workers = [start_worker(env, "render", 2, names[0], log_dir / f"{names[0]}.log"),
                   start_worker(env, "gpu", encode_concurrency, names[1], log_dir / f"{names[1]}.log")]
        settings = Settings.from_env(env)
        try:
            wait_for_workers(settings, names)
            yield server, settings
        finally:
            for worker in workers:
                stop(worker)
