"""The encoder's tasks, on the encode (GPU) queue.

``stream_video`` is sent with the job and encodes frames in order as they
arrive; ``encode_video`` is the chord's callback and encodes only when the
streaming encoder did not (it never ran, stepped aside, or died). A lock per
job makes sure one encoder writes at a time.
"""

from __future__ import annotations

import contextlib
import resource
import time

import redis
from celery import shared_task

from .celery_app import ENCODE_TASK, STREAM_TASK
from .jobs import CANCELLED, DONE, ENCODING, FAILED, RENDERING, JobRecord, JobSpec
from .params import describe_ranges
from .pipeline import output_path
from .store import FrameStore
from .worker import delete_job_data, frame_store, job_record, job_spec, worker_settings

#: Seconds without a newly rendered frame after which a streaming encoder steps aside.
STALL_SECONDS = 5.0


class _EncodeAbandoned(Exception):
    """The job ended (failed, cancelled) or another encoder took over while we waited."""


class _FrameWaiter:
    """What an encoder does while the next frame is still being rendered.

    Keeps its lock alive, gives up when the job ended, and fails the job
    naming the missing frames once every chunk reported its frames stored
    but some are not there (evicted, or Redis lost them). A streaming
    encoder (``stall_after`` set) also gives up when rendering made no
    progress for that many seconds: it may be holding the very process the
    renderers need (a worker with one process for both queues), and the
    chord's callback will encode once every chunk is done.
    """

    def __init__(self, record: JobRecord, store: FrameStore, spec: JobSpec, lock,
                 stall_after: float | None, poll: float = 0.02):
        self.record, self.store, self.spec, self.lock, self.poll = record, store, spec, lock, poll
        self.stall_after = stall_after
        self._extended = time.monotonic()
        self._last_rendered = (-1, time.monotonic())

    def keep_lock(self) -> None:
        if time.monotonic() - self._extended > 2:
            try:
                self.lock.extend(self.lock.timeout, replace_ttl=True)
            except redis.exceptions.LockError:
                raise _EncodeAbandoned("another encoder took over") from None
            self._extended = time.monotonic()

    def __call__(self, next_index: int) -> None:
        self.keep_lock()
        progress = self.record.progress()
        if progress.state in (FAILED, CANCELLED):
            raise _EncodeAbandoned(progress.state)
        if progress.rendered >= progress.total:
            missing = self.store.missing(self.record.job_id, self.spec.n_frames)
            if missing:
                raise LookupError(
                    f"{len(missing)} of {self.spec.n_frames} frames are missing from the frame store "
                    f"(indices {describe_ranges(missing)}); were they evicted, or did Redis restart without "
                    "persistence? Submit the job again."
                )
            return
        if self.stall_after is not None:
            if progress.rendered != self._last_rendered[0]:
                self._last_rendered = (progress.rendered, time.monotonic())
            elif time.monotonic() - self._last_rendered[1] > self.stall_after:
                raise _EncodeAbandoned("rendering stalled; the chord's callback will encode")
        time.sleep(self.poll)


def _encode(task, job_id: str, streaming: bool) -> dict:
    """Encode ``job_id`` unless it ended or another live encoder holds its lock (then retry later).

    Frames are encoded in order as they arrive; the video is written to a
    temporary file and renamed into place; afterwards the job's frames are
    deleted. A ``streaming`` encoder gives up if rendering stalls (see
    :class:`_FrameWaiter`).
    """
    from .encode import StoredFrames, encode_frames, remove_partials

    record = job_record(job_id)
    state = record.state()
    if state is None:
        return {"skipped": "unknown job"}
    spec = job_spec(job_id)
    store = frame_store(spec.frame_store)
    if state in (DONE, FAILED, CANCELLED):
        delete_job_data(record, spec, store)
        return {"skipped": state}
    lock = record.encoder_lock()
    if not lock.acquire():
        # Someone is encoding, or was until it died: its lock then expires within seconds.
        raise task.retry(countdown=2)
    try:
        output = output_path(spec.output, worker_settings())
        remove_partials(output, job_id)
        record.reset_encoded()
        waiter = _FrameWaiter(record, store, spec, lock, stall_after=STALL_SECONDS if streaming else None)

        def encoded(n: int) -> None:
            record.add_encoded(n)
            waiter.keep_lock()

        frames = StoredFrames(store, job_id, spec.n_frames, wait=waiter)
        result = encode_frames(frames, output, spec.options, encoded, job_id)
        record.add_seconds({
            "store_get": frames.fetch_seconds, "wait_for_frames": frames.wait_seconds,
            "encode": result.encode_seconds - frames.fetch_seconds - frames.wait_seconds,
        })
        record.set_stat("encoder_peak_rss_mb",
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        record.finish(result)
    except _EncodeAbandoned as reason:
        return {"skipped": str(reason)}
    except Exception as exc:
        record.fail(exc)
        raise
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
        if record.state() in (DONE, FAILED, CANCELLED):
            delete_job_data(record, spec, store)
    return {"output": result.output, "frames": result.n_frames, "encoder": result.encoder}


@shared_task(name=STREAM_TASK, bind=True, max_retries=None)
def stream_video(self, job_id: str) -> dict:
    """Encode ``job_id`` while it renders: sent with the job, it waits for each next frame.

    Safe to run again after a crash: a finished job is left alone, and the
    crashed attempt's temporary file is removed.
    """
    return _encode(self, job_id, streaming=True)


@shared_task(name=ENCODE_TASK, bind=True, max_retries=None)
def encode_video(self, job_id: str) -> dict:
    """The chord's callback: every frame is rendered. Encode, unless the streaming encoder did.

    Fails the job, naming the missing indices, if any frame is absent; a video
    with missing or duplicated frames is never written.
    """
    job_record(job_id).transition(ENCODING, only_from=RENDERING)
    return _encode(self, job_id, streaming=False)
