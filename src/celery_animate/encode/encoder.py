"""Encoding frames to an MP4 that appears at its path complete or not at all."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..options import RenderOptions, RenderResult
from ..paths import partial_path
from .pvio_adapter import PvioFeed, write_video
from .stored_frames import StoredFrames

logger = logging.getLogger(__name__)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    either absent, the old file, or complete. ``before_publish()`` runs just
    before the rename and may raise to stop it (the temporary file is then
    removed). Raises :class:`~celery_animate.errors.FramesMissing` if frames
    are missing and whatever ffmpeg raises.
    """
    started = time.monotonic()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    feed = PvioFeed(frames, on_frames, options.saving_log_interval)
    height, width = feed[0].shape[:2]
    tmp = partial_path(output, job_id, generation)
    encoder = write_video(tmp, feed, options.fps, mode=options.video_mode,
                          quality=options.video_quality, preset=options.video_preset,
                          extra_ffmpeg_params=options.video_extra_ffmpeg_params)
    try:
        _fsync(tmp)
        before_publish()
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(output.parent)
    size = output.stat().st_size
    logger.info("wrote %s: %d frames, %dx%d, %s, %.1f MB", output, len(frames), width, height,
                encoder, size / 2**20)
    return RenderResult(
        output=str(output), n_frames=len(frames), width=width, height=height, fps=options.fps,
        encoder=encoder, size_bytes=size, encode_seconds=time.monotonic() - started,
    )
