"""The ``celery-animate`` command line: render, submit, status, wait, jobs, cancel, doctor.

``render`` blocks until the video exists (on the embedded cluster when
``CELERY_BROKER_URL`` is unset); ``submit`` enqueues on the configured cluster
and prints the job id that ``status`` and ``wait`` take. Every error is one
line on stderr: status 1 for a job that failed, 2 for anything else. A command
whose output is no longer read (``celery-animate jobs | head -1``) stops
quietly with status 141, as a program killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from importlib import metadata

from celery_animate.errors import CeleryAnimateError, RenderFailed


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def _frame_range(text: str) -> slice:
    """An argparse type: ``START:STOP[:STEP]`` (each part may be empty) as a slice of frames."""
    parts = text.split(":")
    wrong = argparse.ArgumentTypeError(
        f"{text!r} is not START:STOP or START:STOP:STEP (e.g. 0:600:10, or ::10)")
    if not 2 <= len(parts) <= 3:
        raise wrong
    try:
        numbers = [int(part) if part.strip() else None for part in parts]
    except ValueError:
        raise wrong from None
    return slice(*numbers)


def _add_render_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("animator", help="path/to/file.py:ClassName or package.module:ClassName")
    parser.add_argument("-o", "--output", required=True, action="append",
                        help="output path (.mp4; .gif, .webm, .zip of PNG frames, or .png for "
                             "the --still frames alone) or an object "
                             "URL (s3://bucket/key.mp4, gs://, az://, file://); workers write only "
                             "under CELERY_ANIMATE_OUTPUT_ROOT. Repeat it for more outputs from "
                             "the same frames (-o run.mp4 -o run.gif)")
    parser.add_argument("--still", type=int, action="append", default=[], metavar="FRAME",
                        help="also keep this frame as a PNG beside the first output "
                             "(run-00299.png); repeat it for more")
    parser.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                        help="take unchanged frames from the frame cache "
                             "(default: CELERY_ANIMATE_CACHE)")
    parser.add_argument("--frames", type=int, help="number of frames (passed to param_by_frame)")
    parser.add_argument("--frame-range", type=_frame_range, metavar="START:STOP[:STEP]",
                        help="render only these frames of the animation, e.g. ::10 for every "
                             "tenth (a preview) or 100:200 to redo a range")
    parser.add_argument("--fps", type=float, default=30, help="frames per second (default 30)")
    parser.add_argument("--params", help="JSON or msgpack file with a list of per-frame params")
    parser.add_argument("--init", default="{}", help="JSON object of keyword arguments for the class")
    parser.add_argument("--workers", type=int, default=-1,
                        help="worker processes (embedded) or chunking hint (cluster); default: all cores")
    parser.add_argument("--mode", default="auto", choices=["auto", "gpu", "cpu"], help="encoder")
    parser.add_argument("--quality", type=int, help="H.264 quantiser 0-51, lower is better")
    parser.add_argument("--preset", help="encoder preset (libx264: ultrafast..placebo, NVENC: p1..p7)")


def _version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("celery-animate")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(version unknown: not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celery-animate",
        description="Render matplotlib animations to MP4 on a Celery cluster "
                    "(an embedded one when CELERY_BROKER_URL is unset).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a video and wait for it")
    _add_render_args(render)
    render.add_argument("--no-progress", action="store_true", help="no progress bars")
    render.set_defaults(command_name="render")
    submit = sub.add_parser("submit", help="enqueue a render on the cluster; print the job id")
    _add_render_args(submit)
    submit.add_argument("--webhook", metavar="URL",
                        help="POST the job's end, signed, to URL (under a prefix of "
                             "CELERY_ANIMATE_WEBHOOK_ALLOW)")
    submit.set_defaults(command_name="submit")
    status = sub.add_parser("status", help="print a job's state and progress")
    status.add_argument("job")
    status.set_defaults(command_name="status")
    wait = sub.add_parser("wait", help="wait for a job, print where its video is")
    wait.add_argument("job")
    wait.add_argument("--timeout", type=_seconds, help="give up after this many seconds")
    wait.add_argument("--no-progress", action="store_true", help="no progress bars")
    wait.set_defaults(command_name="wait")
    jobs = sub.add_parser("jobs", help="recent jobs with their state and progress")
    jobs.add_argument("--limit", type=_positive_int, default=20, help="how many jobs (default 20)")
    jobs.set_defaults(command_name="jobs")
    cancel = sub.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job")
    cancel.set_defaults(command_name="cancel")
    doctor = sub.add_parser("doctor", help="check broker, result backend, frame store, workers, NVENC")
    doctor.add_argument("--animator", metavar="ANIMATOR",
                        help="also check that a render worker can import this animator "
                             "(path/to/file.py:ClassName or package.module:ClassName)")
    doctor.set_defaults(command_name="doctor")
    return parser


#: The status of a command whose reader went away (``celery-animate jobs | head -1``): what a
#: shell reports for a program killed by SIGPIPE, as ``ls`` or ``cat`` would be.
READER_GONE = 128 + 13


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that says nothing either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return READER_GONE


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help or --version into a closed pipe: BrokenPipeError, here
        raise
    from celery_animate.cli import commands  # only now: it loads Celery and Redis; --help not

    try:
        status = getattr(commands, f"cmd_{args.command_name}")(args)
        sys.stdout.flush()  # a reader that went away shows here, not as noise at exit
        return status
    except BrokenPipeError:
        raise
    except RenderFailed as exc:
        print(f"celery-animate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("celery-animate: interrupted", file=sys.stderr)
        return 130
    except commands.CONNECTION_ERRORS as exc:
        print(f"celery-animate: error: cannot reach the broker or result backend ({exc}): is Redis "
              "running there? Check CELERY_BROKER_URL, or unset it to use the embedded default",
              file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"celery-animate: error: {exc}", file=sys.stderr)
        return 2
    except (CeleryAnimateError, ValueError, TypeError, OSError, LookupError, TimeoutError,
            json.JSONDecodeError) as exc:
        print(f"celery-animate: error: {exc}", file=sys.stderr)
        return 2
