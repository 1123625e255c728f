"""Submitting a job: validate, stage params in chunks, send the chord.

Params are read from ``param_by_frame`` one chunk at a time and staged in
Redis; the chord's messages carry only ``(job_id, chunk_no)``. Nothing is
enqueued until every chunk has been read and checked, so a bad frame
(duplicate index, gap, a value msgpack cannot carry) raises here and leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery, chord

from . import codec
from .celery_app import CLEANUP_TASK, ENCODE_TASK, RENDER_TASK, STREAM_TASK, create_app
from .config import Settings
from .errors import ConfigurationError
from .jobs import JobRecord, JobSpec, RenderJob, RenderOptions, job_redis
from .params import (
    FrameIndexTracker,
    check_n_frames,
    choose_chunk_size,
    chunked,
    known_length,
    resolved_frames,
)
from .render import animator_path, check_allowed, pack_attrs

if TYPE_CHECKING:
    from .animator import Animator

_apps: dict[tuple[str | None, str | None], Celery] = {}


def app_for(settings: Settings) -> Celery:
    """The Celery app that talks to ``settings``' broker (one per broker, per process)."""
    key = (settings.broker_url, settings.result_backend)
    if key not in _apps:
        _apps[key] = create_app(settings)
    return _apps[key]


def output_path(output: str | os.PathLike[str], settings: Settings) -> Path:
    """The absolute path an output name stands for, on this machine.

    With ``CELERY_ANIMATE_OUTPUT_ROOT`` set, paths resolve under it and a path
    that leaves it (``..``, an absolute path elsewhere) raises
    ``PermissionError``; without it, relative paths resolve against the
    current directory.
    """
    path = Path(output).expanduser()
    if not settings.output_root:
        return path if path.is_absolute() else Path.cwd() / path
    root = Path(settings.output_root).resolve()
    full = (root / path).resolve()
    if root not in full.parents:
        raise PermissionError(
            f"output path {os.fspath(output)!r} is outside CELERY_ANIMATE_OUTPUT_ROOT ({root}); "
            "give a path inside it, e.g. a file name relative to it"
        )
    return full


def resolve_output(output_file: str | os.PathLike[str], settings: Settings) -> str:
    """Validate ``output_file`` and return what the job records as its output.

    Without an output root the path is made absolute and checked now for
    being writable (so a typo fails before any rendering); with one, the
    path stays as given and each encode worker resolves it under its root.
    """
    text = os.fspath(output_file)
    if not text.strip() or Path(text).name in ("", ".", ".."):
        raise ValueError(f"output_file {text!r} is not a file name")
    path = output_path(text, settings)
    if settings.output_root:
        return text
    _check_writable(path)
    return str(path)


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"output_file {path} is a directory; give a file name such as {path / 'out.mp4'}")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: {ancestor} is not a writable directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot overwrite {path}: the file is not writable")


def submit_job(
    animator: Animator,
    output_file: str | os.PathLike[str],
    param_by_frame: Iterable[Any],
    options: RenderOptions,
    settings: Settings,
    *,
    n_frames: int | None = None,
    workers_hint: int = 2,
    chunks_per_worker: int = 8,
) -> RenderJob:
    """Validate and enqueue a render; return at once with its :class:`RenderJob`.

    ``workers_hint`` and ``chunks_per_worker`` only size the chunks. Only an
    embedded cluster (``settings.embedded``), whose workers were forked from
    this process, can use an animator class defined in ``__main__``.
    Raises ``ValueError``/``TypeError`` for bad params, ``ConfigurationError``
    for a cluster that cannot run this animator.
    """
    path = animator_path(animator)
    if path.startswith("__main__:") and not settings.embedded:
        raise ConfigurationError(
            f"{type(animator).__qualname__} is defined in the script being run (__main__), which "
            "workers of a remote cluster cannot import. Move the class into a module that is "
            "installed on the workers and import it from there, or unset CELERY_BROKER_URL to "
            "render on the embedded cluster."
        )
    # The workers would refuse it; saying so now costs the user nothing.
    check_allowed(path, settings.allowed_animators)
    attrs = pack_attrs(animator)
    check_n_frames(n_frames)
    output = resolve_output(output_file, settings)
    known = n_frames if n_frames is not None else known_length(param_by_frame)
    chunk_size = choose_chunk_size(known, workers_hint, chunks_per_worker)

    job_id = uuid.uuid4().hex
    record = JobRecord(job_redis(settings), job_id, settings.job_ttl)
    tracker = FrameIndexTracker()
    n_chunks = 0
    try:
        for chunk in chunked(tracker.track(resolved_frames(param_by_frame, n_frames)), chunk_size):
            record.stage_chunk(n_chunks, _pack_chunk(chunk), settings.frame_ttl)
            n_chunks += 1
        total = tracker.finish(n_frames)
        spec = JobSpec(path, attrs, output, total, n_chunks, settings.frame_store, options)
        record.create(spec)
        _send_chord(app_for(settings), settings, job_id, n_chunks)
    except BaseException as exc:
        with contextlib.suppress(Exception):  # Redis itself may be what failed
            record.delete_chunks(n_chunks)
            if record.exists():  # created, but the chord could not be sent
                record.fail(exc)
        raise
    return RenderJob(job_id, settings)


def _pack_chunk(chunk: list[tuple[int, Any]]) -> bytes:
    try:
        return codec.packb(chunk)
    except (TypeError, ValueError, OverflowError):
        for frame_idx, params in chunk:
            codec.check_packable(params, f"params of frame {frame_idx}")
        raise


def _send_chord(app: Celery, settings: Settings, job_id: str, n_chunks: int) -> None:
    # The encoder starts first and encodes frames as they arrive; the chord's callback
    # then only has to encode if that streaming encoder never ran or died.
    app.signature(STREAM_TASK, args=(job_id,), queue=settings.encode_queue).apply_async()
    header = [
        app.signature(RENDER_TASK, args=(job_id, k), queue=settings.render_queue)
        for k in range(n_chunks)
    ]
    callback = app.signature(ENCODE_TASK, args=(job_id,), queue=settings.encode_queue,
                             immutable=True)
    callback.link_error(app.signature(CLEANUP_TASK, args=(job_id,),
                                      queue=settings.render_queue, immutable=True))
    chord(header, app=app)(callback)
