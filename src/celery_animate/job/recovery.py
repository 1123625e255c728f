"""Lost messages: a running job whose remaining work is on no queue is sent that work again.

kombu's Redis transport takes a message off its queue (BRPOP) before it notes
it among the unacknowledged ones (:mod:`celery_animate.job.broker_layout`); a
worker machine that dies between the two loses that message for good, and so
do a purged queue and a broker restarted without its data. A chord missing
one chunk never calls its callback, so such a job would make no progress
until the watchdog's stall timeout failed it. (Killing a render node mid-job,
``tests/test_fleet.py`` lost a chunk that way about once in a dozen runs.)

Each worker's watchdog thread calls :func:`resend_lost_work`. It looks at the
jobs that made no progress for :func:`lost_after` seconds and whose messages
were all sent to this worker's queues; one worker at a time (a lock, held for the
pass and an interval after) reads those queues and the unacknowledged messages, twice,
:data:`SECOND_LOOK_SECONDS` apart, because a message moving from a queue to
a worker is on neither for a moment. What neither look found is sent again:
the render task of each unfinished chunk (at priority 0: it is the job's
straggler) and, since the chord can no longer complete, the encode callback;
for a job whose frames are all stored and that has no message left at all,
the encode callback. Sending twice is safe: a chunk's frames are overwritten
with the same bytes and counted once, and one encoder publishes. Each round
is counted on the job; past ``max_deliveries`` rounds the job fails with
:class:`MessagesLost`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import Celery

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, JobNotFound, MessagesLost
from celery_animate.job import lifecycle
from celery_animate.job.broker_layout import queued_and_unacked
from celery_animate.job.messages import (
    ENCODE_TASK,
    RENDER_TASK,
    SEGMENT_TASK,
    chunk_message,
    encode_callback,
)
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.keys import ACTIVE_JOBS, RECOVERY_LOCK
from celery_animate.params import describe_ranges
from celery_animate.states import ENCODING, RENDERING

logger = logging.getLogger(__name__)

#: Seconds between the two looks at the broker that must both miss a message.
SECOND_LOOK_SECONDS = 0.5
#: Most messages one look reads: a broker holding more is not read until it holds fewer (a job
#: behind that many messages is far likelier waiting than lost; the stall timeout still ends it).
MAX_MESSAGES_READ = 20_000
#: Most chunks of one job sent again in one round.
MAX_RESENT_CHUNKS = 1000
#: Held by the worker looking at the broker, for its whole pass (at most PASS_SECONDS) and one
#: interval after: two passes at once would both send what one of them saw lost (a pass over a
#: job of 100,000 chunks takes seconds, and its first batch of chunks is read at its start).
LOCK_KEY, PASS_SECONDS = RECOVERY_LOCK, 60


def lost_after(settings: Settings) -> float:
    """Seconds a job must have made no progress before its messages are looked for: twice the
    interval at which workers give back a vanished worker's messages, and at least 5."""
    return max(5.0, 2.0 * settings.restore_interval)


@dataclass(frozen=True)
class LostWork:
    """What a job needs sent again: the render tasks of ``chunks``, and its encode callback."""

    chunks: tuple[int, ...] = ()
    encoder: bool = False

    def __bool__(self) -> bool:
        return bool(self.chunks) or self.encoder

    def __and__(self, other: LostWork) -> LostWork:
        """What both looks found lost."""
        both = set(other.chunks)
        return LostWork(tuple(k for k in self.chunks if k in both), self.encoder and other.encoder)


#: ``(task name, chunk or segment number or None)`` of a job's messages on the broker.
Calls = set[tuple[str, object]]


def lost_work(record: JobRecord, spec: JobSpec, state: str, calls: Calls) -> LostWork:
    """What job ``record`` (in ``state``, with ``calls`` on the broker) lost: while it renders, its
    unfinished chunks with no render message, and then its encode callback unless one is there;
    once every frame is stored, its encode callback if no message of the job is left at all."""
    if state == RENDERING:
        on_broker = {part for task, part in calls if task == RENDER_TASK}
        lost = [k for k in record.unfinished_chunks(spec.n_chunks, spec.n_frames)
                if k not in on_broker]
        has_callback = any(task == ENCODE_TASK for task, _ in calls)
        return LostWork(tuple(lost[:MAX_RESENT_CHUNKS]), bool(lost) and not has_callback)
    return LostWork(encoder=not calls)


def broker_calls(broker: redis.Redis, settings: Settings, job_ids: set[str]
                 ) -> dict[str, Calls] | None:
    """The messages of each of ``job_ids`` in this worker's queues or taken by a worker; None when
    the broker holds more than :data:`MAX_MESSAGES_READ` messages in all."""
    calls = queued_and_unacked(broker, [settings.render_queue, settings.encode_queue],
                               MAX_MESSAGES_READ)
    if calls is None:
        return None
    found: dict[str, Calls] = {job_id: set() for job_id in job_ids}
    for task, args in calls:
        if args and isinstance(args[0], str) and args[0] in found:
            part = args[1] if task in (RENDER_TASK, SEGMENT_TASK) and len(args) > 1 else None
            found[args[0]].add((task, part))
    return found


