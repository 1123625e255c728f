"""A private Redis, a render worker and an encode worker, for the duration of a ``with``."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from celery_animate.client.embedded.redis_server import RedisServer
from celery_animate.client.embedded.scratch import make_scratch, make_spill, remove_scratch
from celery_animate.client.embedded.worker import ForkedWorker, run_worker
from celery_animate.config import REDIS_FRAME_STORE, Settings
from celery_animate.errors import EmbeddedClusterFailed

#: How much lower the encoder's CPU priority is than the renderers': it keeps up with them on
#: spare cycles instead of taking a core from one of them.
ENCODER_NICENESS = 5


class EmbeddedCluster:
    """A private Redis, a render worker and an encode worker, for the duration of a ``with``.

    The render worker has ``workers`` prefork processes; each runs ``setup()``
    of the ``prewarm`` animators (``(import path, packed attributes)``) while
    the client stages params. The encode worker has one process, which never
    sets up a figure, at a lower CPU priority. Unless ``settings`` name a frame
    store, frames wait in a private folder in shared memory, and spill into a
    private folder in the temporary directory when it is full (see
    :mod:`~celery_animate.client.embedded.scratch`); or in the private Redis
    where shared memory is missing or small.

    With ``wait_ready=False``, :meth:`start` returns once Redis answers and the
    workers are forked, so the caller can enqueue while they start (their
    messages wait in Redis); :meth:`check_alive` then also raises once a worker
    has not started within ``startup_timeout`` seconds.
    """

    def __init__(self, workers: int, settings: Settings | None = None,
                 prewarm: list[tuple[str, bytes]] | None = None, startup_timeout: float = 60.0,
                 loglevel: str = "WARNING", wait_ready: bool = True):
        self.workers = workers
        self.base = settings or Settings.from_env()
        self.prewarm = list(prewarm or [])
        self.startup_timeout = startup_timeout
        self.loglevel = loglevel
        self.wait_ready = wait_ready
        self._started_by = 0.0  # time.monotonic() by which the workers must be ready
        self.redis = RedisServer()
        self.settings = self.base
        self.scratch: Path | None = None  # the frames' folder in shared memory
        self.spill: Path | None = None  # where they go when it is full
        self._workers: list[ForkedWorker] = []

    def start(self) -> EmbeddedCluster:
        self.redis.start()
        self.settings = replace(self.base.with_broker(self.redis.url), embedded=True)
        if self.base.frame_store == REDIS_FRAME_STORE:
            self.scratch = make_scratch()
            if self.scratch is not None:
                self.spill = make_spill()
                self.settings = replace(self.settings, frame_store=self.scratch.as_uri(),
                                        frame_spill=self.spill.as_uri() if self.spill else None)
        self._workers = [
            ForkedWorker(run_worker, self.settings, self.settings.render_queue, self.workers,
                         self.prewarm, self.loglevel, 0),
            ForkedWorker(run_worker, self.settings, self.settings.encode_queue, 1, [],
                         self.loglevel, ENCODER_NICENESS),
        ]
        self._started_by = time.monotonic() + self.startup_timeout
        if self.wait_ready:
            for worker in self._workers:
                if not worker.wait_ready(self.startup_timeout):
                    self.stop()
                    raise self._not_started(worker)
        return self

    def _not_started(self, worker: ForkedWorker) -> EmbeddedClusterFailed:
        code = worker.exitcode
        return EmbeddedClusterFailed(
            "an embedded Celery worker did not start "
            + (f"(it exited with code {code}; see its log above)" if code is not None
               else f"within {self.startup_timeout:.0f} s"))

    def check_alive(self) -> None:
        """Raise :class:`EmbeddedClusterFailed` (a ``RuntimeError``) if a worker process has
        exited, or has not started in time."""
        for worker in self._workers or [None]:
            if worker is None:
                raise EmbeddedClusterFailed("an embedded Celery worker exited unexpectedly "
                                            "(the cluster is not running)")
            ready = worker.ready()
            if not worker.alive() or (not ready and time.monotonic() > self._started_by):
                if not ready:
                    raise self._not_started(worker)
                raise EmbeddedClusterFailed(
                    f"an embedded Celery worker exited unexpectedly (exit code {worker.exitcode})")

    def stop(self) -> None:
        """Stop the workers (their pools too) and Redis, and remove the frames' folders; safe to
        call twice."""
        workers, self._workers = self._workers, []
        for worker in workers:  # all at once, then wait for each: they die in parallel
            worker.kill()
        for worker in workers:
            worker.reap()
        self.redis.stop()
        folders, self.scratch, self.spill = [self.scratch, self.spill], None, None
        for folder in folders:
            if folder is not None:
                remove_scratch(folder)

    def __enter__(self) -> EmbeddedCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
