"""The Celery tasks, and the per-process state of a worker.

``render_chunk`` renders one chunk of a job into the frame store;
``encode_video`` is the chord's callback that turns the stored frames into
the MP4; ``cleanup_job`` runs when the chord fails. Each worker process keeps
a :class:`~celery_animate.render.FigureCache`, filled at process start for
the animators named in ``CELERY_ANIMATE_PREWARM``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import resource
import time

import redis
from celery import shared_task
from celery.signals import worker_init, worker_process_init

from .celery_app import CLEANUP_TASK, ENCODE_TASK, RENDER_TASK, STREAM_TASK
from .config import Settings
from .frames import pack_frame
from .jobs import (
    CANCELLED,
    DONE,
    ENCODING,
    FAILED,
    QUEUED,
    RENDERING,
    JobRecord,
    JobSpec,
    job_redis,
)
from .params import describe_ranges as _ranges
from .pipeline import output_path
from .render import FigureCache, import_animator_class, pack_attrs, render_frames
from .store import FrameStore, open_frame_store

logger = logging.getLogger(__name__)

#: Seconds without a newly rendered frame after which a streaming encoder steps aside.
STALL_SECONDS = 5.0

#: Figures set up in this process; survives across tasks, never across processes.
FIGURES = FigureCache()


_settings: Settings | None = None


def worker_settings() -> Settings:
    """This worker's settings: the environment's, unless :func:`configure_worker` set others."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def configure_worker(settings: Settings, prewarm: list[tuple[str, bytes]]) -> None:
    """Use ``settings`` and pre-warm ``prewarm`` in this worker (for the embedded cluster)."""
    global _settings
    _settings = settings
    PREWARM[:] = prewarm


def _record(job_id: str) -> JobRecord:
    settings = worker_settings()
    return JobRecord(job_redis(settings), job_id, settings.job_ttl)


@functools.lru_cache(maxsize=8)
def _frame_store(spec: str) -> FrameStore:
    return open_frame_store(spec, worker_settings())


@functools.lru_cache(maxsize=16)
def _spec(job_id: str) -> JobSpec:
    # A job's spec never changes once written, so one read per process is enough.
    return _record(job_id).spec()


@worker_init.connect
def _announce_allowlist(**_: object) -> None:
    settings = worker_settings()
    if not settings.allowed_animators and not settings.embedded:
        logger.warning(
            "CELERY_ANIMATE_ALLOWED_ANIMATORS is not set: this worker will import any animator "
            "class a message names. Set it to your animators' module prefixes in production."
        )


#: ``(path, packed attrs)`` of animators to set up at process start, on top of
#: ``CELERY_ANIMATE_PREWARM``; the embedded cluster fills it before forking.
PREWARM: list[tuple[str, bytes]] = []


@worker_process_init.connect
def _prewarm(**_: object) -> None:
    """Run ``setup()`` once, at process start, for each animator to pre-warm."""
    allowed = worker_settings().allowed_animators
    targets = list(PREWARM)
    for path in worker_settings().prewarm:
        try:
            targets.append((path, pack_attrs(import_animator_class(path, allowed)())))
        except Exception:
            logger.exception("cannot pre-warm %s: it does not import or instantiate", path)
    for path, attrs in targets:
        try:
            FIGURES.get(path, attrs, allowed)
        except Exception:
            logger.exception("could not pre-warm animator %s; it will be set up on first use", path)


@shared_task(name=RENDER_TASK)
def render_chunk(job_id: str, chunk_no: int) -> dict:
    """Render chunk ``chunk_no`` of job ``job_id`` into the frame store.

    Safe to run twice: frames are overwritten with identical bytes and
    progress counts each chunk once. Skips the work when the job already
    failed or was cancelled, and stops (deleting the frames it wrote) when
    that happens meanwhile. Marks the job failed (and re-raises) when the
    user's ``setup()`` or ``update()`` raises.
    """
    record = _record(job_id)
    state = record.state()
    if state in (None, FAILED, CANCELLED):
        return {"chunk": chunk_no, "frames": 0, "skipped": state or "unknown job"}
    try:
        spec = _spec(job_id)
        record.transition(RENDERING, only_from=QUEUED)
        record.mark_started()
        store = _frame_store(spec.frame_store)
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
                    f"(indices {_ranges(missing)}); were they evicted, or did Redis restart without "
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

    record = _record(job_id)
    state = record.state()
    if state is None:
        return {"skipped": "unknown job"}
    spec = _spec(job_id)
    store = _frame_store(spec.frame_store)
    if state in (DONE, FAILED, CANCELLED):
        _delete_job_data(record, spec, store)
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
            _delete_job_data(record, spec, store)
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
    _record(job_id).transition(ENCODING, only_from=RENDERING)
    return _encode(self, job_id, streaming=False)


@shared_task(name=CLEANUP_TASK)
def cleanup_job(job_id: str) -> None:
    """Delete a failed job's frames and staged params (the chord's error callback)."""
    record = _record(job_id)
    spec = _spec(job_id)
    _delete_job_data(record, spec, _frame_store(spec.frame_store))


def _delete_job_data(record: JobRecord, spec: JobSpec, store: FrameStore) -> None:
    store.delete_job(record.job_id, spec.n_frames)
    record.delete_chunks(spec.n_chunks)
    sweep = getattr(store, "sweep", None)
    if sweep is not None:
        sweep()
