"""Output paths: where a video may be written, and the temporary file it is written through.

With ``CELERY_ANIMATE_OUTPUT_ROOT`` set, a job's output resolves inside that
root on the worker (symlinks resolved, so one planted at the output path or
in a parent cannot lead out); without it, the client makes the path absolute
and checks it can be written before anything is enqueued.
"""

from __future__ import annotations

import glob
import os
import secrets
from pathlib import Path

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, OutputPathRefused


def output_path(output: str | os.PathLike[str], settings: Settings) -> Path:
    """The absolute path an output name stands for, on this machine.

    With ``settings.output_root``, paths resolve under it and a path that
    leaves it (``..``, an absolute path elsewhere, a symlink out) raises
    :class:`OutputPathRefused`; without it, relative paths resolve against
    the current directory.
    """
    path = Path(output).expanduser()
    if not settings.output_root:
        return path if path.is_absolute() else Path.cwd() / path
    root = Path(settings.output_root).resolve()
    full = (root / path).resolve()
    if root not in full.parents:
        raise OutputPathRefused(
            f"output path {os.fspath(output)!r} is outside CELERY_ANIMATE_OUTPUT_ROOT ({root}); "
            "give a path inside it, e.g. a file name relative to it"
        )
    return full


def resolve_output(output_file: str | os.PathLike[str], settings: Settings) -> str:
    """Validate ``output_file`` and return what the job records as its output.

    Without an output root the path is made absolute and checked now for
    being writable (so a typo fails before any rendering); with one, the
    path stays as given and each encode worker resolves it under its root.
    Raises :class:`InvalidArgument` or :class:`OutputPathRefused`.
    """
    if not isinstance(output_file, (str, os.PathLike)):
        raise InvalidArgument(f"output_file must be a str or a path, got {output_file!r}")
    text = os.fspath(output_file)
    if not isinstance(text, str) or not text.strip() or Path(text).name in ("", ".", ".."):
        raise InvalidArgument(f"output_file {text!r} is not a file name")
    if "\0" in text:
        raise InvalidArgument("output_file contains a NUL character")
    path = output_path(text, settings)
    if settings.output_root:
        return text
    check_writable(path)
    return str(path)


def check_writable(path: Path) -> None:
    """Raise unless ``path`` names a file this process could create or overwrite."""
    if path.is_dir():
        raise InvalidArgument(
            f"output_file {path} is a directory; give a file name such as {path / 'out.mp4'}")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathRefused(f"cannot write {path}: {ancestor} is not a writable directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathRefused(f"cannot overwrite {path}: the file is not writable")


def _partial_prefix(output: Path, job_id: str) -> str:
    return f".{output.stem}.{job_id[:12]}."


def partial_path(output: Path, job_id: str, generation: int = 0) -> Path:
    """A fresh hidden temporary file beside ``output`` for one encode attempt of ``job_id``.

    Beside it, so the final rename is atomic; named after the job and the
    attempt's lease generation, so what a killed encoder left can be found
    again by :func:`remove_partials`.
    """
    name = f"{_partial_prefix(output, job_id)}g{generation}-{secrets.token_hex(4)}.partial{output.suffix}"
    return output.parent / name


def remove_partials(output: Path, job_id: str, below_generation: int | None = None) -> list[Path]:
    """Delete temporary files of ``job_id`` beside ``output``; return what went.

    With ``below_generation``, only those of earlier encode generations, which
    can no longer publish (an encoder holding a newer lease calls it). Without
    it, all of them: only safe once no encoder of the job can be running (the
    embedded cluster calls it after killing its worker).
    """
    removed = []
    prefix = _partial_prefix(output, job_id)
    for stale in output.parent.glob(f"{glob.escape(prefix)}g*-*.partial{glob.escape(output.suffix)}"):
        generation = stale.name[len(prefix) + 1:].split("-", 1)[0]
        if below_generation is not None and not (generation.isdigit() and int(generation) < below_generation):
            continue
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def segment_path(output: Path, job_id: str, segment: int) -> Path:
    """Where encode segment ``segment`` of ``job_id`` is kept until the segments are joined:
    hidden, beside ``output`` (the encode workers share its directory)."""
    return output.parent / f"{_partial_prefix(output, job_id)}s{segment:05d}{output.suffix}"


def remove_segments(output: Path, job_id: str) -> list[Path]:
    """Delete the encode segments of ``job_id`` beside ``output``, finished or being written
    (a segment is written through its own :func:`partial_path`); return what went."""
    prefix = glob.escape(_partial_prefix(output, job_id))
    suffix = glob.escape(output.suffix)
    removed = []
    digits = "[0-9]" * 5
    for pattern in (f"{prefix}s{digits}{suffix}", f".{prefix}s{digits}.*.partial{suffix}"):
        for stale in output.parent.glob(pattern):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
