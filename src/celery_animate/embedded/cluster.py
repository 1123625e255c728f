"""A private Redis plus one prefork worker for both queues, for the duration of a ``with``."""

from __future__ import annotations

from dataclasses import replace

from ..config import Settings
from .redis_server import RedisServer
from .worker import ForkedWorker, run_worker


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
        self._worker: ForkedWorker | None = None

    def start(self) -> EmbeddedCluster:
        self.redis.start()
        self.settings = replace(self.base.with_broker(self.redis.url), embedded=True)
        self._worker = ForkedWorker(run_worker, self.settings, self.workers, self.prewarm,
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
