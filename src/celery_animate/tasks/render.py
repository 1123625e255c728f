"""The render side: ``render_chunk`` (the chord's header) and ``cleanup_job`` (its error callback)."""

from __future__ import annotations

import time

from celery import shared_task

from .. import lifecycle, worker_state
from ..app import CLEANUP_TASK, RENDER_TASK
from ..errors import InvalidArgument
from ..frames import pack_frame
from ..render import render_frames
from ..states import CANCELLED, FAILED

_ENDED = (FAILED, CANCELLED, None)


@shared_task(name=RENDER_TASK, bind=True)
def render_chunk(self, job_id: str, chunk_no: int) -> dict:
    """Render chunk ``chunk_no`` of job ``job_id`` into the frame store.

    Safe to run twice: frames are overwritten with identical bytes and
    progress counts each chunk once. Skips the work when the job already
    failed or was cancelled, and stops (deleting the frames it wrote) when
    that happens meanwhile. Marks the job failed (and re-raises) when the
    user's ``setup()`` or ``update()`` raises.
    """
    record = worker_state.job_record(job_id)
    state = record.state()
    if state in _ENDED:
        return {"chunk": chunk_no, "frames": 0, "skipped": state or "unknown job"}
    try:
        spec = worker_state.job_spec(job_id)
        if type(chunk_no) is not int or not 0 <= chunk_no < spec.n_chunks:
            raise InvalidArgument(f"chunk {chunk_no!r} does not exist: the job has {spec.n_chunks}")
        lifecycle.begin_rendering(record)
        record.mark_started()
        store = worker_state.frame_store()
        frames = record.load_chunk(chunk_no, spec.n_frames)
        settings = worker_state.settings()
        clock = time.perf_counter()
        prepared = worker_state.FIGURES.get(spec.animator_path, spec.animator_attrs,
                                            settings.allowed_animators)
        seconds = {"setup": time.perf_counter() - clock, "render": 0.0, "store_put": 0.0}
        options = spec.options
        written: list[int] = []
        clock = reported = time.perf_counter()
        for frame_idx, rgb in render_frames(prepared, frames, options.savefig_params,
                                            options.reuse_figure_object,
                                            options.plotting_log_interval, settings.max_frame_pixels):
            stored = time.perf_counter()
            seconds["render"] += stored - clock
            store.put(job_id, frame_idx, pack_frame(rgb))
            written.append(frame_idx)
            # Progress (and news of a failed or cancelled job) every 0.1 s, not every frame.
            ended = False
            if stored - reported > 0.1 or len(written) == len(frames):
                reported = stored
                ended = lifecycle.report_chunk(record, chunk_no, len(written)) in _ENDED
                self.update_state(state="PROGRESS", meta={  # shown by Flower
                    "job": job_id, "chunk": chunk_no, "frames_done": len(written),
                    "frames": len(frames)})
            clock = time.perf_counter()
            seconds["store_put"] += clock - stored
            if ended:
                lifecycle.discard_frames(store, job_id, written)
                return {"chunk": chunk_no, "frames": 0, "skipped": "job ended"}
        record.add_seconds(seconds)
    except Exception as exc:
        lifecycle.fail(record, exc)
        raise
    return {"chunk": chunk_no, "frames": len(written)}


@shared_task(name=CLEANUP_TASK)
def cleanup_job(job_id: str) -> None:
    """Delete a failed job's frames and staged params (the chord's error callback)."""
    record = worker_state.job_record(job_id)
    try:
        spec = worker_state.job_spec(job_id)
    except InvalidArgument:  # its spec was refused: the job failed before it staged any frame
        return
    lifecycle.cleanup(record, spec, worker_state.frame_store())
