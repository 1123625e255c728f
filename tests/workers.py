"""Real `celery worker` processes (prefork) on a private Redis, for the tests.

:func:`private_cluster` is the one way the tests start them: a Redis of their
own (or one given), the workers a list of :class:`WorkerSpec` names, waited for
before use and killed with their pools afterwards. ``cluster_env``,
``start_worker``, ``wait_for_workers`` and ``stop`` are its building blocks, for
the few tests that need a worker it cannot give (one that never answers a ping,
another app's worker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from celery_animate import Settings
from celery_animate.client.embedded.redis_server import RedisServer
from celery_animate.worker.app import app_for

TESTS = Path(__file__).parent
ROOT = TESTS.parent


@dataclass(frozen=True)
class WorkerSpec:
    """One `celery worker` node: what it consumes, its name and its pool size."""

    queue: str  # "render", "gpu" or "render,gpu"
    name: str  # node name, also the log file's stem
    concurrency: int = 1
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment for this worker only
    args: tuple[str, ...] = ()  # more `celery worker` options, e.g. ("--time-limit=3",)


#: The default layout: a render node with two processes and an encode node with one.
SPLIT = (WorkerSpec("render", "render", 2), WorkerSpec("gpu", "encode", 1))


def cluster_env(url: str, **extra: str) -> dict[str, str]:
    """This process's environment without any CELERY_ or CA_TEST_ setting, pointed at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "CA_TEST_"))}
    env.update(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url,
               PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), **extra)
    return env


def start_worker(env: dict[str, str], queue: str, concurrency: int, name: str,
                 log: Path, args: tuple[str, ...] = ()) -> subprocess.Popen:
    """A real `celery worker` process (prefork) in its own session, so its pool can be killed with it.

    ``args`` are more `celery worker` options, e.g. ``("--time-limit=3",)``. Returns at once:
    the worker is not ready until it answers a ping (:func:`wait_for_workers`).
    """
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_animate", "worker", "--pool=prefork",
         f"--concurrency={concurrency}", f"--queues={queue}", f"--hostname={name}@%h",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", *args],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_workers(settings: Settings, names: Sequence[str], timeout: float = 60) -> None:
    """Return once every node in ``names`` answers a ping; ``RuntimeError`` after ``timeout`` s."""
    app = app_for(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        seen = {host.split("@")[0] for reply in replies for host in reply}
        if set(names) <= seen:
            return
    raise RuntimeError(f"workers {list(names)} did not answer a ping within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a worker (SIGTERM, SIGKILL after 20 s), then kill what is left of its process group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # pool processes it left behind


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


@dataclass
class PrivateCluster:
    """Workers on one Redis; ``start`` adds one, ``stop`` and ``kill`` end one by node name."""

    server: RedisServer
    settings: Settings  # Settings.from_env(env)
    env: dict[str, str]  # the environment every worker got
    logs: dict[str, Path]  # node name -> log file
    processes: dict[str, subprocess.Popen]
    scratch: Path | None  # the scratch directory when frame_store="directory"
    log_dir: Path  # where ``start`` writes the logs of the workers it starts

    def redis(self) -> redis.Redis:
        """A client of the private server (the broker and result backend)."""
        return redis.Redis.from_url(self.server.url)

    def launch(self, spec: WorkerSpec) -> subprocess.Popen:
        """Start one more worker without waiting for it; ``ValueError`` if its name is running."""
        running = self.processes.get(spec.name)
        if running is not None and running.poll() is None:
            raise ValueError(f"a worker named {spec.name!r} is already running")
        log = self.log_dir / f"{spec.name}.log"
        process = start_worker({**self.env, **spec.env}, spec.queue, spec.concurrency, spec.name, log,
                               spec.args)
        self.logs[spec.name], self.processes[spec.name] = log, process
        return process

    def wait(self, names: Sequence[str], timeout: float = 60) -> None:
        """Wait until the named workers answer a ping; ``RuntimeError`` with their logs' ends if not."""
        try:
            wait_for_workers(self.settings, names, timeout)
        except RuntimeError as exc:
            tails = "".join(f"\n--- end of {self.logs[name]}:\n{_tail(self.logs[name])}" for name in names)
            raise RuntimeError(f"{exc}{tails}") from None

    def start(self, spec: WorkerSpec) -> subprocess.Popen:
        """One more worker, returned once it answers a ping (``RuntimeError`` after 60 s)."""
        process = self.launch(spec)
        self.wait([spec.name])
        return process

    def stop(self, name: str) -> None:
        """Stop the worker ``name`` as an operator would, then kill its leftover pool processes."""
        stop(self.processes[name])

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool (the process group), as a machine that loses power."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        """Stop every worker this cluster started, and their process groups."""
        for process in self.processes.values():
            stop(process)


@contextlib.contextmanager
def private_cluster(log_dir: Path, workers: Sequence[WorkerSpec] = SPLIT, *,
                    frame_store: str = "redis",
                    env: Mapping[str, str] | None = None,
                    server: RedisServer | None = None) -> Iterator[PrivateCluster]:
    """Real workers on a Redis of their own, answering pings, with their logs in ``log_dir``.

    ``frame_store`` is ``"redis"`` or ``"directory"``: a ``scratch`` directory under
    ``log_dir``, given to the workers as a ``file://`` CELERY_ANIMATE_FRAME_STORE. ``env`` is
    added to every worker's environment. With ``server`` the workers use that Redis (anything
    with a ``url``), which is left running; otherwise a new one is started and stopped after.
    On exit every worker is stopped and its process group killed. Raises ``RuntimeError``
    if a worker does not answer a ping within 60 s, ``ValueError`` for an unknown store.
    """
    if frame_store not in ("redis", "directory"):
        raise ValueError(f"frame_store is 'redis' or 'directory', not {frame_store!r}")
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(RedisServer())
        extra = dict(env or {})
        scratch = None
        if frame_store == "directory":
            scratch = log_dir / "scratch"
            scratch.mkdir(exist_ok=True)
            extra["CELERY_ANIMATE_FRAME_STORE"] = scratch.as_uri()
        worker_env = cluster_env(server.url, **extra)
        cluster = PrivateCluster(server, Settings.from_env(worker_env), worker_env, {}, {}, scratch,
                                 log_dir)
        stack.callback(cluster.stop_all)  # before the server stops: it is entered after it
        for spec in workers:  # all at once, then one wait: their start-ups overlap
            cluster.launch(spec)
        if workers:
            cluster.wait([spec.name for spec in workers])
        yield cluster
