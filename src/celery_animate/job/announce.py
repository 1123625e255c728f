"""Announcing a job's end: its ``on_done`` task sent once, its webhook POSTed, signed, with retries.

A job submitted with ``on_done`` or ``webhook`` has those fields in its
record; the ``transition`` script lists it in :data:`keys.ANNOUNCE_JOBS` when
it ends (done, failed or cancelled: :func:`celery_animate.job.lifecycle.end_job`).
Every worker's watchdog calls :func:`announce_ended` about once a second: the
one worker whose claim takes a job announces it (:func:`announce`), then takes
it off the list:

* ``on_done``, checked again (the record is a stranger's word: a dotted
  task name that is not the package's or Celery's own, a plain queue name,
  json args and kwargs of bounded size, nothing else), is sent by name to its
  queue with the end's payload as first argument, serialised as JSON. It is
  never looked up or run here: a forged one does no more than its forger
  could by sending that message to the broker directly.
* ``webhook``, checked against this worker's own ``CELERY_ANIMATE_WEBHOOK_ALLOW``,
  becomes a ``celery_animate.deliver_webhook`` task on the encode queue, which
  POSTs the payload signed with ``CELERY_ANIMATE_WEBHOOK_SECRET``
  (:func:`deliver_webhook`) and, while the receiver is down or answers 5xx,
  is sent again after 2, 4, 8, 16 and 32 s (a countdown: no worker process
  waits meanwhile).

How each went is kept in the record (``on_done_status``, ``webhook_status``:
pending, sent, delivered with the HTTP status, failed with the reason, or
refused with the reason); the job's own state never changes because of it.
A worker that dies while announcing leaves its claim to lapse (after
:data:`CLAIM_SECONDS`), and another worker announces the job: what the dead
one recorded as sent is not sent again, so only a death in the instant
between sending and recording it sends twice. A webhook delivery already
recorded as final is never repeated; receivers can tell a repeat by its
``job_id``.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery

from celery_animate import announcement, keys
from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, OutputPathRefused, OutputStoreError
from celery_animate.job.messages import WEBHOOK_TASK
from celery_animate.job.record import JobRecord
from celery_animate.lua import run_script
from celery_animate.outputs import presigned_url
from celery_animate.paths import is_url
from celery_animate.states import DONE, TERMINAL_STATES

logger = logging.getLogger(__name__)

#: Seconds before each retry of a webhook whose receiver is down or answered 408/425/429/5xx:
#: five retries, six attempts in all, over about a minute.
RETRY_COUNTDOWNS = (2, 4, 8, 16, 32)
#: Bytes of a receiver's response body read, at most (the rest is dropped unread).
MAX_RESPONSE_BYTES = 4096
#: Jobs announced in one :func:`announce_ended` call, at most.
ANNOUNCE_BATCH = 100
#: Seconds a worker's claim on announcing a job lasts: if it has not finished by then (it died,
#: or the broker failed) another worker announces the job.
CLAIM_SECONDS = 30
#: Seconds the presigned URL in an announcement stays valid (a day; RenderJob.url() makes more).
URL_SECONDS = 86400
#: HTTP statuses worth another attempt besides 5xx.
_TRANSIENT = {408, 425, 429}


def output_url(output: str | None, settings: Settings) -> str | None:
    """The URL an announcement gives for ``output``: for an object (``s3://``, ``gs://``,
    ``az://``) a GET URL presigned with this worker's credentials, valid for
    :data:`URL_SECONDS`; None for a local path, or when this worker cannot sign one (the
    announcement still goes out, with the reason logged)."""
    if not output or not is_url(output):
        return None
    try:
        return presigned_url(output, settings, URL_SECONDS)
    except (InvalidArgument, OutputPathRefused, OutputStoreError) as exc:
        logger.warning("no presigned URL for %s: %s", output, exc)
        return None


def payload_of(record: JobRecord, settings: Settings) -> dict[str, Any] | None:
    """The announcement of the job's end (:func:`celery_animate.announcement.end_payload`) from
    its record; None while the job has not ended or once its record is gone."""
    fields = record.client.hmget(record.key, "state", "output", "result", "error", "created",
                                 "finished", "total")
    state, output, result, error, created, finished, total = (
        value.decode(errors="replace") if value is not None else None for value in fields)
    if state not in TERMINAL_STATES:
        return None
    n_frames = _number(total)
    if state == DONE and result:
        try:
            done = json.loads(result)
            output, n_frames = str(done.get("output", output)), _number(done.get("n_frames", n_frames))
        except (ValueError, AttributeError):
            pass
    try:
        error_info = json.loads(error) if error else None
    except ValueError:
        error_info = None
    seconds = max(0.0, _number(finished) - _number(created)) if finished and created else 0.0
    return announcement.end_payload(record.job_id, state, output, output_url(output, settings),
                                    int(n_frames), seconds,
                                    error_info if isinstance(error_info, dict) else None)


def _number(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0


# -- from the list to the broker --------------------------------------------------------------
def announce_ended(client: redis.Redis, app: Celery, settings: Settings) -> list[str]:
    """Claim the ended jobs due on :data:`keys.ANNOUNCE_JOBS` (``claim_announcements.lua``:
    atomically, so each claim goes to one worker), :func:`announce` each, and take it off the
    list; return their ids. Ids that are not job ids are dropped. Redis and broker errors
    propagate: the claims this call did not finish lapse after :data:`CLAIM_SECONDS` and are
    taken again, as are those of a worker that died while announcing."""
    announced = []
    claimed = run_script(client, "claim_announcements", [keys.ANNOUNCE_JOBS],
                         [CLAIM_SECONDS, ANNOUNCE_BATCH])
    for raw in claimed:
        try:
            record = JobRecord(client, raw.decode(), settings.job_ttl)
        except (InvalidArgument, UnicodeDecodeError):
            client.zrem(keys.ANNOUNCE_JOBS, raw)
            continue
        announce(record, app, settings)
        client.zrem(keys.ANNOUNCE_JOBS, raw)
        announced.append(record.job_id)
    return announced


def announce(record: JobRecord, app: Celery, settings: Settings) -> None:
    """Send the ended job's ``on_done`` task and its webhook's delivery task, each if asked for
    and still pending, after checking them again; record a refusal instead of sending what does
    not pass. Nothing happens for a job that has not ended or whose record is gone."""
    payload = payload_of(record, settings)
    if payload is None:
        return
    on_done, webhook = record.announcements()
    if on_done is not None and _pending(record, "on_done"):
        try:
            target = announcement.check_on_done(on_done)
        except InvalidArgument as exc:
            _refuse(record, "on_done", str(exc))
        else:
            send_on_done(app, target, payload)
            record.set_announce_status("on_done", {"state": "sent", "task": target.task,
                                                   "queue": target.queue, "at": time.time()})
    if webhook is not None and _pending(record, "webhook"):
        try:
            check_webhook(webhook, settings)
        except InvalidArgument as exc:
            _refuse(record, "webhook", str(exc))
        else:
            app.send_task(WEBHOOK_TASK, args=(record.job_id, 0), add_to_parent=False)
            # Still pending until its first attempt; marked so that a claim taken again after
            # this worker died does not send a second delivery task.
            record.set_announce_status("webhook", {"state": "pending", "queued": True})


def send_on_done(app: Celery, target: announcement.OnDone, payload: dict[str, Any]) -> None:
    """Send ``target``'s task by name to its queue, ``payload`` first, as JSON: only a message,
    with no link, no other option, never pickle; the task is never run or looked up here."""
    app.send_task(target.task, args=(payload, *target.args), kwargs=dict(target.kwargs or {}),
                  queue=target.queue, serializer="json", add_to_parent=False)


def check_webhook(raw: bytes | str, settings: Settings) -> str:
    """The record's webhook URL if this worker may POST to it with its own settings (allowed
    prefixes, a secret); else :class:`InvalidArgument` saying why."""
    try:
        url = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InvalidArgument("the webhook URL is not UTF-8") from None
    url = announcement.check_webhook_url(url, settings.webhook_allow)
    if not settings.webhook_secret:
        raise InvalidArgument("this worker has no CELERY_ANIMATE_WEBHOOK_SECRET to sign webhooks with")
    return url


def _pending(record: JobRecord, kind: str) -> bool:
    """Whether announcing by ``kind`` is still to be sent (a queued webhook delivery is not)."""
    status = record.announce_status(kind)
    return status is None or (status["state"] == "pending" and not status.get("queued"))


def _refuse(record: JobRecord, kind: str, reason: str) -> None:
    logger.warning("job %s: %s refused: %s", record.job_id, kind, reason)
    record.set_announce_status(kind, {"state": "refused", "reason": reason, "at": time.time()})


# -- the webhook's delivery ----------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """What one webhook attempt came to: the ``status`` recorded, and ``retry_in`` seconds before
    the next attempt (None: no more attempts)."""

    status: dict[str, Any] | None
    retry_in: float | None = None


def deliver_webhook(record: JobRecord, settings: Settings, attempt: int) -> Delivery:
    """POST the ended job's announcement to its webhook, signed; ``attempt`` counts from 0.

    Records the outcome in the record's ``webhook_status`` and returns it with, for a receiver
    that could not be reached, timed out, or answered 408/425/429/5xx, the countdown of the next
    attempt (while :data:`RETRY_COUNTDOWNS` lasts; then ``failed``). A 2xx is ``delivered``; a
    redirect (never followed) or another 4xx is ``failed`` at once; a URL this worker's settings
    do not allow is ``refused``. A delivery already final (a redelivered message) is not
    repeated. Redis errors propagate; HTTP errors never do.
    """
    status = record.announce_status("webhook")
    if status is not None and status["state"] != "pending":
        return Delivery(status)
    payload = payload_of(record, settings)
    _, raw_url = record.announcements()
    if payload is None or raw_url is None:
        return Delivery(None)  # the record is gone (or forged without an end): nothing to say
    try:
        url = check_webhook(raw_url, settings)
    except InvalidArgument as exc:
        _refuse(record, "webhook", str(exc))
        return Delivery(record.announce_status("webhook"))
    attempts = attempt + 1
    try:
        code = post_signed(url, announcement.body_of(payload), settings.webhook_secret or "",
                           settings.webhook_timeout)
    except (OSError, http.client.HTTPException) as exc:
        code, reason = None, f"{type(exc).__name__}: {exc}"[:300]
    else:
        reason = f"HTTP {code}"
    if code is not None and 200 <= code < 300:
        status = {"state": "delivered", "http_status": code, "attempts": attempts, "at": time.time()}
        record.set_announce_status("webhook", status)
        return Delivery(status)
    status = {"state": "failed", "reason": reason, "attempts": attempts, "at": time.time()}
    if code is not None:
        status["http_status"] = code
        if 300 <= code < 400:
            status["reason"] = f"HTTP {code}: a redirect, which is not followed"
    transient = code is None or code >= 500 or code in _TRANSIENT
    if transient and attempt < len(RETRY_COUNTDOWNS):
        status.update(state="pending", queued=True)  # its retry is on its way
        record.set_announce_status("webhook", status)
        return Delivery(status, RETRY_COUNTDOWNS[attempt])
    logger.warning("job %s: webhook failed after %d attempts: %s", record.job_id, attempts,
                   status["reason"])
    record.set_announce_status("webhook", status)
    return Delivery(status)


def post_signed(url: str, body: str, secret: str, timeout: float, now: float | None = None) -> int:
    """POST ``body`` (JSON) to ``url`` with the timestamp and signature headers; return the HTTP
    status. Follows no redirect, reads at most :data:`MAX_RESPONSE_BYTES` of the response, and
    gives up after ``timeout`` seconds of any one connect, send or read (``TimeoutError``). Raises
    ``OSError`` (refused, unreachable, TLS) and ``http.client.HTTPException`` (not HTTP)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    stamp = int(time.time() if now is None else now)
    headers = {"Content-Type": "application/json", "User-Agent": "celery-animate",
               announcement.TIMESTAMP_HEADER: str(stamp),
               announcement.SIGNATURE_HEADER: announcement.sign(secret, stamp, body)}
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body.encode(), headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status
    finally:
        connection.close()

