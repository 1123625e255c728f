"""Encoding frames to an MP4 that appears at its path complete or not at all."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from celery_animate.encode.join import join_segments, packets
from celery_animate.encode.pvio_adapter import PvioFeed, write_video
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.errors import DiskFull, EncodeIncomplete
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.paths import partial_path

logger = logging.getLogger(__name__)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Free bytes below which a failed write is put down to a full disk.
_NEARLY_FULL = 1 << 20


def _raise_if_disk_full(exc: BaseException, output: Path) -> None:
    """Turn a failure on a full disk (ENOSPC, or ffmpeg's pipe breaking because it hit one) into
    :class:`DiskFull` naming the path; any other failure passes through unchanged."""
    try:
        free = shutil.disk_usage(output.parent).free
    except OSError:
        return
    if getattr(exc, "errno", None) == errno.ENOSPC or free < _NEARLY_FULL:
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

    The video is written to this attempt's own temporary file beside
    ``output``, flushed to disk, and renamed into place, so ``output`` is
    either absent, the old file, or complete: before the rename the file's
    frame count is checked against ``frames``. ``before_publish()`` runs just
    before the rename and may raise to stop it (the temporary file is then
    removed). Raises :class:`~celery_animate.errors.FramesMissing` if frames
    are missing, :class:`DiskFull` when the disk fills up,
    :class:`EncodeIncomplete` when ffmpeg did not write every frame, and
    whatever else ffmpeg raises.
    """
    started = time.monotonic()
    output = Path(output)
    feed = PvioFeed(frames, on_frames, options.saving_log_interval)
    height, width = feed[0].shape[:2]

    def write(tmp: Path) -> str:
        encoder = write_video(tmp, feed, options.fps, mode=options.video_mode,
                              quality=options.video_quality, preset=options.video_preset,
                              extra_ffmpeg_params=options.video_extra_ffmpeg_params)
        _fsync(tmp)
        _check_complete(tmp, len(frames))
        return encoder

    encoder = _publish(write, output, job_id, generation, before_publish)
    return _described(output, len(frames), width, height, options.fps, encoder, started)


def publish_segments(segments: list[Path], output: str | os.PathLike[str], options: RenderOptions,
                     encoder: str, job_id: str, generation: int,
                     before_publish: Callable[[], None]) -> RenderResult:
    """Join encoded ``segments`` (in order) into ``output`` by stream copy, with the same
    guarantees as :func:`encode_frames`: the joined file is checked (frame count, continuous
    timestamps) and flushed before it is renamed into place. Raises :class:`EncodeIncomplete`
    when the segments cannot be joined or the join is not whole, :class:`DiskFull`.
    """
    started = time.monotonic()
    output = Path(output)
    extra = options.video_extra_ffmpeg_params or []
    # The one container option that must be applied again: stream copy rewrites the container.
    faststart = ("-movflags", "+faststart") if "-movflags" in extra else ()
    joined = []

    def write(tmp: Path) -> str:
        joined.append(join_segments(segments, tmp, faststart))
        _fsync(tmp)
        return encoder

    _publish(write, output, job_id, generation, before_publish)
    width, height = joined[0].size
    return _described(output, len(joined[0].pts), width, height, options.fps, encoder, started)


def _publish(write: Callable[[Path], str], output: Path, job_id: str, generation: int,
             before_publish: Callable[[], None]) -> str:
    """Have ``write`` fill this attempt's temporary file, then rename it to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(output, job_id, generation)
    try:
        try:
            encoder = write(tmp)
            before_publish()
            os.replace(tmp, output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync(output.parent)
    except Exception as exc:
        _raise_if_disk_full(exc, output)
        raise
    return encoder


def _described(output: Path, n_frames: int, width: int, height: int, fps: float, encoder: str,
               started: float) -> RenderResult:
    size = output.stat().st_size
    logger.info("wrote %s: %d frames, %dx%d, %s, %.1f MB", output, n_frames, width, height,
                encoder, size / 2**20)
    return RenderResult(
        output=str(output), n_frames=n_frames, width=width, height=height, fps=fps,
        encoder=encoder, size_bytes=size, encode_seconds=time.monotonic() - started,
    )
