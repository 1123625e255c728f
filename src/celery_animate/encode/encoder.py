"""Encoding frames to an MP4 that appears at its path or URL complete or not at all."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from celery_animate.encode.formats import count_frames, write_format
from celery_animate.encode.join import Packets, join_segments, packets
from celery_animate.encode.pvio_adapter import PvioFeed, write_video
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.errors import DiskFull, EncodeIncomplete, OutputStoreError
from celery_animate.formats import GIF, MP4, format_of, gif_fps
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.outputs import fsync_path, open_output

logger = logging.getLogger(__name__)


#: Free bytes below which a failed write is put down to a full disk.
_NEARLY_FULL = 1 << 20


def _raise_if_disk_full(exc: BaseException, output: Path) -> None:
    """Turn a failure on a full disk (ENOSPC, or ffmpeg's pipe breaking because it hit one) into
    :class:`DiskFull` naming the path; any other failure passes through unchanged.

    Only a real filesystem can be full: a pseudo one (``/proc``, ``/sys``) reports no space at
    all, and a failure there (ffmpeg cannot create the file) is not put down to a full disk.
    """
    try:
        usage = shutil.disk_usage(output.parent)
    except OSError:
        return
    free = usage.free
    if getattr(exc, "errno", None) == errno.ENOSPC or (usage.total > 0 and free < _NEARLY_FULL):
        raise DiskFull(errno.ENOSPC, f"no space left on the device of {output.parent} ({free} bytes "
                       f"free) while writing {output.name}: free some space or choose another "
                       "output directory, then submit the job again") from exc


def _check_complete(path: Path, expected: int) -> None:
    """ffmpeg's exit status is not checked by imageio: count what it wrote instead."""
    try:
        written = len(packets(path).pts)
    except EncodeIncomplete as exc:
        raise EncodeIncomplete(f"ffmpeg left an unreadable video ({exc}); was the disk full or "
                               "ffmpeg killed?") from exc
    if written != expected:
        raise EncodeIncomplete(f"ffmpeg wrote {written} of {expected} frames")


def encode_frames(
    frames: StoredFrames,
    output: str | os.PathLike[str],
    options: RenderOptions,
    on_frames: Callable[[int], None] = lambda n: None,
    job_id: str = "local",
    generation: int = 0,
    before_publish: Callable[[], None] = lambda: None,
) -> RenderResult:
    """Encode ``frames`` into ``output`` and describe the result.

    ``output`` is a path, or the :class:`~celery_animate.paths.StagedOutput`
    of an object-store URL (as :func:`~celery_animate.paths.output_path`
    gives them). The video is written to this attempt's own temporary file
    beside ``output`` (for a URL: in the staging directory), flushed to disk,
    and then renamed into place (or uploaded), so the output is either absent,
    the old one, or complete: before that the file's frame count is checked
    against ``frames``. ``before_publish()`` runs just before and may raise to
    stop it (the temporary file is then removed). Raises
    :class:`~celery_animate.errors.FramesMissing` if frames are missing,
    :class:`DiskFull` when the disk fills up, :class:`EncodeIncomplete` when
    ffmpeg did not write every frame, an
    :class:`~celery_animate.errors.OutputStoreError` when the upload fails,
    and whatever else ffmpeg raises.
    """
    started = time.monotonic()
    output = output if isinstance(output, Path) else Path(output)  # keep a StagedOutput's URL
    fmt = format_of(output)
    if fmt != MP4:
        return _encode_format(fmt, frames, output, options, on_frames, job_id, generation,
                              before_publish, started)
    feed = PvioFeed(frames, on_frames, options.saving_log_interval)
    height, width = feed[0].shape[:2]

    def write(tmp: Path) -> str:
        encoder = write_video(tmp, feed, options.fps, mode=options.video_mode,
                              quality=options.video_quality, preset=options.video_preset,
                              extra_ffmpeg_params=options.video_extra_ffmpeg_params)
        fsync_path(tmp)
        _check_complete(tmp, len(frames))
        return encoder

    location, size, encoder = _publish(write, output, job_id, generation, before_publish)
    return _described(location, size, len(frames), width, height, options.fps, encoder, started)


def _encode_format(fmt: str, frames: StoredFrames, output: Path, options: RenderOptions,
                   on_frames: Callable[[int], None], job_id: str, generation: int,
                   before_publish: Callable[[], None], started: float) -> RenderResult:
    """:func:`encode_frames` for a format other than H.264 MP4 (``encode/formats.py``)."""
    shapes: list[tuple[int, ...]] = []

    def first_shape(frame: np.ndarray) -> np.ndarray:
        if not shapes:
            shapes.append(frame.shape)
        return frame

    def write(tmp: Path) -> str:
        codec = write_format(fmt, tmp, _Mapped(frames, first_shape), options.fps,
                             options.video_quality, on_frames)
        fsync_path(tmp)
        written = count_frames(fmt, tmp)
        if written != len(frames):
            tmp.unlink(missing_ok=True)
            raise EncodeIncomplete(f"ffmpeg wrote {written} of {len(frames)} frames")
        return codec

    location, size, encoder = _publish(write, output, job_id, generation, before_publish)
    fps = gif_fps(options.fps) if fmt == GIF else options.fps
    if fps != options.fps:
        logger.info("GIF delays are whole hundredths of a second: %g fps written as %.4g fps",
                    options.fps, fps)
    return _described(location, size, len(frames), shapes[0][1], shapes[0][0], fps, encoder,
                      started)


class _Mapped:
    """An iterable of ``function(item)`` for each item of ``items``, as often as it is iterated."""

    def __init__(self, items, function):
        self.items, self.function = items, function

    def __iter__(self):
        return map(self.function, iter(self.items))


def publish_segments(segments: list[Path], output: str | os.PathLike[str], options: RenderOptions,
                     encoder: str, job_id: str, generation: int,
                     before_publish: Callable[[], None],
                     on_joined: Callable[[Path, Packets], None] | None = None,
                     listed: list[Packets] | None = None) -> RenderResult:
    """Join encoded ``segments`` (in order) into ``output`` by stream copy, with the same
    guarantees as :func:`encode_frames`: the joined file is checked (frame count, continuous
    timestamps) and flushed before it is renamed into place (or uploaded). ``on_joined`` is
    given the flushed file and its packets before that (to keep a copy); ``listed`` are the
    segments' packets when the caller read them already. Raises
    :class:`EncodeIncomplete` when the segments cannot be joined or the join is not whole,
    :class:`DiskFull`, :class:`~celery_animate.errors.OutputStoreError`.
    """
    started = time.monotonic()
    output = output if isinstance(output, Path) else Path(output)
    extra = options.video_extra_ffmpeg_params or []
    # The one container option that must be applied again: stream copy rewrites the container.
    faststart = ("-movflags", "+faststart") if "-movflags" in extra else ()
    joined = []

    def write(tmp: Path) -> str:
        joined.append(join_segments(segments, tmp, faststart, listed))
        fsync_path(tmp)
        if on_joined is not None:
            on_joined(tmp, joined[0])
        return encoder

    location, size, _ = _publish(write, output, job_id, generation, before_publish)
    width, height = joined[0].size
    return _described(location, size, len(joined[0].pts), width, height, options.fps, encoder,
                      started)


def publish_bytes(data: bytes, output: str | os.PathLike[str], job_id: str, generation: int,
                  before_publish: Callable[[], None]) -> str:
    """Publish ``data`` (a still's PNG) at ``output`` as a video is: written to this attempt's
    temporary file, flushed, then renamed into place (or uploaded); return where it is."""
    output = output if isinstance(output, Path) else Path(output)

    def write(tmp: Path) -> str:
        tmp.write_bytes(data)
        fsync_path(tmp)
        return "png"

    location, _, _ = _publish(write, output, job_id, generation, before_publish)
    return location


def _publish(write: Callable[[Path], str], output: Path, job_id: str, generation: int,
             before_publish: Callable[[], None]) -> tuple[str, int, str]:
    """Have ``write`` fill this attempt's temporary file, then publish it to ``output`` (a rename,
    or an upload that starts only once ``before_publish()`` let it); return the output's
    location, its size in bytes, and the encoder ``write`` named."""
    target = open_output(output)
    tmp = target.temporary(job_id, generation)
    try:
        try:
            encoder = write(tmp)
            before_publish()
            size = target.publish(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OutputStoreError:
        raise
    except Exception as exc:
        _raise_if_disk_full(exc, output)
        raise
    return target.location, size, encoder


def _described(location: str, size: int, n_frames: int, width: int, height: int, fps: float,
               encoder: str, started: float) -> RenderResult:
    logger.info("wrote %s: %d frames, %dx%d, %s, %.1f MB", location, n_frames, width, height,
                encoder, size / 2**20)
    return RenderResult(
        output=location, n_frames=n_frames, width=width, height=height, fps=fps,
        encoder=encoder, size_bytes=size, encode_seconds=time.monotonic() - started,
    )
