"""Encoding a job's whole video: the work behind the streaming encoder and the chord's callback.

The streaming encoder is sent with a job of one segment and encodes frames
in order as they arrive; the chord's callback encodes only when the
streaming encoder did not (it never ran, stepped aside, or died), or, for a
segmented job, joins the segments (:mod:`celery_animate.encode.segments`).
The job's encode lease (:class:`EncodeLease`) makes sure only one of them
publishes. Frames are encoded into this attempt's own temporary file, which
is renamed into place only while the lease is still ours and the job still
running; the job then ends, done, with its data removed.
"""

from __future__ import annotations

import contextlib
import resource
import time

import redis

from celery_animate.cache import FrameCache
from celery_animate.config import Settings
from celery_animate.encode.encoder import encode_frames
from celery_animate.encode.lease import EncodeLease
from celery_animate.encode.more_outputs import (
    check_outputs,
    publish_more,
    publish_stills,
    stills_only_result,
)
from celery_animate.encode.segments import encode_segmented
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.encode.waiter import FrameWaiter, progress_reporter
from celery_animate.errors import EncodeAbandoned, TryLater, WorkerLost
from celery_animate.formats import STILLS, format_of
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.paths import output_path
from celery_animate.stores import FrameStore

#: Seconds without a newly rendered frame after which a streaming encoder steps aside.
STALL_SECONDS = 5.0
#: Seconds before an encoder that found another holding the job's lease looks again: a live
#: holder keeps it, a dead one's lease expires within seconds.
LEASE_BUSY_SECONDS = 2.0


def encode_video(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
                 streaming: bool, cache: FrameCache | None = None) -> dict:
    """Encode the job's video and end the job as done; return a summary for the task's result.

    A ``streaming`` encoder gives up (:class:`EncodeAbandoned`) when rendering stalls
    (see :class:`FrameWaiter`). Raises :class:`TryLater` while another encoder holds the
    lease, :class:`EncodeAbandoned` when the job ends meanwhile or the lease is lost, and
    :class:`WorkerLost` when encoders of the job died ``settings.max_deliveries`` times.
    Any other exception is the job's failure, raised only while this encoder holds the lease.
    """
    stills_only = format_of(spec.output) == STILLS
    if streaming and stills_only:  # nothing to stream: the chord's callback publishes the stills
        return {"skipped": "stills only"}
    lease = EncodeLease(record)
    if not lease.acquire():
        raise TryLater(LEASE_BUSY_SECONDS, "another encoder holds the job's lease")
    try:
        deaths = record.begin_encode_attempt(lease.generation)
        if deaths >= settings.max_deliveries:
            raise WorkerLost(f"the encoder's process died {deaths} times while encoding this job "
                             "(killed, out of memory, or crashed in ffmpeg): see the encode "
                             "workers' logs")
        check_outputs(spec, settings)
        if stills_only:  # the render tasks kept them in the record: no video, nothing to encode
            started = time.monotonic()
            result = stills_only_result(publish_stills(record, spec, settings, lease),
                                        spec.options.fps, started)
            record.add_encoded(spec.n_frames)
            lifecycle.end_job(record, result, lifecycle.Cleaner(store, settings))
            return {"output": result.output, "frames": result.n_frames, "encoder": result.encoder}
        if spec.n_segments > 1:
            return encode_segmented(record, spec, settings, store, lease, cache)
        output = output_path(spec.output, settings)
        # Earlier generations can no longer publish: what they left is garbage.
        lifecycle.discard_stale_attempts(output, record.job_id, lease.generation)
        record.reset_encoded()
        waiter = FrameWaiter(record, store, spec.n_frames, lease.check,
                             stall_after=STALL_SECONDS if streaming else None)
        frames = StoredFrames(store, record.job_id, spec.n_frames, wait=waiter,
                              max_pixels=settings.max_frame_pixels)
        result = encode_frames(frames, output, spec.options, progress_reporter(record, record.add_encoded),
                               record.job_id, lease.generation, before_publish=lease.commit)
        result = publish_more(record, spec, settings, store, lease, result)
        record.add_seconds({
            "store_get": frames.fetch_seconds, "wait_for_frames": frames.wait_seconds,
            "encode": result.encode_seconds - frames.fetch_seconds - frames.wait_seconds,
        })
        record.set_stat("encoder_peak_rss_mb",
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        lifecycle.end_job(record, result, lifecycle.Cleaner(store, settings))
    except (EncodeAbandoned, TryLater, redis.ConnectionError, redis.TimeoutError):
        raise
    except Exception as exc:
        if not lease.held():  # an encoder that lost its lease has no say over the job
            raise EncodeAbandoned(f"the encode lease was lost while failing: {exc}") from exc
        raise
    finally:
        with contextlib.suppress(redis.RedisError):
            record.end_encode_attempt()
        lease.release()
    return {"output": result.output, "frames": result.n_frames, "encoder": result.encoder}
