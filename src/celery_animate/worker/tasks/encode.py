"""The encoder's tasks, on the encode (GPU) queue.

``stream_video`` is sent with a job of one segment and encodes frames in
order as they arrive; ``encode_video`` is the chord's callback and encodes
only when the streaming encoder did not (it never ran, stepped aside, or
died), or, for a segmented job, joins the segments (:mod:`.segments`). The
job's encode lease (:class:`EncodeLease`) makes sure only one of them publishes.
"""

from __future__ import annotations

import contextlib
import resource

import redis
from celery import shared_task

from celery_animate.encode.encoder import encode_frames
from celery_animate.encode.lease import EncodeLease
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.encode.waiter import EncodeAbandoned, FrameWaiter, progress_reporter
from celery_animate.errors import InvalidArgument, WorkerLost
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.paths import output_path, remove_partials
from celery_animate.states import TERMINAL_STATES
from celery_animate.worker import state as worker_state
from celery_animate.worker.app import ENCODE_TASK, STREAM_TASK
from celery_animate.worker.tasks.render import REDIS_BLIPS, redis_backoff
from celery_animate.worker.tasks.segments import SegmentNotReady, encode_segmented, end_segments

#: Seconds without a newly rendered frame after which a streaming encoder steps aside.
STALL_SECONDS = 5.0


def _encode(task, job_id: str, streaming: bool) -> dict:
    """Encode ``job_id`` unless it ended or another live encoder holds its lease (then retry later).

    Frames are encoded in order as they arrive into this attempt's own
    temporary file, which is renamed into place only while the lease is
    still ours and the job still running; afterwards the job's data is
    cleaned up. A ``streaming`` encoder gives up if rendering stalls (see
    :class:`FrameWaiter`). Waits out Redis connection errors with backoff.
    """
    record = worker_state.job_record(job_id)
    try:
        return _encode_job(task, record, streaming)
    except REDIS_BLIPS as exc:
        raise task.retry(exc=exc, countdown=redis_backoff(task)) from exc


def _encode_job(task, record: JobRecord, streaming: bool) -> dict:
    settings = worker_state.settings()
    state = record.state()
    if state is None:
        return {"skipped": "unknown job"}
    try:
        spec = worker_state.job_spec(record.job_id)
    except InvalidArgument as exc:  # a spec this worker cannot accept: the job cannot be encoded
        lifecycle.fail(record, exc)
        raise
    store = worker_state.frame_store()
    if state in TERMINAL_STATES:
        end_segments(record, spec)
        return {"skipped": state}
    lease = EncodeLease(record)
    if not lease.acquire():
        # Someone is encoding, or was until it died: its lease then expires within seconds.
        raise task.retry(countdown=2)
    try:
        deaths = record.begin_encode_attempt(lease.generation)
        if deaths >= settings.max_deliveries:
            raise WorkerLost(f"the encoder's process died {deaths} times while encoding this job "
                             "(killed, out of memory, or crashed in ffmpeg): see the encode "
                             "workers' logs")
        if spec.n_segments > 1:
            return encode_segmented(record, spec, lease)
        output = output_path(spec.output, settings)
        # Earlier generations can no longer publish: what they left is garbage.
        remove_partials(output, record.job_id, below_generation=lease.generation)
        record.reset_encoded()
        waiter = FrameWaiter(record, store, spec.n_frames, lease.check,
                             stall_after=STALL_SECONDS if streaming else None)
        frames = StoredFrames(store, record.job_id, spec.n_frames, wait=waiter,
                              max_pixels=settings.max_frame_pixels)
        result = encode_frames(frames, output, spec.options, progress_reporter(record, record.add_encoded),
                               record.job_id, lease.generation, before_publish=lease.commit)
        record.add_seconds({
            "store_get": frames.fetch_seconds, "wait_for_frames": frames.wait_seconds,
            "encode": result.encode_seconds - frames.fetch_seconds - frames.wait_seconds,
        })
        record.set_stat("encoder_peak_rss_mb",
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        lifecycle.finish(record, result)
    except EncodeAbandoned as reason:
        return {"skipped": str(reason)}
    except SegmentNotReady as wait:  # another encoder is finishing a segment
        raise task.retry(countdown=wait.countdown) from None
    except REDIS_BLIPS:
        raise
    except Exception as exc:
        if lease.held():  # an encoder that lost its lease has no say over the job
            lifecycle.fail(record, exc)
        raise
    finally:
        with contextlib.suppress(redis.RedisError):
            record.end_encode_attempt()
        lease.release()
        if record.state() in TERMINAL_STATES:
            end_segments(record, spec)
    return {"output": result.output, "frames": result.n_frames, "encoder": result.encoder}


@shared_task(name=STREAM_TASK, bind=True, max_retries=None)
def stream_video(self, job_id: str) -> dict:
    """Encode ``job_id`` while it renders: sent with the job, it waits for each next frame.

    Safe to run again after a crash: a finished job is left alone.
    """
    return _encode(self, job_id, streaming=True)


@shared_task(name=ENCODE_TASK, bind=True, max_retries=None)
def encode_video(self, job_id: str) -> dict:
    """The chord's callback: every frame is rendered. Encode, unless the streaming encoder did.

    Fails the job, naming the missing indices, if any frame is absent; a video
    with missing or duplicated frames is never written.
    """
    return _encode(self, job_id, streaming=False)
