"""Whether another job's encode task waits in the encode queue ahead of a segment being encoded.

A segment's encode holds its process for as long as the segment takes (a
second or two of 720p); a short job whose encoder arrives meanwhile would wait
for it (see ``tasks.segments``, where such a segment gives its process up).
This module reads the broker's queue where kombu's Redis transport keeps it
(:mod:`celery_animate.job.broker_layout`). What a message says is a stranger's
word: it only decides whether an encode gives way, which ``tasks.segments``
bounds per segment.
"""

from __future__ import annotations

import json

import redis

from celery_animate.job.broker_layout import priority_lists
from celery_animate.job.messages import ENCODE_TASK, STREAM_TASK

#: The waiting tasks worth giving way to: another job's encoder of a whole job (a short job's,
#: or the last step of a long one). Another long job's segments wait their turn, so that long
#: jobs share encode processes segment by segment rather than undoing each other's work.
WHOLE_JOB_ENCODERS = frozenset({ENCODE_TASK, STREAM_TASK})
#: Messages looked at per priority list, from the end served next.
PEEK = 16


def other_job_waiting(broker: redis.Redis, queue: str, priority: int, job_id: str) -> bool:
    """True when another job's encoder (:data:`WHOLE_JOB_ENCODERS`) waits in ``queue`` at a
    priority served before ``priority`` (a lower number). One LRANGE per such priority; a key
    there that is not a list (put there by someone else) holds no encoder."""
    try:
        return any(_for_another_job(raw, job_id)
                   for name in priority_lists(queue, priority)
                   for raw in broker.lrange(name, -PEEK, -1))
    except redis.ResponseError:  # WRONGTYPE
        return False


def _for_another_job(raw: bytes, job_id: str) -> bool:
    try:
        headers = json.loads(raw)["headers"]
        return (headers["task"] in WHOLE_JOB_ENCODERS
                and job_id not in str(headers.get("argsrepr", "")))
    except (ValueError, KeyError, TypeError):
        return False  # not a Celery message: no reason to give way
