"""A user's own Celery app for tests/test_announce.py: one task, on its own queue, that keeps
each announcement it receives (its arguments, as JSON) in a Redis list the test reads.

Run as ``celery -A announce_app worker -Q announce_user`` with ``CELERY_BROKER_URL`` set; it
accepts JSON only, as any app that receives celery-animate's ``on_done`` may.
"""

from __future__ import annotations

import json
import os

import redis
from celery import Celery

QUEUE = "announce_user"
TASK = "announce_app.record_end"
#: The Redis list each received call is appended to.
RECEIVED = "announce_test:received"

app = Celery("announce_app", broker=os.environ.get("CELERY_BROKER_URL"), set_as_current=False)
# JSON only: an on_done message in any other serializer would be refused, never run. (Pings from
# celery-animate's app, in msgpack, are refused too: the test waits for the log's "ready" instead.)
app.conf.update(accept_content=["json"], task_serializer="json", task_ignore_result=True)


@app.task(name=TASK)
def record_end(end: dict, *args: object, **kwargs: object) -> None:
    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    client.rpush(RECEIVED, json.dumps({"end": end, "args": list(args), "kwargs": kwargs}))
