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


class MissingDependency(ConfigurationError, ImportError):
    """A package the work needs here is not installed; the message says which extra to install."""


class IncompatibleDependency(ConfigurationError, RuntimeError):
    """An installed package is a version celery-animate cannot work with; the message names the one
    that works."""


class FileMissing(CeleryAnimateError, FileNotFoundError):
    """A file an argument names (an animator's ``.py`` file), or a program the call needs
    (``redis-server``), does not exist; the message says what to do."""


class EmbeddedClusterFailed(CeleryAnimateError, RuntimeError):
    """The private Redis or a worker of an embedded cluster did not start, or exited."""


class InvalidArgument(CeleryAnimateError, ValueError):
    """An argument, or a value in a job, has the wrong type, shape or range; the message names it."""


class UnpackableError(CeleryAnimateError, TypeError):
    """A value that msgpack cannot carry; ``path`` says where it sits."""

    def __init__(self, where: str, path: str, value: Any, hint: str = ""):
        self.where = where
        self.path = path
        self.value = value
        self.value_type = type(value)
        text = (
            f"{where}: {path} is a {type(value).__module__}.{type(value).__qualname__}, "
            "which cannot be sent to workers. Use numbers, strings, bytes, lists, tuples, "
            "dicts with string keys, None, or numpy arrays of a non-object dtype."
        )
        super().__init__(f"{text} {hint}" if hint else text)


class InvalidAnimator(CeleryAnimateError, TypeError):
    """The animator breaks its contract: ``setup()`` returned no Figure, or ``animated_artists()``
    returned what is not an artist of that figure."""


class FrameIndexError(CeleryAnimateError, ValueError):
    """Frame indices that do not form ``0 .. n-1`` exactly once each."""


class FigureSizeChanged(CeleryAnimateError, RuntimeError):
    """The figure's pixel size changed between frames; a video needs one size."""


class AnimatorNotAllowed(CeleryAnimateError, PermissionError):
    """The animator's module is outside ``CELERY_ANIMATE_ALLOWED_ANIMATORS``."""


class AnimatorNotImportable(CeleryAnimateError, ImportError):
    """A worker cannot import the animator's class: its module is not on the worker's path, a
    module it imports is not installed there, or the class is not in it; the message says which."""


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


class FrameStoreFull(CeleryAnimateError, OSError):
    """A frame or segment could not be stored: the frame store's disk is full."""


class EncodeIncomplete(CeleryAnimateError, RuntimeError):
    """ffmpeg exited without writing every frame (or the file it wrote cannot be read)."""


class OutputStoreError(CeleryAnimateError, OSError):
    """An object store did not take the video (nothing was written at its URL)."""


class OutputAccessDenied(OutputStoreError, PermissionError):
    """The object store refused the credentials (wrong keys, or no right to the bucket)."""


class OutputBucketMissing(OutputStoreError, FileNotFoundError):
    """The output URL's bucket does not exist."""


class OutputUploadFailed(OutputStoreError, ConnectionError):
    """The upload of the video failed: the object store could not be reached, or stopped."""


class JobNotFound(CeleryAnimateError, LookupError):
    """No job with this id (never submitted, or its record expired)."""


class ParamsExpired(CeleryAnimateError, LookupError):
    """The params staged for a chunk of the job expired from Redis before a worker read them."""


class JobNotFinished(CeleryAnimateError, RuntimeError):
    """The result of a job that is still running was asked for."""


class WaitTimedOut(CeleryAnimateError, TimeoutError):
    """``RenderJob.wait(timeout)`` gave up waiting; the job itself keeps running."""


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


# -- control flow inside the tasks: never seen by a caller ---------------------------------------
class JobEnded(CeleryAnimateError):
    """A task's job ended, or its record is gone: the task has nothing to do (not an error)."""


class EncodeAbandoned(CeleryAnimateError):
    """An encoder steps aside: its job ended (failed, cancelled) or another encoder took over.

    Not an error of the job: the task that gets it ends quietly. pvio would
    answer it, as any exception during an NVENC attempt, by starting over with
    libx264; :mod:`celery_animate.encode.pvio_adapter` makes it stop instead.
    """


class TryLater(CeleryAnimateError):
    """An encode cannot go on in this worker slot now; its task sends itself again in
    ``countdown`` seconds (another encoder holds the lease, a segment's frames are not all
    rendered, another encoder is finishing a segment)."""

    def __init__(self, countdown: float, reason: str = ""):
        super().__init__(reason or f"try again in {countdown} s")
        self.countdown = countdown


class SegmentYielded(TryLater):
    """A segment's encode stopped to give its encode process to another job's encoder waiting
    ahead of it; it is sent again at once, to the back of its priority."""

    def __init__(self, segment: int):
        super().__init__(0.0, f"segment {segment} gave its encode process to another job")
