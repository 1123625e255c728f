"""The embedded cluster's Celery worker, forked from the calling process."""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing.util
import os
import select
import signal
import time
import traceback
import warnings

from celery.exceptions import SecurityWarning
from celery.signals import after_setup_logger, worker_ready

from celery_animate.client.embedded.process import die_with_parent
from celery_animate.config import Settings
from celery_animate.worker import state as worker_state
from celery_animate.worker.app import app_for


def drop_inherited_afterfork_hooks() -> None:
    """Forget the after-fork hooks the caller's objects registered with multiprocessing.

    kombu closes its connection pools in them, and blocks forever on a
    connection that was waiting on Redis in the caller. The pool processes
    forked from the embedded worker never use the caller's objects. This
    touches ``multiprocessing.util._afterfork_registry`` (private; pinned by
    ``tests/unit/test_quirks.py``).
    """
    multiprocessing.util._afterfork_registry.clear()


def freeze_inherited_objects() -> None:
    """Exempt every object alive now from garbage collection (``gc.freeze()``).

    Celery's prefork pool calls ``gc.collect()`` before it forks each pool
    process; in a worker forked from the caller, with matplotlib and the
    user's modules loaded, that took about 50 ms a process, half the worker's
    start. Frozen objects are not traversed, and the pool processes share
    them as inherited. Pinned by ``tests/unit/test_quirks.py``.
    """
    gc.freeze()


def run_worker(settings: Settings, queue: str, concurrency: int, prewarm: list[tuple[str, bytes]],
               loglevel: str, niceness: int, ready_fd: int) -> int:
    """Body of a forked worker process: become a Celery worker of ``queue`` for ``settings``.

    Its pool processes set up the ``prewarm`` animators at start. Writes one
    byte to ``ready_fd`` once the worker consumes; returns its exit code.
    """
    os.setpgrp()  # Ctrl-C reaches the caller, which then stops us in order.
    die_with_parent()
    drop_inherited_afterfork_hooks()
    freeze_inherited_objects()
    if niceness:
        os.nice(niceness)

    # It runs as whoever runs the render, root included, on a private Redis.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    worker_state.configure(settings, prewarm)
    worker_ready.connect(lambda **_: os.write(ready_fd, b"1"), weak=False)
    after_setup_logger.connect(lambda **_: _quiet_reported_failures(), weak=False)
    # Celery prints its banner and shutdown notices to stdout; the caller's stdout is not ours.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    worker = app_for(settings).Worker(
        pool="prefork", concurrency=concurrency, queues=[queue], loglevel=loglevel,
        hostname=f"embedded-{queue}-{os.getpid()}@%h", quiet=True,
        without_gossip=True, without_mingle=True, without_heartbeat=True,
    )
    worker.start()
    return worker.exitcode or 0


class _ReportedToCaller(logging.Filter):
    """Drops Celery's log records of a failed task and of the chord it broke: the caller
    raises RenderFailed with that traceback, and both share its terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "celery.app.trace":
            return record.levelno < logging.ERROR
        return not (record.name == "celery.backends.redis" and str(record.msg).startswith("Chord"))


def _quiet_reported_failures() -> None:
    for name in ("celery.app.trace", "celery.backends.redis"):
        logging.getLogger(name).addFilter(_ReportedToCaller())


class ForkedWorker:
    """The worker process, made with a bare ``os.fork()``.

    Not ``multiprocessing``, which would run the caller's after-fork hooks
    (see :func:`drop_inherited_afterfork_hooks`) before our code could drop them.
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
        # The child makes itself a process group too (run_worker's setpgrp); doing it here as
        # well means the group exists once fork returns, so kill() reaches the child even if
        # it is stopped before it ran a line.
        with contextlib.suppress(OSError):
            os.setpgid(self.pid, self.pid)
        os.close(write_fd)
        self._ready = os.fdopen(read_fd, "rb", buffering=0)
        self._is_ready = False

    def wait_ready(self, timeout: float) -> bool:
        """True once the worker is consuming; False if it exited or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while not self._is_ready and time.monotonic() < deadline and self.alive():
            self._read_ready(0.05)
        return self._is_ready

    def ready(self) -> bool:
        """Whether the worker said it consumes (without waiting)."""
        if not self._is_ready and not self._ready.closed:
            self._read_ready(0)
        return self._is_ready

    def _read_ready(self, timeout: float) -> None:
        if self._ready.closed:  # it exited before it was ready: wait for alive() to see it
            time.sleep(timeout)
        elif select.select([self._ready], [], [], timeout)[0]:
            if self._ready.read(1) == b"1":
                self._is_ready = True
            else:  # end of file
                self._ready.close()

    def alive(self) -> bool:
        if self.exitcode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode is None

    def kill(self) -> None:
        """Kill the worker and its pool (they share a process group), without waiting.

        The job is over or abandoned, and its Redis goes next, so there is
        nothing a graceful shutdown would save.
        """
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # no such group: the process alone, if it is still there
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def reap(self, timeout: float = 5.0) -> None:
        """Wait for the killed worker to exit (at most ``timeout`` seconds) and close its pipe."""
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.002)  # SIGKILL takes effect within a scheduler tick
        self._ready.close()
