"""The render side: ``render_chunk`` (the chord's header) and ``cleanup_job`` (its error callback)."""

from __future__ import annotations

import time

import redis
from celery import shared_task
from celery.exceptions import Retry, SoftTimeLimitExceeded

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, TaskKilled, WorkerLost
from celery_animate.frames import pack_frame
from celery_animate.job import lifecycle
from celery_animate.job.spec import JobSpec
from celery_animate.job.window import pause
from celery_animate.params import describe_ranges
from celery_animate.render.frame_loop import render_frames
from celery_animate.render.grab import poster_png
from celery_animate.states import QUEUED, TERMINAL_STATES
from celery_animate.stores import FrameStore
from celery_animate.worker import state as worker_state
from celery_animate.worker.app import CLEANUP_TASK, RENDER_TASK, SEGMENT_TASK

#: Redis errors a task waits out (with backoff) instead of failing its job at the first blip.
REDIS_BLIPS = (redis.ConnectionError, redis.TimeoutError)
#: Tries, and the longest pause between them in seconds, before a Redis blip fails the task.
REDIS_RETRIES, REDIS_MAX_BACKOFF = 5, 30
#: Seconds between a chunk's progress reports to the job, and between its PROGRESS states.
REPORT_SECONDS, SHOW_SECONDS = 0.25, 2.0


def redis_backoff(task, waits: int = 0) -> float:
    """Seconds before the next try after a Redis blip: 1, 2, 4, ... up to REDIS_MAX_BACKOFF
    (``waits``: earlier tries that were waits for the window, not blips)."""
    return min(REDIS_MAX_BACKOFF, 2 ** (task.request.retries - waits))


@shared_task(name=RENDER_TASK, bind=True, max_retries=REDIS_RETRIES)
def render_chunk(self, job_id: str, chunk_no: int, waits: int = 0) -> dict:
    """Render chunk ``chunk_no`` of job ``job_id`` into the frame store.

    Safe to run twice: frames are overwritten with identical bytes and
    progress counts each chunk once. Skips the work when the job already
    ended, and stops (deleting the frames it wrote) when that happens
    meanwhile. Fails the job when the user's ``setup()`` or ``update()``
    raises, when the chunk hit a soft time limit, and when it was delivered
    more than ``CELERY_ANIMATE_MAX_DELIVERIES`` times (its process died each
    time). Waits out Redis connection errors, retrying with backoff. Waits,
    by retrying itself with ``waits`` counted, while its frames are beyond
    the job's window (:func:`celery_animate.job.window.pause`).
    """
    record = worker_state.job_record(job_id)
    # Counted by this task's own retries; a message claiming more is not believed.
    waits = waits if type(waits) is int and 0 <= waits <= self.request.retries else 0
    try:
        return _render(self, record, chunk_no, waits)
    except REDIS_BLIPS as exc:
        raise self.retry(exc=exc, countdown=redis_backoff(self, waits),
                         max_retries=waits + REDIS_RETRIES) from exc


