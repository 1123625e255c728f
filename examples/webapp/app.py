"""A small web app that enqueues renders and plays the result (Flask).

    CELERY_BROKER_URL=redis://... flask --app examples.webapp.app run    # from the repository root

The page picks an example animation and a frame count; submitting calls
``Animator.submit`` and returns at once; the page polls the job's progress
and, when it is done, plays the video in a ``<video>`` element served here.
Only the process that encodes must see ``CELERY_ANIMATE_OUTPUT_ROOT``; this
app reads finished videos from the same directory (a shared volume).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, abort, jsonify, render_template, request, send_file

from celery_animate import InvalidArgument, JobNotFound, RenderJob, Settings
from examples.metrics_dashboard import MetricsDashboard
from examples.metrics_dashboard import param_by_frame as dashboard_params
from examples.multi_panel import MultiPanelAnimation
from examples.multi_panel import param_by_frame as multi_panel_params
from examples.wave import BlittedWaveAnimation
from examples.wave import param_by_frame as wave_params

#: What visitors may render: name -> (label, animator class, params function).
ANIMATIONS = {
    "wave": ("Travelling wave", BlittedWaveAnimation, wave_params),
    "multi_panel": ("Five panels", MultiPanelAnimation, multi_panel_params),
    "dashboard": ("Metrics dashboard, last hour", MetricsDashboard, dashboard_params),
}
MAX_FRAMES = 600
FPS = 30

app = Flask(__name__)


def output_dir() -> Path:
    directory = Path(os.environ.get("CELERY_ANIMATE_WEB_OUTPUT", "web-videos")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@app.get("/")
def index():
    return render_template("index.html", animations=ANIMATIONS, max_frames=MAX_FRAMES)


@app.post("/jobs")
def create_job():
    body = request.get_json(silent=True) or {}
    name, frames = body.get("animation"), body.get("frames")
    if name not in ANIMATIONS:
        return jsonify(error=f"unknown animation {name!r}; choose one of {', '.join(ANIMATIONS)}"), 400
    if not isinstance(frames, int) or not 1 <= frames <= MAX_FRAMES:
        return jsonify(error=f"frames must be a whole number from 1 to {MAX_FRAMES}"), 400
    _, cls, params = ANIMATIONS[name]
    target = output_dir() / f"{name}-{os.urandom(8).hex()}.mp4"
    job = cls().submit(target, params(frames), fps=FPS, n_frames=frames, settings=Settings.from_env())
    return jsonify(id=job.id), 202


def job_named(job_id: str) -> RenderJob:
    """The job a URL names; 404 when the id is malformed (no job has it)."""
    try:
        return RenderJob(job_id)
    except InvalidArgument:
        abort(404)


@app.get("/jobs/<job_id>")
def job_status(job_id: str):
    try:
        progress = job_named(job_id).progress()
    except JobNotFound:
        abort(404)
    done = progress.rendered + progress.encoded
    return jsonify(state=progress.state, rendered=progress.rendered, encoded=progress.encoded,
                   total=progress.total, percent=round(100 * done / (2 * progress.total), 1),
                   poster=f"/jobs/{job_id}/poster.png" if progress.rendered else None,
                   video=f"/videos/{job_id}.mp4" if progress.state == "done" else None)


@app.get("/jobs/<job_id>/poster.png")
def poster(job_id: str):
    """The first frame, shown while the rest is rendered."""
    png = job_named(job_id).poster()  # None before the first frame, or for an unknown job
    if png is None:
        abort(404)
    response = app.response_class(png, mimetype="image/png")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@app.get("/videos/<job_id>.mp4")
def video(job_id: str):
    try:
        result = job_named(job_id).wait(timeout=0)
    except (JobNotFound, TimeoutError):
        abort(404)
    path = Path(result.output).resolve()
    if path.parent != output_dir():  # serve only what this app asked for
        abort(404)
    return send_file(path, mimetype="video/mp4", conditional=True)
