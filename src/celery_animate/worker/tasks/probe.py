"""The probes ``celery-animate doctor`` sends: the encoder's to the encode queue, the animator's
(can a render worker import it?) to the render queue."""

from __future__ import annotations

import os
import socket
import sys

from celery import shared_task

from celery_animate.encode.pvio_adapter import encoder_capabilities
from celery_animate.job.messages import PROBE_TASK
from celery_animate.render.loading import import_animator_class
from celery_animate.worker import state as worker_state

#: The animator probe's task name; ``doctor --animator`` sends it to the render queue by name.
ANIMATOR_PROBE_TASK = "celery_animate.probe_animator"


@shared_task(name=PROBE_TASK)
def probe_encoder() -> dict:
    """Runs on an encode worker: is parallel-video-io there, and can it use NVENC?"""
    return encoder_capabilities()


@shared_task(name=ANIMATOR_PROBE_TASK)
def probe_animator(path: str) -> dict:
    """Runs on a render worker: import the animator ``path`` (``module:Class``) as a job's chunk
    would, allowlist first; return ``ok``, this machine's ``host`` and ``cwd``, and the module's
    ``file`` or the ``error`` that a job would fail with."""
    found = {"host": socket.gethostname(), "cwd": os.getcwd()}
    try:
        cls = import_animator_class(path, worker_state.settings().allowed_animators)
    except Exception as exc:  # what a job would fail with, reported instead
        return {**found, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {**found, "ok": True, "file": getattr(sys.modules.get(cls.__module__), "__file__", None)}
