"""Encoding stored frames to MP4 with parallel-video-io, written atomically.

pvio (and with it torch) is imported only here and only when an encode runs,
so processes that merely render or enqueue never need it.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .frames import unpack_frame
from .jobs import RenderOptions, RenderResult
from .store import FrameStore

logger = logging.getLogger(__name__)


class StoredFrames:
    """The frames of one job as the re-iterable sequence pvio expects.

    pvio reads ``len()``, ``[0]`` and iterates (more than once when a GPU
    encode falls back to the CPU); every pass streams from the store, so
    memory stays at one batch of frames whatever the frame count.
    """

    def __init__(self, store: FrameStore, job_id: str, n_frames: int):
        self.store = store
        self.job_id = job_id
        self.n_frames = n_frames

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.n_frames:
            raise IndexError(index)
        (payload,) = self.store.get_many(self.job_id, [index])
        if payload is None:
            raise LookupError(f"frame {index} of job {self.job_id} is missing from the frame store")
        return unpack_frame(payload)

    def __iter__(self) -> Iterator[np.ndarray]:
        for payload in self.store.iter_payloads(self.job_id, self.n_frames):
            yield unpack_frame(payload)


class _Counted:
    """Wraps a frame sequence so the pass that feeds ffmpeg reports progress."""

    def __init__(self, frames: StoredFrames, on_frames: Callable[[int], None],
                 log_interval: int | None):
        self.frames = frames
        self.on_frames = on_frames
        self.log_interval = log_interval
        self.passes = 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.frames[index]

    def __iter__(self) -> Iterator[np.ndarray]:
        # pvio's first pass only checks frame sizes; ffmpeg is fed from the second.
        self.passes += 1
        if self.passes == 1:
            yield from self.frames
            return
        pending = 0
        for count, frame in enumerate(self.frames, start=1):
            yield frame
            pending += 1
            if pending == 8 or count == len(self.frames):
                self.on_frames(pending)
                pending = 0
            if self.log_interval and count % self.log_interval == 0:
                logger.info("encoded %d/%d frames", count, len(self.frames))


class _FallbackWatch(logging.Handler):
    """Notices pvio's 'falling back' warning, so we report the encoder actually used."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fell_back = False

    def emit(self, record: logging.LogRecord) -> None:
        if "falling back" in record.getMessage() or "encoding with libx264" in record.getMessage():
            self.fell_back = True


def _partial_prefix(output: Path, job_id: str) -> str:
    return f".{output.stem}.{job_id[:12]}."


def remove_partials(output: Path, job_id: str) -> None:
    """Delete temporary files an earlier, crashed encode of this job left beside ``output``."""
    for stale in output.parent.glob(f"{_partial_prefix(output, job_id)}*.partial{output.suffix}"):
        stale.unlink(missing_ok=True)


def encode_frames(
    frames: StoredFrames,
    output: str | os.PathLike[str],
    options: RenderOptions,
    on_frames: Callable[[int], None] = lambda n: None,
    job_id: str = "local",
) -> RenderResult:
    """Encode ``frames`` into ``output`` and describe the result.

    The video is written to a temporary file beside ``output`` (named after
    ``job_id``) and renamed into place, so ``output`` is either absent, the
    old file, or complete. Raises ``LookupError`` if frames are missing and
    whatever ffmpeg raises.
    """
    import pvio
    from pvio import _accel

    started = time.monotonic()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    first = frames[0]
    height, width = first.shape[:2]
    want_gpu = _accel.cuda_available() if options.video_mode == "auto" else options.video_mode == "gpu"
    planned = _accel.NVENC_CODEC if want_gpu and _accel.can_use_nvenc(height, width) else _accel.LIBX264_CODEC

    kwargs = {"mode": options.video_mode, "preset": options.video_preset,
              "extra_ffmpeg_params": options.video_extra_ffmpeg_params, "quiet": True}
    if options.video_quality is not None:
        kwargs["quality"] = options.video_quality

    # Same directory, so the final rename is atomic; a plain open keeps the umask's permissions.
    tmp = output.parent / f"{_partial_prefix(output, job_id)}{secrets.token_hex(4)}.partial{output.suffix}"
    watch = _FallbackWatch()
    pvio_logger = logging.getLogger("pvio.io")
    pvio_logger.addHandler(watch)
    try:
        pvio.write_frames_to_video(
            str(tmp), _Counted(frames, on_frames, options.saving_log_interval), options.fps, **kwargs
        )
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        pvio_logger.removeHandler(watch)

    encoder = _accel.LIBX264_CODEC if watch.fell_back else planned
    size = output.stat().st_size
    logger.info("wrote %s: %d frames, %dx%d, %s, %.1f MB", output, len(frames), width, height,
                encoder, size / 2**20)
    return RenderResult(
        output=str(output), n_frames=len(frames), width=width, height=height, fps=options.fps,
        encoder=encoder, size_bytes=size, encode_seconds=time.monotonic() - started,
    )
