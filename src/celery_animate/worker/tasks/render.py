"""The render side's tasks: ``render_chunk`` (the chord's header) and ``cleanup_job`` (the chord's
error callback)."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from celery_animate.errors import TaskKilled
from celery_animate.job import lifecycle
from celery_animate.job.messages import CLEANUP_TASK, RENDER_TASK, segment_message
from celery_animate.render.chunk import render_chunk as render_chunk_frames
from celery_animate.worker import state as worker_state
from celery_animate.worker.tasks.base import KILLED, JobTask, message_priority


@shared_task(base=JobTask, name=RENDER_TASK, bind=True)
def render_chunk(self: JobTask, job_id: str, chunk_no: int) -> dict:
    """Render chunk ``chunk_no`` of job ``job_id`` into the frame store, then send the encoders of
    the segments it completed (see :func:`celery_animate.render.chunk.render_chunk`).

    Fails the job when the user's ``setup()`` or ``update()`` raises, when the
    chunk hit a soft time limit, and when it was delivered more than
    ``CELERY_ANIMATE_MAX_DELIVERIES`` times (its process died each time).
    """
    job = self.running_job(job_id)

    def show(done: int, total: int) -> None:  # for Flower
        self.update_state(state="PROGRESS", meta={"job": job_id, "chunk": chunk_no,
                                                  "frames_done": done, "frames": total})
    try:
        outcome = render_chunk_frames(job.record, job.spec, job.state, chunk_no, job.settings,
                                      job.store, worker_state.FIGURES, show, job.cache)
    except SoftTimeLimitExceeded:
        raise TaskKilled(f"chunk {chunk_no} ran past the render worker's soft time limit "
                         "(--soft-time-limit); raise the limit or give the job more, smaller "
                         "chunks") from None
    if outcome.ended:
        return {"chunk": chunk_no, "frames": 0, "skipped": "job ended"}
    for segment in outcome.completed_segments:
        segment_message(self.app, job.settings, job_id, segment, message_priority(self)).apply_async()
    return {"chunk": chunk_no, "frames": len(outcome.frames)}


@shared_task(name=CLEANUP_TASK)
def cleanup_job(job_id: str) -> None:
    """The chord's error callback: a render task failed or was killed. End the job.

    When the task failed on its own the job already failed with its error;
    otherwise (a hard time limit, ``revoke(terminate=True)``) this says so. An
    encode worker's watchdog removes the job's data a moment later.
    """
    lifecycle.end_job(worker_state.job_record(job_id),
                      TaskKilled(KILLED.format(task="render", side="render")))
