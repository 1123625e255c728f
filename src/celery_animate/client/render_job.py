""":class:`RenderJob`, the handle a client holds on a submitted render."""

from __future__ import annotations

import json
import math
import numbers
import time
from pathlib import Path

import redis

from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.errors import InvalidArgument, JobCancelled, JobNotFinished, RenderFailed, WaitTimedOut
from celery_animate.job import lifecycle
from celery_animate.job.record import EndSignal, JobRecord
from celery_animate.options import Progress, RenderResult
from celery_animate.outputs import presigned_url
from celery_animate.paths import is_url
from celery_animate.states import CANCELLED, DONE, FAILED


class RenderJob:
    """A submitted render. Cheap to create from an id: ``RenderJob(job_id)``.

    ``progress()`` and ``wait()`` read the job's record in Redis, so they work
    from any process that has the same ``CELERY_RESULT_BACKEND``. Raises
    :class:`~celery_animate.errors.InvalidArgument` for an id that is not 32
    lowercase hex digits.
    """

    def __init__(self, job_id: str, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self._record = JobRecord(job_redis(self.settings), job_id, self.settings.job_ttl)
        self.id = self._record.job_id

    def __repr__(self) -> str:
        return f"RenderJob({self.id!r})"

    def progress(self) -> Progress:
        """Current state and counters. Raises :class:`JobNotFound` for an unknown id."""
        return self._record.progress()

    def stats(self) -> dict[str, float]:
        """Where the time went: seconds per stage summed over workers (``setup``, ``render``,
        ``store_put``, ``store_get``, ``wait_for_frames``, ``encode``), ``queue_wait`` (submit
        to first chunk started), ``encoder_peak_rss_mb``."""
        return self._record.stats()

    def poster(self) -> bytes | None:
        """The first frame as a PNG of at most 320 pixels a side, as soon as it is rendered (the
        job still running); None before that, or once the job's record expired."""
        return self._record.poster()

    def webhook_status(self) -> dict | None:
        """How the announcement of the job's end to its webhook went: ``{"state": ...}`` with
        state ``pending`` (not yet, or retrying: ``attempts`` and the last ``reason``),
        ``delivered`` (``http_status``, ``attempts``), ``failed`` (``reason``, ``attempts``,
        maybe ``http_status``) or ``refused`` (``reason``: the workers' settings do not allow
        the URL); None for a job without a webhook or whose record expired."""
        return self._record.announce_status("webhook")

    def on_done_status(self) -> dict | None:
        """How the job's ``on_done`` task was sent: ``{"state": "pending"}``, ``{"state": "sent",
        "task", "queue"}`` or ``{"state": "refused", "reason"}``; None for a job without one."""
        return self._record.announce_status("on_done")

    def wait(self, timeout: float | None = None, poll: float = 0.1) -> RenderResult:
        """Block until the job ends; return its :class:`RenderResult`.

        Reads the job's record every ``poll`` seconds, and at once when the job
        ends (its end is published to those waiting). Raises
        :class:`RenderFailed` (with the worker's exception type, message and
        traceback), :class:`JobCancelled`, or :class:`WaitTimedOut` (a ``TimeoutError``) after
        ``timeout`` seconds (the job keeps running); :class:`InvalidArgument` for a negative
        ``timeout`` or a ``poll`` that is not a positive number of seconds.
        """
        if timeout is not None and not (_is_number(timeout) and timeout >= 0):
            raise InvalidArgument(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        if not (_is_number(poll) and 0 < poll < math.inf):
            raise InvalidArgument(f"poll must be a positive number of seconds, got {poll!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._record.end_signal() as ended:
            while not self._progress_through_blips(deadline).finished:
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimedOut(f"job {self.id} still running after {timeout} s")
                ended.sleep(poll if deadline is None else min(poll, deadline - time.monotonic()))
        return self.result()

    def end_signal(self) -> EndSignal:
        """A subscription whose ``sleep(seconds)`` returns early when this job ends."""
        return self._record.end_signal()

    def _progress_through_blips(self, deadline: float | None) -> Progress:
        """:meth:`progress`, waiting out up to 30 s of Redis being unreachable (a restart)."""
        give_up = time.monotonic() + 30
        while True:
            try:
                return self.progress()
            except (redis.ConnectionError, redis.TimeoutError):
                now = time.monotonic()
                if now >= give_up or (deadline is not None and now >= deadline):
                    raise
                time.sleep(0.5)

    def result(self) -> RenderResult:
        """The result of a finished job; raises :class:`RenderFailed`, :class:`JobCancelled` or
        :class:`JobNotFinished` (a ``RuntimeError``) for a failed, cancelled or unfinished one."""
        state, result, error = self._record.ending()
        if state == DONE:
            return RenderResult(**json.loads(result))
        if state == FAILED:
            info = json.loads(error) if error else {"type": "Unknown", "message": "", "traceback": ""}
            raise RenderFailed(self.id, info["type"], info["message"], info["traceback"])
        if state == CANCELLED:
            raise JobCancelled(f"job {self.id} was cancelled")
        raise JobNotFinished(f"job {self.id} has not finished (state {state})")

    def url(self, expires: int = 3600) -> str:
        """Where to fetch the finished video from.

        For an object-store output (``s3://``, ``gs://``, ``az://``): a presigned
        HTTPS GET URL (plain HTTP only for an ``http://`` endpoint) valid for
        ``expires`` seconds (1 to 604800), signed with THIS client's credentials
        (the ``AWS_*``/``GOOGLE_*``/``AZURE_*`` variables of its environment, read
        into its settings; the workers' are never used). For a local output: its
        ``file://`` URL (``Path(output).as_uri()``), a file on the encode worker's
        machine. Raises what :meth:`result` raises for a job that did not finish
        (failed, cancelled, running), :class:`InvalidArgument` for a bad
        ``expires``, :class:`~celery_animate.errors.OutputAccessDenied` when this
        client has no credentials that can sign it.
        """
        output = self.result().output
        if is_url(output):
            return presigned_url(output, self.settings, expires)
        if isinstance(expires, bool) or not isinstance(expires, int) or expires < 1:
            raise InvalidArgument(f"expires must be a positive whole number of seconds, got {expires!r}")
        return Path(output).as_uri()

    def cancel(self) -> bool:
        """Ask workers to stop this job; True if it was still running.

        Chunks not yet started are skipped, running ones stop at their next
        frame, and the job's frames are deleted; ``wait()`` then raises
        :class:`JobCancelled`. False once the job ended, or once its video is
        being moved into place (it then finishes).
        """
        return lifecycle.end_job(self._record, lifecycle.CANCEL)


def _is_number(value: object) -> bool:
    """Whether ``value`` is a real number (numpy's too), not a bool and not NaN."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and not math.isnan(value)
