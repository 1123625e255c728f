"""The task messages a job is made of: its render chunks, its encoders, and the chord tying them.

:mod:`celery_animate.client.submit` sends them once; :mod:`celery_animate.job.recovery`
sends again those the broker lost. Every message carries only ids (the job's,
a chunk's); what they mean is in the job's record.
"""

from __future__ import annotations

from celery import Celery, Signature, chord

from celery_animate.config import Settings

#: The package's task names (``celery_app`` routes them to the render or encode queue).
RENDER_TASK = "celery_animate.render_chunk"
ENCODE_TASK = "celery_animate.encode_video"
STREAM_TASK = "celery_animate.stream_video"
SEGMENT_TASK = "celery_animate.encode_segment"
PERIODIC_TASK = "celery_animate.render_periodic"
PROBE_TASK = "celery_animate.probe_encoder"
CLEANUP_TASK = "celery_animate.cleanup_job"
WEBHOOK_TASK = "celery_animate.deliver_webhook"

#: Celery's priorities on Redis: 0 is served first, 9 last.
LOWEST_PRIORITY = 9
# Sent from inside another project's task (a web request handled by a worker, a nightly
# report), these must not become that task's children: its caller would then follow their
# results, in a serializer it may not accept.
DETACHED = {"add_to_parent": False}


def chunk_priority(priority: int, chunk_no: int, wave: int) -> int:
    """The priority of a job's ``chunk_no``-th chunk: the job's own for its first ``wave`` chunks,
    one step lower for each further wave, down to :data:`LOWEST_PRIORITY`.

    So a short job's first chunks go ahead of a long job's later ones submitted
    before them, instead of waiting for all of them.
    """
    return min(LOWEST_PRIORITY, priority + chunk_no // max(1, wave))


def chunk_message(app: Celery, settings: Settings, job_id: str, chunk_no: int,
                 priority: int) -> Signature:
    """The message that renders chunk ``chunk_no`` of ``job_id``."""
    return app.signature(RENDER_TASK, args=(job_id, chunk_no), queue=settings.render_queue,
                         priority=priority, **DETACHED)


def segment_message(app: Celery, settings: Settings, job_id: str, segment: int,
                    priority: int | None) -> Signature:
    """The message that encodes segment ``segment`` of ``job_id``, sent by the render task that
    stored its last frame, at that task's priority. A send that never happens (that process
    died first) is covered by the chord's callback, which encodes every segment nobody did."""
    return app.signature(SEGMENT_TASK, args=(job_id, segment), queue=settings.encode_queue,
                         priority=priority, **DETACHED)


def encode_callback(app: Celery, settings: Settings, job_id: str, priority: int) -> Signature:
    """The message that encodes (or, for a segmented job, joins) ``job_id`` once every frame is
    rendered, and ends the job with its data deleted if it fails."""
    callback = app.signature(ENCODE_TASK, args=(job_id,), queue=settings.encode_queue,
                             immutable=True, priority=priority, **DETACHED)
    callback.link_error(app.signature(CLEANUP_TASK, args=(job_id,), queue=settings.render_queue,
                                      immutable=True, **DETACHED))
    return callback


def send_chord(app: Celery, settings: Settings, job_id: str, n_chunks: int, priority: int = 0,
               wave: int = 2, n_segments: int = 1) -> None:
    """Send the job's streaming encoder and its chord of render chunks (see :func:`chunk_priority`).

    A job of one segment gets one streaming encoder; a longer one none: the
    render task that stores a segment's last frame sends that segment's
    encoder (:func:`segment_message`).
    """
    # The encoder starts first and encodes frames as they arrive; the chord's callback then
    # only has to encode if it never ran or died (and, for a segmented job, join the segments).
    if n_segments == 1:
        app.signature(STREAM_TASK, args=(job_id,), queue=settings.encode_queue,
                      priority=priority, **DETACHED).apply_async()
    header = [chunk_message(app, settings, job_id, k, chunk_priority(priority, k, wave))
              for k in range(n_chunks)]
    chord(header, body=encode_callback(app, settings, job_id, priority),
          app=app).apply_async(**DETACHED)