def _render(task, record, chunk_no: int, waits: int) -> dict:
    settings = worker_state.settings()
    state = record.state()
    if state is None or state in TERMINAL_STATES:
        return {"chunk": chunk_no, "frames": 0, "skipped": state or "unknown job"}
    try:
        spec = worker_state.job_spec(record.job_id)
        if type(chunk_no) is not int or not 0 <= chunk_no < spec.n_chunks:
            raise InvalidArgument(f"chunk {chunk_no!r} does not exist: the job has {spec.n_chunks}")
        frames = record.load_chunk(chunk_no, spec.n_frames)
        wait = pause(record, spec, settings, min(index for index, _ in frames))
        if wait:
            raise task.retry(kwargs={"waits": waits + 1}, countdown=wait,
                             max_retries=task.request.retries + 1)
        deliveries = record.count_delivery(chunk_no)
        if deliveries > settings.max_deliveries:
            raise WorkerLost(
                f"chunk {chunk_no} (frames {describe_ranges(sorted(i for i, _ in frames))}) was started "
                f"{deliveries - 1} times and its worker process died each time (killed by a signal "
                "such as SIGKILL or the out-of-memory killer, or crashed in native code): see the "
                "render workers' logs, and make update() survive those frames")
        if state == QUEUED:  # the job's first chunks; later ones skip these two round trips
            lifecycle.begin_rendering(record)
            record.mark_started()
        store = worker_state.frame_store()
        clock = time.perf_counter()
        prepared = worker_state.FIGURES.get(spec.animator_path, spec.animator_attrs,
                                            settings.allowed_animators)
        seconds = {"setup": time.perf_counter() - clock, "render": 0.0, "store_put": 0.0}
        options = spec.options
        written: list[int] = []
        clock = reported = shown = time.perf_counter()
        for frame_idx, rgb in render_frames(prepared, frames, options.savefig_params,
                                            options.reuse_figure_object,
                                            options.plotting_log_interval, settings.max_frame_pixels,
                                            options.blit and settings.auto_blit):
            stored = time.perf_counter()
            seconds["render"] += stored - clock
            store.put(record.job_id, frame_idx, pack_frame(rgb))
            if frame_idx == 0:  # a web page can show it while the rest is made
                record.set_poster(poster_png(rgb))
            written.append(frame_idx)
            # Progress (and news of an ended job) every REPORT_SECONDS, not every frame; the
            # task's own state for Flower every SHOW_SECONDS: each is a Redis round trip.
            ended = False
            last = len(written) == len(frames)
            if stored - reported > REPORT_SECONDS or last:
                reported = stored
                state = lifecycle.report_chunk(record, chunk_no, len(written))
                ended = state is None or state in TERMINAL_STATES
            if stored - shown > SHOW_SECONDS and not last:
                shown = stored
                task.update_state(state="PROGRESS", meta={
                    "job": record.job_id, "chunk": chunk_no, "frames_done": len(written),
                    "frames": len(frames)})
            clock = time.perf_counter()
            seconds["store_put"] += clock - stored
            if ended:
                lifecycle.discard_frames(store, record.job_id, written)
                return {"chunk": chunk_no, "frames": 0, "skipped": "job ended"}
        record.add_seconds(seconds)
        if spec.n_segments > 1:
            send_rendered_segments(task, record.job_id, spec, store, written, settings)
    except (*REDIS_BLIPS, Retry):
        raise
    except SoftTimeLimitExceeded:
        exc = TaskKilled(f"chunk {chunk_no} ran past the render worker's soft time limit "
                         "(--soft-time-limit); raise the limit or give the job more, smaller chunks")
        lifecycle.fail(record, exc)
        raise exc from None
    except Exception as exc:
        lifecycle.fail(record, exc)
        raise
    return {"chunk": chunk_no, "frames": len(written)}


def send_rendered_segments(task, job_id: str, spec: JobSpec, store: FrameStore, written: list[int],
                           settings: Settings) -> None:
    """Send ``encode_segment`` for each segment this chunk wrote into whose frames are now all
    stored, at this chunk's priority.

    Two chunks finishing one segment together may both send it; the segment's
    lease and its finished mark make the second a no-op. A send that never
    happens (this process died first) is covered by the chord's callback,
    which encodes every segment nobody did.
    """
    for segment in sorted({index // spec.segment_frames for index in written}):
        frames = spec.segment_range(segment)
        if store.has_all(job_id, frames.stop, start=frames.start):
            task.app.signature(SEGMENT_TASK, args=(job_id, segment), queue=settings.encode_queue,
                               priority=task.request.delivery_info.get("priority"),
                               add_to_parent=False).apply_async()


@shared_task(name=CLEANUP_TASK)
def cleanup_job(job_id: str) -> None:
    """The chord's error callback: a render task failed or was killed. End the job, delete its data.

    When the task failed on its own the job already failed with its error;
    otherwise (a hard time limit, ``revoke(terminate=True)``) this says so.
    """
    record = worker_state.job_record(job_id)
    lifecycle.fail(record, TaskKilled(
        "a render task of this job ended without finishing its chunk: it was killed by a time "
        "limit (--time-limit) or revoke(terminate=True), or failed; see the render workers' logs"))
    try:
        spec = worker_state.job_spec(job_id)
    except InvalidArgument:  # its spec was refused: the job failed before it staged any frame
        return
    lifecycle.cleanup(record, spec, worker_state.frame_store())
