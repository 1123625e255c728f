"""The ``celery-animate`` command: render, submit, status, wait, jobs, cancel, doctor.

``render`` blocks until the video exists (on the embedded cluster when
``CELERY_BROKER_URL`` is unset); ``submit`` enqueues on the configured cluster
and prints the job id that ``status`` and ``wait`` take.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from . import wire
from .animator import Animator
from .config import Settings
from .connection import job_redis
from .doctor import run_checks
from .errors import CeleryAnimateError, RenderFailed
from .job import RenderJob
from .options import RenderResult
from .params import PARAMS_FUNCTION
from .progress import follow
from .record import JobRecord, recent_job_ids


def load_animator_class(target: str) -> type[Animator]:
    """``path/to/file.py:Class`` or ``package.module:Class`` -> the class.

    A file inside packages (folders with ``__init__.py``) is imported under
    its dotted name, with the top package's parent put on ``sys.path``, so
    that workers started there can import it under the same name.
    """
    location, sep, class_name = target.rpartition(":")
    if not sep or not location or not class_name:
        raise ValueError(
            f"animator {target!r} must look like examples/wave.py:WaveAnimation or "
            "mypackage.animations:WaveAnimation"
        )
    if location.endswith(".py"):
        file = Path(location).resolve()
        if not file.is_file():
            raise FileNotFoundError(f"no such file: {location}")
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
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Animator)):
        raise ValueError(f"{module_name} has no Animator subclass named {class_name!r}")
    return cls


def load_params(cls: type[Animator], params_file: str | None, n_frames: int | None) -> Any:
    """Per-frame params from ``params_file`` (a JSON or msgpack list), else from the module.

    The module form is a function ``param_by_frame(n_frames)`` next to the
    class, returning an iterable of per-frame params.
    """
    if params_file:
        data = Path(params_file).read_bytes()
        params = wire.unpackb(data) if params_file.endswith((".msgpack", ".mpk")) else json.loads(data)
        if not isinstance(params, list):
            raise ValueError(f"{params_file} must hold a list with one entry per frame")
        return params
    make = getattr(sys.modules[cls.__module__], PARAMS_FUNCTION, None)
    if make is None:
        raise ValueError(
            f"{cls.__module__} defines no {PARAMS_FUNCTION}(n_frames) function; add one or pass "
            "--params FILE (a JSON list with one entry per frame)"
        )
    if n_frames is None:
        raise ValueError(f"--frames is needed to call {cls.__module__}.{PARAMS_FUNCTION}(n_frames)")
    return make(n_frames)


def _add_render_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("animator", help="path/to/file.py:ClassName or package.module:ClassName")
    parser.add_argument("-o", "--output", required=True, help="output .mp4 path")
    parser.add_argument("--frames", type=int, help="number of frames (passed to param_by_frame)")
    parser.add_argument("--fps", type=float, default=30, help="frames per second (default 30)")
    parser.add_argument("--params", help="JSON or msgpack file with a list of per-frame params")
    parser.add_argument("--init", default="{}", help="JSON object of keyword arguments for the class")
    parser.add_argument("--workers", type=int, default=-1,
                        help="worker processes (embedded) or chunking hint (cluster); default: all cores")
    parser.add_argument("--mode", default="auto", choices=["auto", "gpu", "cpu"], help="encoder")
    parser.add_argument("--quality", type=int, help="H.264 quantiser 0-51, lower is better")
    parser.add_argument("--preset", help="encoder preset (libx264: ultrafast..placebo, NVENC: p1..p7)")


def _prepare(args: argparse.Namespace) -> tuple[Animator, Any, dict[str, Any]]:
    cls = load_animator_class(args.animator)
    init = json.loads(args.init)
    if not isinstance(init, dict):
        raise ValueError("--init must be a JSON object, e.g. '{\"n_points\": 500}'")
    animator = cls(**init)
    params = load_params(cls, args.params, args.frames)
    kwargs = {"fps": args.fps, "n_frames": args.frames, "num_workers": args.workers,
              "video_mode": args.mode, "video_quality": args.quality, "video_preset": args.preset}
    return animator, params, kwargs


def _print_result(result: RenderResult) -> None:
    print(f"{result.output}: {result.n_frames} frames, {result.width}x{result.height}, "
          f"{result.fps:g} fps, {result.encoder}, {result.size_bytes / 2**20:.2f} MB")


def cmd_render(args: argparse.Namespace) -> int:
    animator, params, kwargs = _prepare(args)
    result = animator.make_video(args.output, params,
                                 disable_progress_bar=True if args.no_progress else None, **kwargs)
    _print_result(result)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    animator, params, kwargs = _prepare(args)
    job = animator.submit(args.output, params, **kwargs)
    print(job.id)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    progress = RenderJob(args.job).progress()
    print(f"{progress.state} rendered {progress.rendered}/{progress.total} "
          f"encoded {progress.encoded}/{progress.total}")
    return 0


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
        print(f"{job_id}  {progress.state:9s}  rendered {progress.rendered}/{progress.total}  "
              f"encoded {progress.encoded}/{progress.total}  {output}")
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
    if not settings.configured:
        print("celery-animate: no cluster configured (CELERY_BROKER_URL is unset): renders use the "
              "embedded default, which needs nothing else")
        return 0
    checks = run_checks(settings)
    for check in checks:
        print(f"{'ok     ' if check.ok else 'PROBLEM'}  {check.name}: {check.detail}")
    return 0 if all(check.ok for check in checks) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celery-animate",
        description="Render matplotlib animations to MP4 on a Celery cluster "
                    "(an embedded one when CELERY_BROKER_URL is unset).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a video and wait for it")
    _add_render_args(render)
    render.add_argument("--no-progress", action="store_true", help="no progress bars")
    render.set_defaults(func=cmd_render)
    submit = sub.add_parser("submit", help="enqueue a render on the cluster; print the job id")
    _add_render_args(submit)
    submit.set_defaults(func=cmd_submit)
    status = sub.add_parser("status", help="print a job's state and progress")
    status.add_argument("job")
    status.set_defaults(func=cmd_status)
    wait = sub.add_parser("wait", help="wait for a job, print where its video is")
    wait.add_argument("job")
    wait.add_argument("--timeout", type=float, help="give up after this many seconds")
    wait.add_argument("--no-progress", action="store_true", help="no progress bars")
    wait.set_defaults(func=cmd_wait)
    jobs = sub.add_parser("jobs", help="recent jobs with their state and progress")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(func=cmd_jobs)
    cancel = sub.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job")
    cancel.set_defaults(func=cmd_cancel)
    doctor = sub.add_parser("doctor", help="check broker, result backend, frame store, workers, NVENC")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RenderFailed as exc:
        print(f"celery-animate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("celery-animate: interrupted", file=sys.stderr)
        return 130
    except (CeleryAnimateError, ValueError, TypeError, OSError, LookupError, TimeoutError,
            json.JSONDecodeError) as exc:
        print(f"celery-animate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
