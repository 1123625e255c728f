"""A small web app that enqueues renders and plays the result (Flask).

    CELERY_BROKER_URL=redis://... flask --app examples.webapp.app run    # from the repository root

The page picks an example animation and a frame count; submitting calls
``Animator.submit`` and returns at once; the page polls the job's progress
and, when the job has ended, plays the video in a ``<video>`` element.

Settings, from the environment:

* ``CELERY_ANIMATE_WEB_OUTPUT``: where the videos go. A directory (default
  ``web-videos``) that the encode workers and this app share, served from here;
  or an object-store prefix the workers may write to (``s3://renders/web/``,
  under their ``CELERY_ANIMATE_OUTPUT_ROOT``): the browser then fetches each
  video from the store through a URL this app presigns with its own ``AWS_*``
  variables (``RenderJob.url()``), and the app and the workers share no disk.
  The URL names the store as ``AWS_ENDPOINT_URL`` does: give this app the
  address browsers reach the store at.
* ``CELERY_ANIMATE_WEB_WEBHOOK``: this app's ``/hooks/job-end`` as the workers
  reach it (``http://web:8000/hooks/job-end``, under the workers' and this
  app's ``CELERY_ANIMATE_WEBHOOK_ALLOW``). Each job then announces its end
  there, signed with ``CELERY_ANIMATE_WEBHOOK_SECRET`` (the workers' key, which
  this app needs too), and the page learns of the end from that announcement.
  Unset, the app reads the end from the job's record.
"""

from __future__ import annotations

import json
import os
import re
import time
from functools import cache
from pathlib import Path

import redis
from flask import Flask, abort, jsonify, redirect, render_template, request, send_file

from celery_animate import CeleryAnimateError, InvalidArgument, JobNotFound, RenderJob, Settings
from celery_animate.announcement import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
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
#: Seconds a presigned video URL stays valid: enough to watch it, short enough not to leak far.
URL_SECONDS = 3600
#: Where the announcements of ended jobs wait for the page's next poll (shared by gunicorn's
#: processes: any of them may get the POST, and another the poll).
ENDED_KEY = "celery_animate_webapp:ended:{}"
_OBJECT_URL = re.compile(r"(s3|gs|az)://", re.IGNORECASE)
_JOB_ID = re.compile(r"[0-9a-f]{32}")

OUTPUT = os.environ.get("CELERY_ANIMATE_WEB_OUTPUT", "web-videos")
#: The videos' object-store prefix, or None when they go to a shared directory.
OUTPUT_PREFIX = OUTPUT.rstrip("/") + "/" if _OBJECT_URL.match(OUTPUT) else None
WEBHOOK = os.environ.get("CELERY_ANIMATE_WEB_WEBHOOK") or None
SETTINGS = Settings.from_env()
if WEBHOOK and not SETTINGS.webhook_secret:
    raise RuntimeError("CELERY_ANIMATE_WEB_WEBHOOK is set but CELERY_ANIMATE_WEBHOOK_SECRET is not: "
                       "the app could not tell the workers' announcements from forgeries")

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # announcements and job requests are small


@cache
def ended_store() -> redis.Redis:
    return redis.Redis.from_url(SETTINGS.result_backend, socket_timeout=SETTINGS.redis_timeout)


def output_dir() -> Path:
    directory = Path(OUTPUT).resolve()
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
    file_name = f"{name}-{os.urandom(8).hex()}.mp4"
    target = OUTPUT_PREFIX + file_name if OUTPUT_PREFIX else output_dir() / file_name
    job = cls().submit(target, params(frames), fps=FPS, n_frames=frames, settings=SETTINGS,
                       webhook=WEBHOOK)
    return jsonify(id=job.id), 202


def job_named(job_id: str) -> RenderJob:
    """The job a URL names; 404 when the id is malformed (no job has it)."""
    try:
        return RenderJob(job_id, SETTINGS)
    except InvalidArgument:
        abort(404)


def job_end(job: RenderJob, finished: bool) -> str | None:
    """How this app learned that the job ended: ``"webhook"``, or ``"record"`` for a job
    without a webhook or whose webhook the workers refused or gave up on; None while it
    runs, or while its announcement is on its way. The record must say it ended too, so a
    stray announcement ends nothing."""
    if not finished:
        return None
    if ended_store().exists(ENDED_KEY.format(job.id)):
        return "webhook"
    status = job.webhook_status()
    # Delivered means this app stored it: only a missing or stale store gets here then.
    return "record" if status is None or status["state"] != "pending" else None


def video_url(job: RenderJob, output: str) -> str | None:
    """Where the browser gets the video: a presigned URL of the store for an object output,
    this app's /videos route for a file; None for an output this app did not ask for."""
    if OUTPUT_PREFIX:
        return job.url(expires=URL_SECONDS) if output.startswith(OUTPUT_PREFIX) else None
    if Path(output).resolve().parent != output_dir():
        return None
    return f"/videos/{job.id}.mp4"


@app.get("/jobs/<job_id>")
def job_status(job_id: str):
    job = job_named(job_id)
    try:
        progress = job.progress()
    except JobNotFound:
        abort(404)
    ended_by = job_end(job, progress.finished)
    state = "finishing" if progress.finished and not ended_by else progress.state
    done = progress.rendered + progress.encoded
    video = video_url(job, job.result().output) if ended_by and state == "done" else None
    return jsonify(state=state, ended_by=ended_by, rendered=progress.rendered,
                   encoded=progress.encoded, total=progress.total,
                   percent=round(100 * done / (2 * progress.total), 1),
                   poster=f"/jobs/{job.id}/poster.png" if progress.rendered else None,
                   video=video, link=f"/videos/{job.id}.mp4" if video else None)


@app.post("/hooks/job-end")
def job_ended():
    """Where the workers announce a job's end: believed only when signed with the shared
    secret within the last five minutes, then kept for the page's next poll."""
    if not WEBHOOK:
        abort(404)
    body = request.get_data(cache=False).decode("utf-8", errors="replace")
    if not verify(SETTINGS.webhook_secret or "", request.headers.get(TIMESTAMP_HEADER, ""), body,
                  request.headers.get(SIGNATURE_HEADER, ""), now=time.time()):
        return jsonify(error="bad or stale signature"), 401
    try:
        job_id = json.loads(body)["job_id"]
    except (ValueError, TypeError, KeyError):
        job_id = None
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        return jsonify(error="the body names no job"), 400
    ended_store().set(ENDED_KEY.format(job_id), body, ex=SETTINGS.job_ttl)
    return "", 204


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
    """The finished video: the file, or a redirect to a freshly presigned URL of the store."""
    job = job_named(job_id)
    try:
        output = job.result().output
    except CeleryAnimateError:  # unknown, running, failed or cancelled
        abort(404)
    url = video_url(job, output)
    if url is None:  # serve only what this app asked for
        abort(404)
    if OUTPUT_PREFIX:
        return redirect(url)
    return send_file(Path(output).resolve(), mimetype="video/mp4", conditional=True)
