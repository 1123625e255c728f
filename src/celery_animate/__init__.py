"""celery-animate: render matplotlib animations to video on a Celery cluster.

``from celery_animate import Animator`` is a drop-in for ``parallel_animate``;
``celery -A celery_animate worker`` finds the Celery :data:`app` here.

The package is layered: the "Layers" table in docs/architecture.md, which ``tests/unit/test_layers.py``
enforces, says which modules each layer holds and what it may import.
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
        "AnimatorNotAllowed", "AnimatorNotImportable", "CeleryAnimateError", "ConfigurationError",
        "DiskFull", "EncodeIncomplete", "FigureSizeChanged", "FrameIndexError", "FramesMissing",
        "FrameStoreFull", "FrameTooLarge", "InvalidArgument", "InvalidFrame", "JobCancelled", "JobNotFound",
        "JobStalled", "MessagesLost", "OutputPathRefused", "RenderFailed", "TaskKilled", "UnpackableError",
        "WorkerLost", "EmbeddedClusterFailed", "FileMissing", "IncompatibleDependency",
        "InvalidAnimator", "JobNotFinished", "MissingDependency", "ParamsExpired", "WaitTimedOut")},
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
        AnimatorNotImportable,
        CeleryAnimateError,
        ConfigurationError,
        DiskFull,
        EmbeddedClusterFailed,
        EncodeIncomplete,
        FigureSizeChanged,
        FileMissing,
        FrameIndexError,
        FramesMissing,
        FrameStoreFull,
        FrameTooLarge,
        IncompatibleDependency,
        InvalidAnimator,
        InvalidArgument,
        InvalidFrame,
        JobCancelled,
        JobNotFinished,
        JobNotFound,
        JobStalled,
        MessagesLost,
        MissingDependency,
        OutputPathRefused,
        ParamsExpired,
        RenderFailed,
        TaskKilled,
        UnpackableError,
        WaitTimedOut,
        WorkerLost,
    )
    from celery_animate.options import Progress, RenderResult
    from celery_animate.params import IndexedFrameParams
    from celery_animate.worker.app import app, create_app

__version__ = "0.1.0"

__all__ = [
    "Animator",
    "AnimatorNotAllowed",
    "AnimatorNotImportable",
    "CeleryAnimateError",
    "ConfigurationError",
    "DiskFull",
    "EmbeddedCluster",
    "EmbeddedClusterFailed",
    "EncodeIncomplete",
    "FigureSizeChanged",
    "FileMissing",
    "FrameIndexError",
    "FrameStoreFull",
    "FrameTooLarge",
    "FramesMissing",
    "IncompatibleDependency",
    "IndexedFrameParams",
    "InvalidAnimator",
    "InvalidArgument",
    "InvalidFrame",
    "JobCancelled",
    "JobNotFinished",
    "JobNotFound",
    "JobStalled",
    "MessagesLost",
    "MissingDependency",
    "OutputPathRefused",
    "ParamsExpired",
    "Progress",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "Settings",
    "TaskKilled",
    "UnpackableError",
    "WaitTimedOut",
    "WorkerLost",
    "app",
    "create_app",
]
