"""The policy every job task shares, once: :class:`JobTask`.

The tasks themselves only take their arguments from the message, call the
work layer (``render/``, ``encode/``) and return what it did. What they all
do the same way lives here:

* a Redis blip (connection lost, timed out) is waited out: the task is sent
  again after 1, 2, 4, ... up to 30 seconds (Celery's ``autoretry_for``), as
  often as it takes; the watchdog's stall timeout ends a job whose Redis
  never comes back;
* a job that has ended (or whose record is gone) is not worked on: the task
  returns ``{"skipped": ...}``, after removing the job's data if it is still
  there and this worker can (:func:`celery_animate.job.lifecycle.purge_if_ended`);
* :class:`~celery_animate.errors.TryLater` sends the task again after its countdown,
  holding no worker process meanwhile;
* :class:`~celery_animate.errors.EncodeAbandoned` (the job ended, another
  encoder took over) ends the task quietly;
* any other exception fails the job with it and removes its data
  (:meth:`JobTask.end_job`), then fails the task; so does a hard time limit
  (:meth:`JobTask.on_failure`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TaskPredicate, TimeLimitExceeded

from celery_animate.cache import FrameCache
from celery_animate.config import Settings
from celery_animate.errors import EncodeAbandoned, InvalidArgument, JobEnded, TaskKilled, TryLater
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.states import TERMINAL_STATES
from celery_animate.stores import FrameStore
from celery_animate.worker import state as worker_state

logger = logging.getLogger(__name__)

#: Redis errors a task waits out instead of failing its job at the first blip.
REDIS_BLIPS = (redis.ConnectionError, redis.TimeoutError)
#: What a job that lost a task to the worker's hand says.
KILLED = ("a {task} task of this job ended without finishing: it was killed by a time limit "
          "(--time-limit) or revoke(terminate=True), or failed; see the {side} workers' logs")


@dataclass
class RunningJob:
    """A job that has not ended, as a task sees it, with this worker's settings and store."""

    record: JobRecord
    spec: JobSpec
    state: str
    settings: Settings
    store: FrameStore
    #: This worker's frame cache (None without a cache secret).
    cache: FrameCache | None = None


class JobTask(Task):
    """Base class of the package's tasks that work on one job: their first argument is its id."""

    autoretry_for = REDIS_BLIPS
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = False
    max_retries = None
    #: Whether this task runs where the job's files lie (beside its output: an encode worker), so
    #: that it may remove all of an ended job's data itself. Render workers may not see them.
    removes_data = False

    def running_job(self, job_id: str) -> RunningJob:
        """The job, unless it ended (then :class:`JobEnded`, its data removed here if this task
        may). Raises :class:`InvalidArgument` for an id or a spec that is not acceptable, which
        fails the job (when there is one)."""
        record = worker_state.job_record(job_id)
        state = record.state()
        if state is None:
            raise JobEnded("unknown job")
        if state in TERMINAL_STATES:
            cleaner = self.cleaner()
            if cleaner is not None:
                lifecycle.purge_if_ended(record, cleaner)
            raise JobEnded(state)
        return RunningJob(record, worker_state.job_spec(job_id), state, worker_state.settings(),
                          worker_state.frame_store(), worker_state.frame_cache())

    def cleaner(self) -> lifecycle.Cleaner | None:
        """What this task removes an ended job's data with, if it may (see :attr:`removes_data`)."""
        if not self.removes_data:
            return None
        return lifecycle.Cleaner(worker_state.frame_store(), worker_state.settings())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except JobEnded as ended:
            return {"skipped": str(ended)}
        except EncodeAbandoned as reason:
            return {"skipped": str(reason)}
        except TryLater as later:
            raise self.retry(countdown=later.countdown) from None
        except TaskPredicate:  # Celery's own control flow: a retry, an ignored or rejected message
            raise
        except Exception as exc:
            # Here, not in on_failure: Celery marks the task failed before it calls that, and a
            # chord then sends its error callback, which must find the job failed with this.
            self.end_job(args[0] if args else kwargs.get("job_id"), exc)
            raise

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict,
                   einfo: Any) -> None:
        """Celery calls it in the worker's main process when a hard time limit killed the task's
        pool process (then :meth:`__call__` never saw the end)."""
        if isinstance(exc, TimeLimitExceeded):
            side = "encode" if self.removes_data else "render"
            self.end_job(args[0] if args else kwargs.get("job_id"),
                         TaskKilled(KILLED.format(task=side, side=side)))

    def end_job(self, job_id: object, exc: BaseException) -> None:
        """Fail the job with ``exc`` and remove its data (where this task may); never raises."""
        if isinstance(exc, SoftTimeLimitExceeded):
            exc = TaskKilled(f"{self.name} ran past the worker's soft time limit (--soft-time-limit); "
                             "raise the limit, or give the job more, smaller chunks")
        try:
            record = worker_state.job_record(job_id)  # type: ignore[arg-type]
        except (InvalidArgument, TypeError):  # not a job id: there is no job to end
            return
        try:
            lifecycle.end_job(record, exc, self.cleaner())
        except Exception:  # Redis is gone too: the watchdog's stall timeout ends the job
            logger.exception("could not end job %s after its task failed", job_id)


def message_priority(task: Task) -> int | None:
    """The priority the task's message was sent with (None if it names none, or not an int)."""
    with contextlib.suppress(AttributeError):
        priority = (task.request.delivery_info or {}).get("priority")
        if type(priority) is int:
            return priority
    return None
