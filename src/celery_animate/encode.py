"""Encoding stored frames to MP4 with parallel-video-io, written atomically.

pvio (and with it torch) is imported only here and only when an encode runs,
so processes that merely render or enqueue never need it.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .frames import FigureSizeChanged, unpack_frame
from .jobs import RenderOptions, RenderResult
from .store import FrameStore

logger = logging.getLogger(__name__)


class StoredFrames:
    """The frames ``0 .. n_frames-1`` of one job, read from the store in order, a batch at a time.

    ``wait(next_index)`` is called when the next frame is not there yet: it
    may sleep and return (the read is retried) or raise to give up. Without
    it a missing frame raises ``LookupError``. Memory stays at one batch of
    frames whatever the frame count.
    """

    def __init__(self, store: FrameStore, job_id: str, n_frames: int,
                 wait: Callable[[int], None] | None = None, batch: int = 16):
        self.store = store
        self.job_id = job_id
        self.n_frames = n_frames
        self.wait = wait
        self.batch = batch
        #: Seconds spent reading and unpacking frames, and waiting for frames not yet rendered.
        self.fetch_seconds = 0.0
        self.wait_seconds = 0.0

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        index = 0
        while index < self.n_frames:
            wanted = list(range(index, min(index + self.batch, self.n_frames)))
            clock = time.perf_counter()
            for payload in self.store.get_many(self.job_id, wanted):
                if payload is None:
                    break
                frame = unpack_frame(payload)
                self.fetch_seconds += time.perf_counter() - clock
                yield frame
                clock = time.perf_counter()
                index += 1
            else:
                continue
            if self.wait is None:
                raise LookupError(f"frame {index} of job {self.job_id} is missing from the frame store")
            clock = time.perf_counter()
            self.wait(index)
            self.wait_seconds += time.perf_counter() - clock


class _PvioFeed:
    """Adapts :class:`StoredFrames` to pvio's ``write_frames_to_video``.

    pvio 0.1.9 takes ``len()`` and ``[0]``, then iterates once only to
    compare frame sizes, then again to feed ffmpeg. Reading every frame for
    the size check would mean waiting for the whole render before encoding
    the first frame, so that pass gets frame 0 repeated; the real pass checks
    each frame's size itself. ``passes`` lets the caller verify that pvio
    still makes both passes.
    """

    def __init__(self, frames: StoredFrames, on_frames: Callable[[int], None],
                 log_interval: int | None):
        self.frames = frames
        self.on_frames = on_frames
        self.log_interval = log_interval
        self.passes = 0
        self._first: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> np.ndarray:
        if index != 0:
            raise IndexError("only frame 0 is read by index")
        if self._first is None:
            self._first = next(iter(self.frames))
        return self._first

    def __iter__(self) -> Iterator[np.ndarray]:
        self.passes += 1
        first = self[0]
        if self.passes == 1:
            for _ in range(len(self.frames)):
                yield first
            return
        total, pending = len(self.frames), 0
        for count, frame in enumerate(self.frames, start=1):
            if frame.shape != first.shape:
                raise FigureSizeChanged(
                    f"frame {count - 1} is {frame.shape[1]}x{frame.shape[0]} pixels but frame 0 is "
                    f"{first.shape[1]}x{first.shape[0]}; every worker's figure must have one size"
                )
            yield frame
            pending += 1
            if pending == 8 or count == total:
                self.on_frames(pending)
                pending = 0
            if self.log_interval and count % self.log_interval == 0:
                logger.info("encoded %d/%d frames", count, total)


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


def _kill_writers_of(path: Path) -> None:
    """Kill and reap this process's children whose command line names ``path`` (Linux)."""
    target = str(path).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent != os.getpid() or target not in (entry / "cmdline").read_bytes().split(b"\0"):
                continue
            pid = int(entry.name)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (OSError, ValueError, IndexError, ChildProcessError):
            continue


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
    feed = _PvioFeed(frames, on_frames, options.saving_log_interval)
    height, width = feed[0].shape[:2]
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
        pvio.write_frames_to_video(str(tmp), feed, options.fps, **kwargs)
        if feed.passes < 2:
            raise RuntimeError(
                "parallel-video-io read the frames in a single pass; this celery-animate relies on "
                "the separate size-check pass of parallel-video-io 0.1.9 (install that version)"
            )
        os.replace(tmp, output)
    except BaseException:
        # pvio leaves ffmpeg running when the frames stop coming; it would create the
        # file (after its look-ahead) once its input closes, so stop it before deleting.
        _kill_writers_of(tmp)
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
