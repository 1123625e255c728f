"""Where Celery's messages sit on a Redis broker, and what task and arguments each one carries.

kombu's Redis transport keeps a queue in one list per priority: ``<queue>``
for priority 0 and ``<queue>:<p>`` for ``p`` (the ``sep`` and
``priority_steps`` transport options set in ``celery_app``), pushed on the
left and served from the right. A message a worker took and has not
acknowledged sits in the ``unacked`` hash as ``[message, exchange,
routing key]`` until it is acknowledged or given back. Celery's message (task
protocol 2) names its task in ``headers["task"]``; its body, base64 in the
envelope, is ``[args, kwargs, embed]`` in the message's content type. All of
this is pinned in ``tests/unit/test_quirks.py``.

Everything read here is a stranger's word: a message that is not such a
Celery message, or is too large to be one of ours, is skipped, never an error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import msgpack
import redis

#: kombu's separator between a queue's name and a priority (``sep`` in the transport options).
SEP = ":"
#: Priorities a queue has (``priority_steps`` in the transport options: 0 to 9).
PRIORITY_LEVELS = 10
#: kombu's hash of the messages workers took and have not acknowledged (``unacked_key``).
UNACKED_KEY = "unacked"
#: Our tasks' messages are a few hundred bytes; anything far larger is not one of them.
MAX_MESSAGE_BYTES = 64 * 1024


def priority_lists(queue: str, below: int = PRIORITY_LEVELS) -> list[str]:
    """The Redis lists holding ``queue``'s messages of priorities ``0 .. below-1`` (there are
    :data:`PRIORITY_LEVELS`, whatever a message claims its priority is)."""
    return [queue if p == 0 else f"{queue}{SEP}{p}"
            for p in range(min(max(0, below), PRIORITY_LEVELS))]


def task_call(message: object) -> tuple[str, list] | None:
    """``(task name, positional args)`` of one Celery message (the envelope as a dict, or its
    JSON), or None when it is not a protocol-2 Celery message we can read."""
    try:
        if isinstance(message, (bytes, str)):
            if len(message) > MAX_MESSAGE_BYTES:
                return None
            message = json.loads(message)
        task = message["headers"]["task"]
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        if len(body) > MAX_MESSAGE_BYTES:
            return None
        if message.get("content-type") == "application/x-msgpack":
            payload = msgpack.unpackb(body, raw=False)
        else:
            payload = json.loads(body)
        args = payload[0]
        if isinstance(task, str) and isinstance(args, list):
            return task, args
    except (ValueError, KeyError, TypeError, IndexError, AttributeError,
            msgpack.UnpackException):
        pass
    return None


def queued_and_unacked(broker: redis.Redis, queues: list[str], limit: int
                       ) -> Iterator[tuple[str, list]] | None:
    """Every readable task call waiting in ``queues`` (all priorities) or taken by a worker and not
    yet acknowledged; None (nothing read) when there are more than ``limit`` messages in all.

    A key that is not a list or a hash (put there by someone else) holds nothing.
    """
    lists = [name for queue in queues for name in priority_lists(queue)]
    with broker.pipeline(transaction=False) as pipe:
        for name in lists:
            pipe.llen(name)
        pipe.hlen(UNACKED_KEY)
        sizes = [size if isinstance(size, int) else 0
                 for size in pipe.execute(raise_on_error=False)]
    if sum(sizes) > limit:
        return None
    with broker.pipeline(transaction=False) as pipe:
        for name in lists:
            pipe.lrange(name, 0, -1)
        pipe.hvals(UNACKED_KEY)
        *queued, unacked = [found if isinstance(found, list) else []
                            for found in pipe.execute(raise_on_error=False)]
    return _calls(queued, unacked)


def _calls(queued: list[list[bytes]], unacked: list[bytes]) -> Iterator[tuple[str, list]]:
    for raw in (message for messages in queued for message in messages):
        if (call := task_call(raw)) is not None:
            yield call
    for raw in unacked:
        try:
            entry = json.loads(raw) if len(raw) <= MAX_MESSAGE_BYTES else None
        except ValueError:
            continue
        if isinstance(entry, list) and entry and (call := task_call(entry[0])) is not None:
            yield call
