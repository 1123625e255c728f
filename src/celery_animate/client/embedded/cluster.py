"""A private Redis, a render worker and an encode worker, for the duration of a ``with``."""

from __future__ import annotations

from dataclasses import replace

from celery_animate.client.embedded.redis_server import RedisServer
from celery_animate.client.embedded.worker import ForkedWorker, run_worker
from celery_animate.config import Settings
from celery_animate.errors import EmbeddedClusterFailed

#: How much lower the encoder's CPU priority is than the renderers': it keeps up with them on
#: spare cycles instead of taking a core from one of them.
ENCODER_NICENESS = 5


class EmbeddedCluster:
    """A private Redis, a render worker and an encode worker, for the duration of a ``with``.

    The render worker has ``workers`` prefork processes; each runs ``setup()``
    of the ``prewarm`` animators (``(import path, packed attributes)``) while
    the client stages params. The encode worker has one process, which never
    sets up a figure, at a lower CPU priority.
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
        self._workers: list[ForkedWorker] = []

    def start(self) -> EmbeddedCluster:
        self.redis.start()
        self.settings = replace(self.base.with_broker(self.redis.url), embedded=True)
        self._workers = [
            ForkedWorker(run_worker, self.settings, self.settings.render_queue, self.workers,
                         self.prewarm, self.loglevel, 0),
            ForkedWorker(run_worker, self.settings, self.settings.encode_queue, 1, [],
                         self.loglevel, ENCODER_NICENESS),
        ]
        for worker in self._workers:
            if not worker.wait_ready(self.startup_timeout):
                code = worker.exitcode
                self.stop()
                raise EmbeddedClusterFailed(
                    "an embedded Celery worker did not start "
                    + (f"(it exited with code {code}; see its log above)" if code is not None
                       else f"within {self.startup_timeout:.0f} s")
                )
        return self

    def check_alive(self) -> None:
        """Raise :class:`EmbeddedClusterFailed` (a ``RuntimeError``) if a worker process has exited."""
        for worker in self._workers or [None]:
            if worker is None or not worker.alive():
                code = None if worker is None else worker.exitcode
                raise EmbeddedClusterFailed(
                    f"an embedded Celery worker exited unexpectedly (exit code {code})")

    def stop(self) -> None:
        """Stop the workers (their pools too) and Redis; safe to call twice."""
        workers, self._workers = self._workers, []
        for worker in workers:
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
