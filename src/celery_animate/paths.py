"""Output paths and URLs: where a video may be written, and the temporary file it is written through.

An output is a local path or an object-store URL (``s3://bucket/key.mp4``,
``gs://``, ``az://``; ``file://`` stands for a local path). With
``CELERY_ANIMATE_OUTPUT_ROOT`` set (a directory, a URL prefix, or a
comma-separated list of them), a job's output must lie under one of those
roots on the worker (symlinks resolved, so one planted at the output path or
in a parent cannot lead out; a URL's key checked segment by segment); a
relative name resolves against the first root. Without it, the client makes a
path absolute and checks it can be written before anything is enqueued.

An object-store output is encoded into a local stand-in path in the worker's
staging directory (:class:`StagedOutput`, which carries the URL), so
temporary files and segments lie beside it as they lie beside a local output.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, OutputPathRefused
from celery_animate.formats import MAX_OUTPUTS

#: URL schemes of object stores an output may name (one library, obstore, serves them all).
OBJECT_SCHEMES = ("s3", "gs", "az")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: Bucket (container) names: lowercase letters, digits, dots, dashes, underscores; 3-63 long.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


def is_url(output: str | os.PathLike[str]) -> bool:
    """Whether ``output`` is written as a URL (``scheme://...``) rather than a path."""
    return isinstance(output, str) and _URL.match(output) is not None


@dataclass(frozen=True)
class ObjectUrl:
    """An object in an object store: ``scheme://bucket/key``, already checked."""

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def store_url(self) -> str:
        """The URL of the bucket alone (what an object store is opened with)."""
        return f"{self.scheme}://{self.bucket}"


def _check_key(key: str, text: str, *, prefix: bool = False) -> None:
    """Refuse a key that could mean something else than it says: empty, ``.``/``..`` or empty
    segments, percent-encoding, a backslash, a NUL or other control character, ``?``/``#``."""
    bad = next((c for c in key if ord(c) < 32 or c in "\\%?#\x7f"), None)
    if bad is not None:
        raise OutputPathRefused(
            f"output URL {text!r} contains {bad!r} in its key: keys may not contain percent-"
            "encoding, backslashes, control characters, '?' or '#'; write the key as plain text")
    parts = key.split("/")
    if prefix and parts[-1] == "":
        parts = parts[:-1]
    if not prefix and (not key or key.endswith("/")):
        raise OutputPathRefused(f"output URL {text!r} names no object: give a key such as "
                                f"{text.rstrip('/')}/video.mp4")
    if any(part in ("", ".", "..") for part in parts):
        raise OutputPathRefused(f"output URL {text!r} has an empty, '.' or '..' segment in its key "
                                "(a '//' or a way out of its prefix): refused")


def parse_object_url(text: str, *, prefix: bool = False) -> ObjectUrl:
    """Check an object-store URL and split it; with ``prefix``, a root such as ``s3://b/out/``
    (the key may be empty or end with ``/``). Raises :class:`OutputPathRefused` for another
    scheme, a bad bucket name or a key that is not plain (see :func:`_check_key`)."""
    match = _URL.match(text)
    scheme = match.group(1).lower() if match else ""
    if scheme not in OBJECT_SCHEMES:
        raise OutputPathRefused(f"output URL {text!r}: scheme {scheme or '(none)'!r} is not "
                                f"supported; use a path, file://, or one of "
                                f"{', '.join(s + '://' for s in OBJECT_SCHEMES)}")
    bucket, _, key = text[match.end():].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise OutputPathRefused(f"output URL {text!r}: {bucket!r} is not a valid bucket name "
                                "(3-63 lowercase letters, digits, '.', '-', '_')")
    _check_key(key, text, prefix=prefix)
    return ObjectUrl(scheme, bucket, key)


def _file_url_path(text: str) -> str:
    """The local path a ``file://`` URL names (``file:///abs/path`` or ``file://localhost/...``)."""
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or "%" in text:
        raise OutputPathRefused(f"output URL {text!r}: a file URL must be file:///absolute/path "
                                "with no host, query or percent-encoding")
    return unquote(parts.path)


class StagedOutput(type(Path())):  # type: ignore[misc]
    """The local stand-in of an object-store output on this machine: a path in the staging
    directory, named after the URL, that the video is encoded beside and uploaded from. Its
    ``url`` (:class:`ObjectUrl`) and ``store_env`` (the settings' object-store variables) say
    where it goes; paths derived from it (``parent``, ``/``) are plain paths without them."""

    url: ObjectUrl
    store_env: tuple[tuple[str, str], ...]


def staging_root(settings: Settings) -> Path:
    """The directory where this machine stages object-store outputs (``CELERY_ANIMATE_STAGING_DIR``
    or ``celery-animate-staging`` in the temporary directory)."""
    return Path(settings.staging_dir or Path(tempfile.gettempdir()) / "celery-animate-staging")


def staged_output(url: ObjectUrl, settings: Settings) -> StagedOutput:
    """The :class:`StagedOutput` of ``url`` on this machine."""
    staged = StagedOutput(staging_root(settings) / url.scheme / url.bucket / url.key)
    staged.url = url
    staged.store_env = settings.object_store_env
    return staged


def _object_in_roots(url: ObjectUrl, text: str, roots: tuple[str, ...]) -> None:
    """Raise :class:`OutputPathRefused` unless ``url`` lies under one of the URL ``roots``."""
    for root in roots:
        if not is_url(root) or root.lower().startswith("file://"):
            continue
        base = parse_object_url(root, prefix=True)
        start = base.key if not base.key or base.key.endswith("/") else base.key + "/"
        if (base.scheme, base.bucket) == (url.scheme, url.bucket) and url.key.startswith(start):
            return
    raise OutputPathRefused(
        f"output URL {text!r} is outside CELERY_ANIMATE_OUTPUT_ROOT ({', '.join(roots)}): this "
        "worker writes only under those roots; give a URL under one of them, or a name relative "
        "to the first")


def output_path(output: str | os.PathLike[str], settings: Settings) -> Path:
    """The absolute path an output name stands for, on this machine.

    An object-store URL (or a relative name under a URL root) gives its
    :class:`StagedOutput`; a ``file://`` URL is its path. With
    ``settings.output_roots``, an output must lie under one of them and a path
    that leaves them (``..``, an absolute path elsewhere, a symlink out), a
    URL of another scheme or bucket, or a key outside the root's prefix raises
    :class:`OutputPathRefused`; relative names resolve under the first root.
    Without roots, relative paths resolve against the current directory and
    any URL of a supported scheme is allowed.
    """
    text = os.fspath(output)
    if is_url(text):
        if text.lower().startswith("file://"):
            text = _file_url_path(text)
        else:
            url = parse_object_url(text)
            if settings.output_roots:
                _object_in_roots(url, text, settings.output_roots)
            return staged_output(url, settings)
    roots = settings.output_roots
    path = Path(text).expanduser()
    if not roots:
        return path if path.is_absolute() else Path.cwd() / path
    if not path.is_absolute() and is_url(roots[0]) and not roots[0].lower().startswith("file://"):
        base = parse_object_url(roots[0], prefix=True)
        joined = f"{roots[0].rstrip('/')}/{text}" if base.key else f"{base.store_url}/{text}"
        return output_path(joined, settings)
    local = [Path(_file_url_path(r) if is_url(r) else r).resolve() for r in roots
             if not is_url(r) or r.lower().startswith("file://")]
    for root in local[:1] if not path.is_absolute() else local:
        full = (root / path).resolve()
        if root in full.parents:
            return full
    raise OutputPathRefused(
        f"output path {os.fspath(output)!r} is outside CELERY_ANIMATE_OUTPUT_ROOT "
        f"({', '.join(roots)}); give a path inside it, e.g. a file name relative to it"
    )


def output_list(output_file: Any) -> list[str | os.PathLike[str]]:
    """``make_video``'s ``output_file`` as a list: one path or URL, or a list or tuple of them
    (several outputs from one render, the first being the job's ``output``). Raises
    :class:`InvalidArgument` for an empty list, more than :data:`MAX_OUTPUTS`, or a repeat."""
    outputs = list(output_file) if isinstance(output_file, (list, tuple)) else [output_file]
    if not outputs or len(outputs) > MAX_OUTPUTS:
        raise InvalidArgument(f"output_file must be a path or URL, or a list of 1 to {MAX_OUTPUTS} "
                              f"of them, got {output_file!r}")
    names = [os.fspath(o) if isinstance(o, (str, os.PathLike)) else o for o in outputs]
    if len(set(map(str, names))) != len(names):
        raise InvalidArgument(f"output_file names an output twice: {output_file!r}")
    return outputs


def resolve_output(output_file: str | os.PathLike[str], settings: Settings) -> str:
    """Validate ``output_file`` and return what the job records as its output.

    An object-store URL is checked (and, with output roots, policed as the
    workers will) and recorded as given. Without an output root a path is
    made absolute and checked now for being writable (so a typo fails before
    any rendering); with one, the path stays as given and each encode worker
    resolves it under its roots. Raises :class:`InvalidArgument` or
    :class:`OutputPathRefused`.
    """
    if not isinstance(output_file, (str, os.PathLike)):
        raise InvalidArgument(f"output_file must be a str or a path, got {output_file!r}")
    text = os.fspath(output_file)
    if not isinstance(text, str) or not text.strip() or Path(text).name in ("", ".", ".."):
        raise InvalidArgument(f"output_file {text!r} is not a file name")
    if "\0" in text:
        raise InvalidArgument("output_file contains a NUL character")
    path = output_path(text, settings)
    if isinstance(path, StagedOutput):
        return str(path.url) if is_url(text) else text
    if settings.output_roots:
        return text
    check_writable(path)
    return str(path)


def check_writable(path: Path) -> None:
    """Raise unless ``path`` names a file this process could create or overwrite.

    Its directory must exist (a typo in it fails here, not after rendering) and take a new
    file: one is created and removed again, which also catches what permissions do not show
    (a read-only or pseudo filesystem such as ``/proc``).
    """
    if path.is_dir():
        raise InvalidArgument(
            f"output_file {path} is a directory; give a file name such as {path / 'out.mp4'}")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathRefused(f"cannot write {path}: {ancestor} is not a writable directory")
    if ancestor != path.parent:
        raise OutputPathRefused(
            f"cannot write {path}: the directory {path.parent} does not exist; create it first "
            f"(mkdir -p '{path.parent}') or correct the path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathRefused(f"cannot write {path}: {ancestor} is not a writable directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathRefused(f"cannot overwrite {path}: the file is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=".celery-animate-check-", dir=path.parent)
    except OSError as exc:
        raise OutputPathRefused(
            f"cannot write {path}: creating a file in {path.parent} failed ({exc.strerror or exc}); "
            "choose a directory on a writable filesystem") from None
    os.close(fd)
    os.unlink(probe)


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
    """The hidden name beside ``output`` that encode segment ``segment`` of ``job_id`` was kept
    under by earlier versions (:func:`remove_segments` still removes such files); an encoder
    now gives this name to its own temporary copy of the segment, and keeps the segment in
    the frame store."""
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
