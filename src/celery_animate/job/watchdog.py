"""The watchdog: fails jobs that stopped making progress, so every job ends.

A job whose tasks all vanished (a time limit that killed the only chunk
left, a queue nobody consumes any more, a worker wedged in ``update()``)
would otherwise stay ``rendering`` or ``encoding`` forever, and ``wait()``
with it. Every worker's main process runs one :class:`Watchdog` thread; they
may race, and ending a job is idempotent. The same thread sends again what a
Redis broker lost of a job (:mod:`celery_animate.job.recovery`), so that a lost
message costs seconds rather than the job.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis
from celery import Celery

from celery_animate.config import Settings
from celery_animate.connection import REDIS_SCHEMES, job_redis, redis_client
from celery_animate.errors import InvalidArgument, JobStalled
from celery_animate.job import lifecycle
from celery_animate.job.lifecycle import ACTIVE_JOBS
from celery_animate.job.record import JobRecord
from celery_animate.job.recovery import resend_lost_work
from celery_animate.states import ENCODING, QUEUED
from celery_animate.stores import FrameStore

logger = logging.getLogger(__name__)


def fail_stalled_jobs(client: redis.Redis, settings: Settings, store: FrameStore,
                      now: float | None = None) -> list[str]:
    """Fail every running job with no progress for ``settings.stall_timeout`` s; return their ids.

    A job still queued is left alone (it waits for a free worker), and so is
    one whose encoder holds a live lease (a long final flush is progress too).
    Ids of jobs whose record is gone are dropped from the set of running jobs.
    """
    now = time.time() if now is None else now
    stalled = []
    for raw in client.zrange(ACTIVE_JOBS, 0, -1):
        job_id = raw.decode()
        try:
            record = JobRecord(client, job_id, settings.job_ttl)
        except InvalidArgument:
            client.zrem(ACTIVE_JOBS, raw)
            continue
        state, progress_at = client.hmget(record.key, "state", "progress_at")
        if state is None:
            client.zrem(ACTIVE_JOBS, raw)
            continue
        state = state.decode()
        idle = now - float(progress_at or 0)
        if state == QUEUED or idle < settings.stall_timeout:
            continue
        if state == ENCODING and client.exists(f"{record.key}:lease"):
            continue
        error = JobStalled(
            f"the job made no progress while {state} for {idle:.0f} s "
            f"(CELERY_ANIMATE_STALL_TIMEOUT={settings.stall_timeout}): its tasks were lost or a "
            f"worker is stuck; see the {'encode' if state == ENCODING else 'render'} workers' logs")
        if lifecycle.fail(record, error):
            stalled.append(job_id)
            logger.warning("job %s failed: %s", job_id, error)
            with contextlib.suppress(Exception):  # a spec it cannot read: its data just expires
                lifecycle.cleanup(record, record.spec(), store)
    return stalled


class Watchdog(threading.Thread):
    """Runs :func:`fail_stalled_jobs` every ``interval`` seconds, and on a Redis broker
    :func:`~celery_animate.job.recovery.resend_lost_work` every few seconds (kombu's interval for
    giving back a vanished worker's messages), until :meth:`stop`."""

    def __init__(self, settings: Settings, store: FrameStore, app: Celery | None = None,
                 interval: float | None = None):
        super().__init__(name="celery-animate-watchdog", daemon=True)
        self.settings, self.store, self.app = settings, store, app
        self.interval = interval or max(1.0, min(30.0, settings.stall_timeout / 4))
        # Sending again needs the worker's app; an AMQP broker gives back what a dead consumer held.
        self.recovers = app is not None and (settings.broker_url or "").startswith(REDIS_SCHEMES)
        self.recovery_interval = float(settings.restore_interval)
        self._stop = threading.Event()

    def run(self) -> None:
        client = job_redis(self.settings)
        tick = min(self.interval, self.recovery_interval) if self.recovers else self.interval
        next_stall_check = time.monotonic() + self.interval
        while not self._stop.wait(tick):
            if time.monotonic() >= next_stall_check:
                next_stall_check = time.monotonic() + self.interval
                self._guarded("checking for stalled jobs", fail_stalled_jobs, client,
                              self.settings, self.store)
            if self.recovers:
                self._guarded("looking for lost messages", resend_lost_work, client,
                              redis_client(self.settings.broker_url), self.app,
                              self.settings, self.store)

    @staticmethod
    def _guarded(doing: str, step, *args) -> None:
        try:
            step(*args)
        except redis.RedisError as exc:
            logger.debug("watchdog: Redis unavailable while %s (%s); trying again", doing, exc)
        except Exception:
            logger.exception("watchdog: %s failed", doing)

    def stop(self) -> None:
        self._stop.set()
