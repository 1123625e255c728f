"""What each ``celery-animate`` command does; :mod:`celery_animate.cli.parser` parses the command line.

Kept apart from the parser because these need matplotlib, Celery and Redis,
which ``celery-animate --help`` should not wait for.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import redis
from kombu.exceptions import OperationalError

from celery_animate import wire
from celery_animate.cli.doctor import Check, embedded_checks, run_checks
from celery_animate.client.animator import Animator
from celery_animate.client.dispatch import resolve_num_workers
from celery_animate.client.progress import follow
from celery_animate.client.render_job import RenderJob
from celery_animate.config import Settings
from celery_animate.connection import job_redis
from celery_animate.errors import CeleryAnimateError, FileMissing, InvalidArgument, RenderFailed
from celery_animate.job.record import JobRecord, recent_job_ids
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.params import PARAMS_FUNCTION, check_n_frames
from celery_animate.states import FAILED

#: What an unreachable or misconfigured broker or result backend raises.
CONNECTION_ERRORS = (redis.RedisError, OperationalError)


def load_animator_class(target: str) -> type[Animator]:
    """``path/to/file.py:Class`` or ``package.module:Class`` -> the class.

    A file inside packages (folders with ``__init__.py``) is imported under
    its dotted name, with the top package's parent put on ``sys.path``, so
    that workers started there can import it under the same name. Raises
    :class:`InvalidArgument` (a ``ValueError``) for a target that names no Animator subclass and
    :class:`FileMissing` (a ``FileNotFoundError``) for a ``.py`` file that does not exist.
    """
    location, sep, class_name = target.rpartition(":")
    if not sep or not location or not class_name:
        raise InvalidArgument(
            f"animator {target!r} must look like examples/wave.py:WaveAnimation or "
            "mypackage.animations:WaveAnimation"
        )
    if location.endswith(".py"):
        file = Path(location).resolve()
        if not file.is_file():
            raise FileMissing(f"no such file: {location}")
        parts = [file.stem]
        root = file.parent
        while (root / "__init__.py").exists():
            parts.insert(0, root.name)
            root = root.parent
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        module_name = ".".join(parts)
    else:
        module_name = location
        if os.getcwd() not in sys.path:  # as `python -m` does: the current folder is importable
            sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the module was found; something it imports is missing
        raise InvalidArgument(
            f"cannot import {module_name} ({exc}): run from the folder that contains it, or name "
            "the file, e.g. examples/wave.py:WaveAnimation") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Animator)):
        raise InvalidArgument(f"{module_name} has no Animator subclass named {class_name!r}")
    return cls


def load_params(cls: type[Animator], params_file: str | None, n_frames: int | None) -> Any:
    """Per-frame params from ``params_file`` (a JSON or msgpack list), else from the module.

    The module form is a function ``param_by_frame(n_frames)`` next to the
    class, returning an iterable of per-frame params. Raises :class:`FileMissing` for a
    ``params_file`` that does not exist and :class:`InvalidArgument` for one that cannot be read
    or holds no list, or when neither gives params.
    """
    if params_file:
        try:
            data = Path(params_file).read_bytes()
        except FileNotFoundError:
            raise FileMissing(f"--params {params_file}: no such file") from None
        try:
            params = wire.unpackb(data) if params_file.endswith((".msgpack", ".mpk")) else json.loads(data)
        except ValueError as exc:  # json's errors, InvalidArgument and UnicodeDecodeError are ones
            raise InvalidArgument(f"--params {params_file} cannot be read: {exc}") from None
        if not isinstance(params, list):
            raise InvalidArgument(f"--params {params_file} must hold a list with one entry per frame, "
                                  f"not a {type(params).__name__}")
        return params
    make = getattr(sys.modules[cls.__module__], PARAMS_FUNCTION, None)
    if make is None:
        raise InvalidArgument(
            f"{cls.__module__} defines no {PARAMS_FUNCTION}(n_frames) function; add one or pass "
            "--params FILE (a JSON list with one entry per frame)"
        )
    if n_frames is None:
        raise InvalidArgument(f"--frames is needed to call {cls.__module__}.{PARAMS_FUNCTION}(n_frames)")
    return make(n_frames)


def _prepare(args: argparse.Namespace) -> tuple[Animator, Any, dict[str, Any]]:
    """The animator, its params and ``make_video``'s keywords from the command line.

    The numbers are checked first, by the checks ``make_video`` runs, so that a bad one is
    reported before the animator's module is imported or its params are made.
    """
    check_n_frames(args.frames, "--frames")
    resolve_num_workers(args.workers)
    RenderOptions(fps=args.fps, video_mode=args.mode, video_quality=args.quality, video_preset=args.preset)
    try:
        init = json.loads(args.init)
    except ValueError as exc:
        raise InvalidArgument(f"--init is not valid JSON ({exc}): give an object, "
                              "e.g. '{\"n_points\": 500}'") from None
    if not isinstance(init, dict):
        raise InvalidArgument("--init must be a JSON object, e.g. '{\"n_points\": 500}'")
    cls = load_animator_class(args.animator)
    animator = cls(**init)
    params = load_params(cls, args.params, args.frames)
    kwargs = {"fps": args.fps, "n_frames": args.frames, "num_workers": args.workers,
              "video_mode": args.mode, "video_quality": args.quality, "video_preset": args.preset,
              "stills": args.still, "cache": args.cache}
    if args.frame_range is not None:
        params, kwargs["frames"] = list(params), args.frame_range  # frames are picked by index
    return animator, params, kwargs


def _outputs(args: argparse.Namespace) -> str | list[str]:
    """``-o`` as ``make_video`` takes it: one output, or the list of several."""
    return args.output[0] if len(args.output) == 1 else args.output


def _print_result(result: RenderResult) -> None:
    print(f"{result.output}: {result.n_frames} frames, {result.width}x{result.height}, "
          f"{result.fps:g} fps, {result.encoder}, {result.size_bytes / 2**20:.2f} MB")
    for path in [*result.outputs[1:], *result.stills]:
        print(path)


def cmd_render(args: argparse.Namespace) -> int:
    animator, params, kwargs = _prepare(args)
    result = animator.make_video(_outputs(args), params,
                                 disable_progress_bar=True if args.no_progress else None, **kwargs)
    _print_result(result)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    animator, params, kwargs = _prepare(args)
    job = animator.submit(_outputs(args), params, webhook=args.webhook, **kwargs)
    print(job.id)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    job = RenderJob(args.job)
    progress = job.progress()
    announced = _announcements(job.on_done_status(), job.webhook_status())
    print(f"{progress.state} rendered {progress.rendered}/{progress.total} "
          f"encoded {progress.encoded}/{progress.total}{announced}")
    if progress.state == FAILED:
        try:
            job.result()
        except RenderFailed as failed:  # why: the worker's exception, without its traceback
            print(f"error: {failed.exc_type}: {failed.exc_message}")
            print(f"(`celery-animate wait {job.id}` shows the worker's traceback)")
    return 0


def _announcements(on_done: dict | None, webhook: dict | None) -> str:
    """`` on_done sent  webhook delivered (HTTP 200)``: how announcing the job's end went."""
    text = ""
    for name, status in (("on_done", on_done), ("webhook", webhook)):
        if status is None:
            continue
        delivered = status["state"] == "delivered" and "http_status" in status
        detail = f"HTTP {status['http_status']}" if delivered else str(status.get("reason", ""))[:120]
        text += f"  {name} {status['state']}" + (f" ({detail})" if detail else "")
    return text


