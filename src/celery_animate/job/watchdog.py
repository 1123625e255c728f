"""The watchdog: fails jobs that stopped making progress, so every job ends, and removes the
data of jobs that ended where no one could.

A job whose tasks all vanished (a time limit that killed the only chunk
left, a queue nobody consumes any more, a worker wedged in ``update()``)
would otherwise stay ``rendering`` or ``encoding`` forever, and ``wait()``
with it. Every worker's main process runs one :class:`Watchdog` thread; they
may race, and ending a job is idempotent. The same thread sends again what a
Redis broker lost of a job (:mod:`celery_animate.job.recovery`), so that a lost
message costs seconds rather than the job. In a worker that encodes (it sees
the frame store and the output directory), it also purges, within about a
second, each job that ended without its data removed: cancelled by a client,
failed on a render worker (:func:`celery_animate.job.lifecycle.purge_ended`). Every worker's
watchdog also announces, within about a second, the end of each job that asked for it (its
``on_done`` task, its webhook: :func:`celery_animate.job.announce.announce_ended`).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery import Celery

from celery_animate import keys
from celery_animate.config import Settings
from celery_animate.connection import REDIS_SCHEMES, job_redis, redis_client
from celery_animate.errors import JobStalled
from celery_animate.job import announce, lifecycle
from celery_animate.job.recovery import resend_lost_work
from celery_animate.states import ENCODING, QUEUED

logger = logging.getLogger(__name__)

#: Seconds between two looks for ended jobs to purge.
PURGE_INTERVAL = 1.0
#: Seconds between two looks for ended jobs to announce (on_done, webhook: job.announce).
ANNOUNCE_INTERVAL = 1.0


def fail_stalled_jobs(client: redis.Redis, settings: Settings, cleaner: lifecycle.Cleaner | None,
                      now: float | None = None) -> list[str]:
    """Fail every running job with no progress for ``settings.stall_timeout`` s; return their ids.

    A job still queued is left alone (it waits for a free worker), and so is
    one whose encoder holds a live lease (a long final flush is progress too).
    With a ``cleaner`` the failed jobs' data is removed at once, else by an
    encode worker's watchdog.
    """
    now = time.time() if now is None else now
    stalled = []
    for record, state, progress_at in lifecycle.running_jobs(client, settings.job_ttl):
        idle = now - progress_at
        if state == QUEUED or idle < settings.stall_timeout:
            continue
        if state == ENCODING and client.exists(keys.lease(record.job_id)):
            continue
        error = JobStalled(
            f"the job made no progress while {state} for {idle:.0f} s "
            f"(CELERY_ANIMATE_STALL_TIMEOUT={settings.stall_timeout}): its tasks were lost or a "
            f"worker is stuck; see the {'encode' if state == ENCODING else 'render'} workers' logs")
        if lifecycle.end_job(record, error, cleaner):
            stalled.append(record.job_id)
            logger.warning("job %s failed: %s", record.job_id, error)
    return stalled


class Watchdog(threading.Thread):
    """Runs :func:`fail_stalled_jobs` every ``interval`` seconds; with a ``cleaner`` (a worker
    that encodes) :func:`~celery_animate.job.lifecycle.purge_ended` every
    :data:`PURGE_INTERVAL`; and on a Redis broker
    :func:`~celery_animate.job.recovery.resend_lost_work` every few seconds (kombu's interval
    for giving back a vanished worker's messages), until :meth:`stop`."""

    def __init__(self, settings: Settings, cleaner: lifecycle.Cleaner | None,
                 app: Celery | None = None, interval: float | None = None):
        super().__init__(name="celery-animate-watchdog", daemon=True)
        self.settings, self.cleaner, self.app = settings, cleaner, app
        self.interval = interval or max(1.0, min(30.0, settings.stall_timeout / 4))
        # Sending again needs the worker's app; an AMQP broker gives back what a dead consumer held.
        self.recovers = app is not None and (settings.broker_url or "").startswith(REDIS_SCHEMES)
        self.recovery_interval = float(settings.restore_interval)
        self._stop = threading.Event()

    def run(self) -> None:
        client = job_redis(self.settings)
        ticks = [self.interval]
        if self.recovers:
            ticks.append(self.recovery_interval)
        if self.cleaner is not None:
            ticks.append(PURGE_INTERVAL)
        if self.app is not None:  # announcing sends tasks: it needs the worker's app
            ticks.append(ANNOUNCE_INTERVAL)
        next_stall_check = next_recovery = time.monotonic()
        while not self._stop.wait(min(ticks)):
            now = time.monotonic()
            if self.cleaner is not None:
                self._guarded("removing the data of ended jobs", lifecycle.purge_ended, client,
                              self.cleaner, self.settings.job_ttl)
            if self.app is not None:
                self._guarded("announcing ended jobs", announce.announce_ended, client, self.app,
                              self.settings)
            if now >= next_stall_check:
                next_stall_check = now + self.interval
                self._guarded("checking for stalled jobs", fail_stalled_jobs, client,
                              self.settings, self.cleaner)
            if self.recovers and now >= next_recovery:
                next_recovery = now + self.recovery_interval
                self._guarded("looking for lost messages", resend_lost_work, client,
                              redis_client(self.settings.broker_url), self.app,
                              self.settings, self.cleaner)

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