@dataclass
class _Suspect:
    record: JobRecord
    spec: JobSpec
    state: str


def _idle_jobs(client: redis.Redis, settings: Settings, now: float) -> dict[str, _Suspect]:
    """Jobs rendering without a frame stored, or encoding without progress, for
    :func:`lost_after` seconds, whose messages were all sent to this worker's queues."""
    suspects = {}
    ours = (settings.render_queue, settings.encode_queue)
    for raw in client.zrange(ACTIVE_JOBS, 0, -1):
        try:
            record = JobRecord(client, raw.decode(), settings.job_ttl)
            state, progress_at, rendered_at = client.hmget(record.key, "state", "progress_at",
                                                           "rendered_at")
            state = state.decode() if state is not None else None
            # While it renders, an encoder encoding what is there again (after it died, say)
            # is no sign that its chunks are on their way.
            since = rendered_at if state == RENDERING and rendered_at else progress_at
            if (state not in (RENDERING, ENCODING) or now - float(since or 0) < lost_after(settings)
                    or record.sent_to() != ours):
                continue
            suspects[record.job_id] = _Suspect(record, record.spec(), state)
        except (InvalidArgument, JobNotFound, ValueError, UnicodeDecodeError):
            continue  # not a job this worker can read; the watchdog ends it or drops its id
    return suspects


def _look(broker: redis.Redis, settings: Settings, suspects: dict[str, _Suspect]
          ) -> dict[str, LostWork]:
    calls = broker_calls(broker, settings, set(suspects))
    if calls is None:
        logger.debug("recovery: the broker holds more than %d messages; not reading them",
                     MAX_MESSAGES_READ)
        return {}
    found = {job_id: lost_work(s.record, s.spec, s.state, calls[job_id])
             for job_id, s in suspects.items()}
    return {job_id: work for job_id, work in found.items() if work}


def resend_lost_work(client: redis.Redis, broker: redis.Redis, app: Celery, settings: Settings,
                     cleaner: lifecycle.Cleaner | None, now: float | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, LostWork]:
    """Send again what idle jobs lost from the broker (see the module's docstring); return it by
    job id. ``client`` holds the jobs' records, ``broker`` the queues; ``now`` is ``time.time()``.
    Does nothing while another worker holds :data:`LOCK_KEY`. Redis errors propagate."""
    suspects = _idle_jobs(client, settings, time.time() if now is None else now)
    if not suspects or not client.set(LOCK_KEY, "1", nx=True, ex=PASS_SECONDS):
        return {}
    try:
        first = _look(broker, settings, suspects)
        if not first:
            return {}
        sleep(SECOND_LOOK_SECONDS)
        second = _look(broker, settings, {job_id: suspects[job_id] for job_id in first})
        lost = {job_id: first[job_id] & second[job_id] for job_id in first if job_id in second}
        lost = {job_id: work for job_id, work in lost.items() if work}
        for job_id, work in lost.items():
            _send_again(app, settings, cleaner, suspects[job_id], work)
        return lost
    finally:
        # Until the next pass may start: what this one sent is on the broker by then.
        client.expire(LOCK_KEY, settings.restore_interval)


def _send_again(app: Celery, settings: Settings, cleaner: lifecycle.Cleaner | None, suspect: _Suspect,
                work: LostWork) -> None:
    record = suspect.record
    rounds = record.count_recovery()
    if rounds == 0:  # the record is gone
        return
    plural = "s" * (len(work.chunks) > 1)
    parts = ([f"the render task{plural} of chunk{plural} {describe_ranges(list(work.chunks))}"]
             if work.chunks else [])
    what = " and ".join(parts + ["the encode callback"] * work.encoder)
    if rounds > settings.max_deliveries:
        error = MessagesLost(
            f"the job's task messages vanished from the broker {rounds} times (last: {what}) "
            "and were sent again each time: workers keep dying while they take messages, "
            "someone keeps purging the queues, or the broker loses data (check its persistence "
            "and maxmemory settings); see the workers' logs")
        if lifecycle.end_job(record, error, cleaner):
            logger.warning("job %s failed: %s", record.job_id, error)
        return
    for chunk_no in work.chunks:
        chunk_message(app, settings, record.job_id, chunk_no, priority=0).apply_async()
    if work.encoder:
        encode_callback(app, settings, record.job_id, priority=0).apply_async()
    logger.warning("job %s: %s, lost from the broker, sent again (round %d of at most %d)",
                   record.job_id, what, rounds, settings.max_deliveries)
