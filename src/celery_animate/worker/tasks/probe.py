"""The encoder probe ``celery-animate doctor`` sends to the encode queue."""

from __future__ import annotations

from celery import shared_task

from celery_animate.encode.pvio_adapter import encoder_capabilities
from celery_animate.job.messages import PROBE_TASK


@shared_task(name=PROBE_TASK)
def probe_encoder() -> dict:
    """Runs on an encode worker: is parallel-video-io there, and can it use NVENC?"""
    return encoder_capabilities()
