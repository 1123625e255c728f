"""The project's Celery app: its own name, queue and tasks, on the broker celery-animate uses."""

from __future__ import annotations

import os

from celery import Celery

from celery_animate import RenderJob, Settings
from examples.wave import WaveAnimation, param_by_frame

app = Celery("reports", broker=os.environ["CELERY_BROKER_URL"],
             backend=os.environ.get("CELERY_RESULT_BACKEND"))
app.conf.task_default_queue = "reports"
app.conf.worker_hijack_root_logger = False


@app.task(name="reports.weekly_video")
def weekly_video(output: str, frames: int) -> str:
    """Enqueue the render and return at once with its job id: a worker slot is not held for it."""
    job = WaveAnimation().submit(output, param_by_frame(frames), fps=30, settings=Settings.from_env())
    return job.id


@app.task(name="reports.video_status")
def video_status(job_id: str) -> dict:
    """What a view or a chained task asks: the job's state, progress and, once done, its video."""
    job = RenderJob(job_id, Settings.from_env())
    progress = job.progress()
    answer = {"state": progress.state, "rendered": progress.rendered, "total": progress.total}
    if progress.state == "done":
        answer["video"] = job.result().output
    return answer
