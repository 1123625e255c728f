"""The encode side's tasks, on the encode (GPU) queue: the streaming encoder, the chord's
callback, and one segment's encoder (see :mod:`celery_animate.encode.video` and
:mod:`celery_animate.encode.segments`)."""

from __future__ import annotations

import logging

from celery import shared_task

from celery_animate.encode.segments import PAUSE_SECONDS
from celery_animate.encode.segments import encode_segment as encode_segment_frames
from celery_animate.encode.video import encode_video as encode_job_video
from celery_animate.errors import EncodeAbandoned, SegmentYielded, TryLater
from celery_animate.job.messages import ENCODE_TASK, SEGMENT_TASK, STREAM_TASK
from celery_animate.worker.tasks.base import JobTask, message_priority

logger = logging.getLogger(__name__)


class EncodeTask(JobTask):
    """An encode worker sees the frame store and the output directory: it removes an ended
    job's data itself."""

    removes_data = True


@shared_task(base=EncodeTask, name=STREAM_TASK, bind=True)
def stream_video(self: EncodeTask, job_id: str) -> dict:
    """Encode ``job_id`` while it renders: sent with the job, it waits for each next frame.

    Safe to run again after a crash: a finished job is left alone.
    """
    job = self.running_job(job_id)
    return encode_job_video(job.record, job.spec, job.settings, job.store, streaming=True,
                            cache=job.cache)


@shared_task(base=EncodeTask, name=ENCODE_TASK, bind=True)
def encode_video(self: EncodeTask, job_id: str) -> dict:
    """The chord's callback: every frame is rendered. Encode, unless the streaming encoder did,
    or join the segments of a segmented job.

    Fails the job, naming the missing indices, if any frame is absent; a video
    with missing or duplicated frames is never written.
    """
    job = self.running_job(job_id)
    return encode_job_video(job.record, job.spec, job.settings, job.store, streaming=False,
                            cache=job.cache)


@shared_task(base=EncodeTask, name=SEGMENT_TASK, bind=True)
def encode_segment(self: EncodeTask, job_id: str, segment: int) -> dict:
    """Encode segment ``segment`` of ``job_id`` once its frames are rendered, then drop them.

    Until then it sends itself again later, holding no worker slot. Safe to run
    again: a finished segment is left alone. Fails the job on an encoder that
    differs from the job's.
    """
    job = self.running_job(job_id)
    try:
        return encode_segment_frames(job.record, job.spec, job.settings, job.store, segment,
                                     message_priority(self), job.cache)
    except SegmentYielded:
        logger.info("segment %s of job %s gave its encode process to another job's encoder",
                    segment, job_id)
        raise
    except EncodeAbandoned:
        self.running_job(job_id)  # JobEnded if the job ended: then skipped, its data removed
        # It lost its lease to another encoder, which may die: look again later.
        raise TryLater(PAUSE_SECONDS, f"segment {segment}'s lease was taken over") from None
