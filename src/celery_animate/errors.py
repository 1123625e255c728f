"""Every exception celery-animate raises on purpose, under :class:`CeleryAnimateError`.

Each one that replaces a builtin error also derives from that builtin, so
``except ValueError`` around a ``make_video`` call written for parallel_animate
keeps catching bad arguments.
"""

from __future__ import annotations

from typing import Any


class CeleryAnimateError(Exception):
    """Base class of every error celery-animate raises on purpose."""


class ConfigurationError(CeleryAnimateError):
    """A setting or argument is wrong; the message says which and how to fix it."""


class InvalidArgument(CeleryAnimateError, ValueError):
    """An argument, or a value in a job, has the wrong type, shape or range; the message names it."""


class UnpackableError(CeleryAnimateError, TypeError):
    """A value that msgpack cannot carry; ``path`` says where it sits."""

    def __init__(self, where: str, path: str, value: Any):
        self.path = path
        self.value_type = type(value)
        super().__init__(
            f"{where}: {path} is a {type(value).__module__}.{type(value).__qualname__}, "
            "which cannot be sent to workers. Use numbers, strings, bytes, lists, tuples, "
            "dicts with string keys, None, or numpy arrays of a non-object dtype."
        )


class FrameIndexError(CeleryAnimateError, ValueError):
    """Frame indices that do not form ``0 .. n-1`` exactly once each."""


class FigureSizeChanged(CeleryAnimateError, RuntimeError):
    """The figure's pixel size changed between frames; a video needs one size."""


class AnimatorNotAllowed(CeleryAnimateError, PermissionError):
    """The animator's module is outside ``CELERY_ANIMATE_ALLOWED_ANIMATORS``."""


class OutputPathRefused(CeleryAnimateError, PermissionError):
    """An output path leaves ``CELERY_ANIMATE_OUTPUT_ROOT`` or cannot be written."""


class FrameTooLarge(CeleryAnimateError, ValueError):
    """A frame has more pixels than ``CELERY_ANIMATE_MAX_FRAME_PIXELS`` allows."""


class InvalidFrame(CeleryAnimateError, ValueError):
    """A stored frame cannot be read back: corrupt, or not what its header says."""


class FramesMissing(CeleryAnimateError, LookupError):
    """Frames the encoder needs are not in the frame store (evicted, or Redis lost them)."""


class WorkerLost(CeleryAnimateError, RuntimeError):
    """A task of the job was delivered again and again, its process dying each time."""


class MessagesLost(CeleryAnimateError, RuntimeError):
    """The job's task messages vanished from the broker again and again (see ``recovery``)."""


class TaskKilled(CeleryAnimateError, RuntimeError):
    """A task of the job was stopped from outside: a time limit, or ``revoke(terminate=True)``."""


class JobStalled(CeleryAnimateError, TimeoutError):
    """The job made no progress for ``CELERY_ANIMATE_STALL_TIMEOUT`` seconds."""


class DiskFull(CeleryAnimateError, OSError):
    """The video could not be written: its disk is full."""


class EncodeIncomplete(CeleryAnimateError, RuntimeError):
    """ffmpeg exited without writing every frame (or the file it wrote cannot be read)."""


class JobNotFound(CeleryAnimateError, LookupError):
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
