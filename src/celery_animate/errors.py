"""Exceptions raised to users of celery-animate."""

from __future__ import annotations


class CeleryAnimateError(Exception):
    """Base class of every error celery-animate raises on purpose."""


class ConfigurationError(CeleryAnimateError):
    """A setting or argument is wrong; the message says which and how to fix it."""


class JobNotFound(CeleryAnimateError):
    """No job with this id (never submitted, or its record expired)."""


class JobCancelled(CeleryAnimateError):
    """The job was cancelled before its video was written."""


class RenderFailed(CeleryAnimateError):
    """The job failed on a worker.

    ``exc_type`` is the qualified name of the exception raised there (for
    example ``"ValueError"``), ``exc_message`` its message, and
    ``remote_traceback`` the worker's formatted traceback.
    """

    def __init__(self, job_id: str, exc_type: str, exc_message: str, remote_traceback: str = ""):
        self.job_id = job_id
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.remote_traceback = remote_traceback
        text = f"job {job_id} failed: {exc_type}: {exc_message}"
        if remote_traceback:
            text += f"\n\nWorker traceback:\n{remote_traceback}"
        super().__init__(text)
