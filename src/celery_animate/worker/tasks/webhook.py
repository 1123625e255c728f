"""The task that POSTs a job's end to its webhook: ``celery_animate.deliver_webhook``.

A worker's watchdog sends it once per ended job that asked for a webhook
(:func:`celery_animate.job.announce.announce`); it runs on the encode queue.
Its message carries the job's id and the attempt number only: the URL and the
payload come from the job's record, checked against this worker's settings.
A receiver that is down is tried again by sending this task again with a
countdown, so no worker process waits; the job's state never changes here.
"""

from __future__ import annotations

from celery import shared_task

from celery_animate.errors import InvalidArgument
from celery_animate.job import announce
from celery_animate.job.messages import WEBHOOK_TASK
from celery_animate.worker import state as worker_state
from celery_animate.worker.tasks.base import REDIS_BLIPS


@shared_task(name=WEBHOOK_TASK, bind=True, autoretry_for=REDIS_BLIPS, retry_backoff=1,
             retry_backoff_max=30, retry_jitter=False, max_retries=None)
def deliver_webhook(self, job_id: str, attempt: int = 0) -> dict:
    """One attempt at the job's webhook; returns the delivery status recorded (or a skip)."""
    try:
        record = worker_state.job_record(job_id)
    except (InvalidArgument, TypeError):
        return {"skipped": "not a job id"}
    if type(attempt) is not int or attempt < 0:
        return {"skipped": "not an attempt number"}
    delivery = announce.deliver_webhook(record, worker_state.settings(), attempt)
    if delivery.retry_in is not None:
        raise self.retry(args=(job_id, attempt + 1), countdown=delivery.retry_in)
    return delivery.status or {"skipped": "no record"}
