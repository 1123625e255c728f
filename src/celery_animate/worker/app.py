"""The Celery application: serialisation, delivery guarantees, routing.

``celery -A celery_animate worker -Q render`` finds :data:`app` here (it is
re-exported by the package). The embedded cluster and tests build their own
app for another Redis with :func:`create_app`.
"""

from __future__ import annotations

import importlib

from celery import Celery
from celery.backends.redis import RedisBackend

from celery_animate.config import Settings
from celery_animate.connection import REDIS_SCHEMES
from celery_animate.job.messages import (
    CLEANUP_TASK,
    ENCODE_TASK,
    PERIODIC_TASK,
    PROBE_TASK,
    RENDER_TASK,
    SEGMENT_TASK,
    STREAM_TASK,
    WEBHOOK_TASK,
)
from celery_animate.worker import state as worker_state


class JobStateRedisBackend(RedisBackend):
    """Celery's Redis result backend, without the pub/sub subscription a client opens for
    every task it sends: celery-animate follows jobs through their own record, never
    through ``AsyncResult``, and a 2,000-chunk job would otherwise cost 2,000 SUBSCRIBEs.
    Sending a task subscribes (``on_task_call``), and so does sending a group or chord,
    whose every member's result gets a callback (``add_pending_result``)."""

    def on_task_call(self, producer, task_id):
        pass

    def add_pending_result(self, result, weak=False, start_drainer=True):
        return result

    def remove_pending_result(self, result):
        return result  # nothing was subscribed, so there is nothing to unsubscribe


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app for ``settings`` (default: the environment) with the package's tasks."""
    settings = settings or Settings.from_env()
    worker_state.install_hooks()
    backend = settings.result_backend
    if backend and backend.startswith(REDIS_SCHEMES):
        backend = f"{__name__}:JobStateRedisBackend+{backend}"
    # Not the process's current app: in a project with its own Celery app (a web app, a
    # project worker that enqueues renders), that one stays the default for its own tasks.
    app = Celery("celery_animate", broker=settings.broker_url, backend=backend,
                 set_as_current=False)
    # CELERY_RESULT_BACKEND in the environment beats the constructor's backend (Celery reads it
    # first), which would drop the subclass; backend_cls beats both.
    app.backend_cls = backend
    app.conf.update(
        # Data only on the wire: pickled messages are refused, never executed.
        task_serializer="msgpack",
        result_serializer="msgpack",
        accept_content=["msgpack", "json"],
        result_accept_content=["msgpack", "json"],
        event_serializer="json",
        # A chunk is acknowledged after it is rendered, and given back if its process
        # dies, so a crashed worker costs one chunk, not the job.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A task whose whole worker vanished (no one left to reject it) is given back
        # once its visibility timeout has passed; workers look for such tasks every
        # few seconds rather than kombu's default of every 100 s.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.restore_interval,
            "unacked_restore_throttle": 1,
            # That look holds a lock, which a machine dying during it keeps for kombu's default
            # of 5 minutes: a vanished worker's tasks would wait that long. Two looks' time is
            # plenty, and looks that overlap give back each message once (a WATCHed MULTI).
            "unacked_mutex_expire": settings.unacked_lock_seconds,
            # Ten priority levels per queue, 0 served first (see task_messages.chunk_priority).
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
        },
        # No STARTED result per task (two Redis round trips each): jobs are followed through
        # their record, and Flower learns that a task started from the task-started event.
        task_track_started=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        result_expires=settings.job_ttl,
        task_default_queue=settings.render_queue,
        task_routes={
            RENDER_TASK: {"queue": settings.render_queue},
            CLEANUP_TASK: {"queue": settings.render_queue},
            ENCODE_TASK: {"queue": settings.encode_queue},
            STREAM_TASK: {"queue": settings.encode_queue},
            SEGMENT_TASK: {"queue": settings.encode_queue},
            PROBE_TASK: {"queue": settings.encode_queue},
            PERIODIC_TASK: {"queue": settings.render_queue},
            WEBHOOK_TASK: {"queue": settings.encode_queue},
        },
        # setup() of pre-warmed animators runs in worker_process_init, which Celery
        # otherwise cuts off after 4 s.
        worker_proc_alive_timeout=300,
        broker_connection_retry_on_startup=True,
        # Remote control lets anyone on the broker shut workers down; operators may turn it off
        # (Flower's worker views, `celery inspect` and doctor's worker check then see nothing).
        worker_enable_remote_control=settings.remote_control,
        imports=("celery_animate.worker.tasks.render", "celery_animate.worker.tasks.encode",
                 "celery_animate.worker.tasks.periodic", "celery_animate.worker.tasks.probe",
                 "celery_animate.worker.tasks.webhook"),
    )
    if settings.beat_schedule:
        # Periodic renders; beat keeps its state in memory (-S celery.beat:Scheduler), no pickle.
        app.conf.beat_schedule = importlib.import_module(settings.beat_schedule).beat_schedule
    return app


_apps: dict[tuple[str | None, str | None], Celery] = {}


def app_for(settings: Settings) -> Celery:
    """The Celery app that talks to ``settings``' broker (one per broker, per process)."""
    key = (settings.broker_url, settings.result_backend)
    if key not in _apps:
        _apps[key] = create_app(settings)
    return _apps[key]


#: The app ``celery -A celery_animate`` finds, configured from the environment.
app = create_app()
