"""celery-animate: render matplotlib animations to video on a Celery cluster.

``from celery_animate import Animator`` is a drop-in for ``parallel_animate``;
``celery -A celery_animate worker`` finds the Celery :data:`app` here.

The package is layered; each module imports only from the layers below it:

1. values: ``errors``, ``config``, ``states``, ``ids``, ``wire`` (msgpack + numpy),
   ``ffmpeg_args``, ``options``, ``params``, ``frames``, ``paths``, ``base`` (the animator contract)
2. storage: ``connection``, ``stores/`` (Redis, directory, memory), ``record``
   (a job's hash), ``lifecycle`` (the only place that changes state or deletes
   data, with its scripts in ``lua/``), ``spec``
3. work: ``loading`` (animators over the wire), ``render`` (figures, the frame
   loop), ``incremental`` (automatic blitting), ``extents`` (where an artist
   paints), ``paint_order`` (what a full draw paints), ``encode/`` (the encoder;
   ``pvio_adapter`` is the one module that knows parallel-video-io's internals),
   ``watchdog``, ``worker_state``
4. Celery: ``celery_app`` (the app, routes, task names), ``tasks/`` (render, encode,
   periodic, probe)
5. clients: ``job`` (:class:`RenderJob`), ``submit``, ``serial``, ``progress``,
   ``embedded/`` (private Redis, forked worker), ``client``, ``animator``
6. commands: ``doctor``, ``commands``, ``cli``
"""

from importlib import import_module
from typing import TYPE_CHECKING

#: Where each public name lives. They are imported on first use (PEP 562), so that
#: ``celery-animate --help`` and a web app that only enqueues do not pay for matplotlib
#: and Celery at import time.
_EXPORTS = {
    "Animator": "client.animator",
    "app": "worker.app",
    "create_app": "worker.app",
    "Settings": "config",
    "EmbeddedCluster": "client.embedded.cluster",
    "RenderJob": "client.render_job",
    "Progress": "options",
    "RenderResult": "options",
    "IndexedFrameParams": "params",
    **{name: "errors" for name in (
        "AnimatorNotAllowed", "CeleryAnimateError", "ConfigurationError", "DiskFull",
        "EncodeIncomplete", "FigureSizeChanged", "FrameIndexError", "FramesMissing",
        "FrameTooLarge", "InvalidArgument", "InvalidFrame", "JobCancelled", "JobNotFound",
        "JobStalled", "MessagesLost", "OutputPathRefused", "RenderFailed", "TaskKilled", "UnpackableError",
        "WorkerLost")},
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'celery_animate' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from celery_animate.client.animator import Animator
    from celery_animate.client.embedded.cluster import EmbeddedCluster
    from celery_animate.client.render_job import RenderJob
    from celery_animate.config import Settings
    from celery_animate.errors import (
        AnimatorNotAllowed,
        CeleryAnimateError,
        ConfigurationError,
        DiskFull,
        EncodeIncomplete,
        FigureSizeChanged,
        FrameIndexError,
        FramesMissing,
        FrameTooLarge,
        InvalidArgument,
        InvalidFrame,
        JobCancelled,
        JobNotFound,
        JobStalled,
        MessagesLost,
        OutputPathRefused,
        RenderFailed,
        TaskKilled,
        UnpackableError,
        WorkerLost,
    )
    from celery_animate.options import Progress, RenderResult
    from celery_animate.params import IndexedFrameParams
    from celery_animate.worker.app import app, create_app

__version__ = "0.1.0"

__all__ = [
    "Animator",
    "AnimatorNotAllowed",
    "CeleryAnimateError",
    "ConfigurationError",
    "DiskFull",
    "EmbeddedCluster",
    "EncodeIncomplete",
    "FigureSizeChanged",
    "FrameIndexError",
    "FrameTooLarge",
    "FramesMissing",
    "IndexedFrameParams",
    "InvalidArgument",
    "InvalidFrame",
    "JobCancelled",
    "JobNotFound",
    "JobStalled",
    "MessagesLost",
    "OutputPathRefused",
    "Progress",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "Settings",
    "TaskKilled",
    "UnpackableError",
    "WorkerLost",
    "app",
    "create_app",
]
