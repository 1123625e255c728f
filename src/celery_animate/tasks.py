"""The render side's tasks: ``render_chunk`` (the chord's header) and ``cleanup_job``.

``render_chunk`` renders one chunk of a job into the frame store;
``cleanup_job`` is the chord's error callback. The encoder's tasks are in
:mod:`celery_animate.encode_tasks`.
"""

from __future__ import annotations

import time

from celery import shared_task

from .celery_app import CLEANUP_TASK, RENDER_TASK
from .frames import pack_frame
from .jobs import CANCELLED, FAILED, QUEUED, RENDERING
from .render import render_frames
from .worker import FIGURES, delete_job_data, frame_store, job_record, job_spec, worker_settings


@shared_task(name=RENDER_TASK, bind=True)
def render_chunk(self, job_id: str, chunk_no: int) -> dict:
    """Render chunk ``chunk_no`` of job ``job_id`` into the frame store.

    Safe to run twice: frames are overwritten with identical bytes and
    progress counts each chunk once. Skips the work when the job already
    failed or was cancelled, and stops (deleting the frames it wrote) when
    that happens meanwhile. Marks the job failed (and re-raises) when the
    user's ``setup()`` or ``update()`` raises.
    """
    record = job_record(job_id)
    state = record.state()
    if state in (None, FAILED, CANCELLED):
        return {"chunk": chunk_no, "frames": 0, "skipped": state or "unknown job"}
    try:
        spec = job_spec(job_id)
        record.transition(RENDERING, only_from=QUEUED)
        record.mark_started()
        store = frame_store(spec.frame_store)
        frames = record.load_chunk(chunk_no)
        clock = time.perf_counter()
        prepared = FIGURES.get(spec.animator_path, spec.animator_attrs,
                               worker_settings().allowed_animators)
        seconds = {"setup": time.perf_counter() - clock, "render": 0.0, "store_put": 0.0}
        options = spec.options
        written: list[int] = []
        clock = reported = time.perf_counter()
        for frame_idx, rgb in render_frames(prepared, frames, options.savefig_params,
                                            options.reuse_figure_object,
                                            options.plotting_log_interval):
            stored = time.perf_counter()
            seconds["render"] += stored - clock
            store.put(job_id, frame_idx, pack_frame(rgb))
            written.append(frame_idx)
            # Progress (and news of a failed or cancelled job) every 0.1 s, not every frame.
            ended = False
            if stored - reported > 0.1 or len(written) == len(frames):
                reported = stored
                ended = record.report_chunk(chunk_no, len(written)) in (FAILED, CANCELLED)
                self.update_state(state="PROGRESS", meta={  # shown by Flower
                    "job": job_id, "chunk": chunk_no, "frames_done": len(written),
                    "frames": len(frames)})
            clock = time.perf_counter()
            seconds["store_put"] += clock - stored
            if ended:
                # The job's cleanup may already have run: what we stored since is ours to remove.
                store.delete(job_id, written)
                return {"chunk": chunk_no, "frames": 0, "skipped": "job ended"}
        record.add_seconds(seconds)
    except Exception as exc:
        record.fail(exc)
        raise
    return {"chunk": chunk_no, "frames": len(written)}


@shared_task(name=CLEANUP_TASK)
def cleanup_job(job_id: str) -> None:
    """Delete a failed job's frames and staged params (the chord's error callback)."""
    record = job_record(job_id)
    spec = job_spec(job_id)
    delete_job_data(record, spec, frame_store(spec.frame_store))