def cmd_wait(args: argparse.Namespace) -> int:
    job = RenderJob(args.job)
    if args.timeout is not None:
        result = job.wait(timeout=args.timeout)
    else:
        result = follow(job, disable_progress_bar=True if args.no_progress else None)
    _print_result(result)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    client = job_redis(settings)
    ids = recent_job_ids(client, args.limit)
    if not ids:
        print("no jobs")
    for job_id in ids:
        record = JobRecord(client, job_id)
        try:
            progress = record.progress()
        except CeleryAnimateError:
            continue  # its record expired
        output = record.field("output") or ""
        announced = _announcements(record.announce_status("on_done"), record.announce_status("webhook"))
        print(f"{job_id}  {progress.state:9s}  rendered {progress.rendered}/{progress.total}  "
              f"encoded {progress.encoded}/{progress.total}  {output}{announced}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = RenderJob(args.job)
    if job.cancel():
        print(f"{args.job} cancelled")
        return 0
    print(f"{args.job} had already ended ({job.progress().state})")
    return 1


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    # The animator's name as a job would send it, found as `submit` finds it.
    cls = load_animator_class(args.animator) if args.animator else None
    if settings.configured:
        checks = run_checks(settings, cls and f"{cls.__module__}:{cls.__qualname__}")
    else:
        print("no cluster configured (CELERY_BROKER_URL is unset): renders use the embedded "
              "default on this machine, which needs:")
        checks = embedded_checks()
        if cls is not None:
            checks.append(Check("animator", True, f"{cls.__module__}:{cls.__qualname__} imports here, "
                                "and the embedded default's workers are forked from this process"))
    for check in checks:
        print(f"{'ok     ' if check.ok else 'PROBLEM'}  {check.name}: {check.detail}")
    return 0 if all(check.ok for check in checks) else 1


