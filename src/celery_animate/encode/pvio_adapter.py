"""The one module that knows parallel-video-io's internals and works around its quirks.

Pinned by ``tests/unit/test_quirks.py``; if a pvio release changes
what is relied on here, those tests fail by name. What is relied on
(parallel-video-io 0.1.9):

* ``pvio._accel`` (private) says whether CUDA and an NVENC-capable ffmpeg
  exist and names the codecs; there is no public API for it.
* ``write_frames_to_video`` takes ``len()`` and ``[0]`` of the frames, then
  iterates them once to compare sizes and again to feed ffmpeg
  (:class:`PvioFeed` serves the first pass without waiting for the render).
* It reports a fall-back from NVENC to libx264 only as a log warning
  (:class:`FallbackWatch` listens for it).
* When the frames stop coming it leaves ffmpeg running, which would create
  the output after its look-ahead once its input closes
  (:func:`kill_writers_of` stops it).
* In ``mode="auto"`` it asks ``_accel.cuda_available()``, which imports torch: about a
  second, on every encode in a fresh process. Where :func:`planned_codec` finds that
  libx264 will encode (no NVIDIA device), :func:`write_video` asks for ``"cpu"``, which
  encodes the same bytes without that import.
* It answers any exception raised while it reads the frames of an NVENC
  attempt by starting over with libx264. An encoder that steps aside
  (:class:`~celery_animate.errors.EncodeAbandoned`, :class:`~celery_animate.errors.TryLater`)
  must stop instead: :class:`PvioFeed` remembers the first such stop, raises it again on
  any later pass, and :func:`write_video` raises it whatever pvio did.

pvio imports torch (seconds, gigabytes), so it is imported on first use,
here only: processes that render or enqueue never load it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import signal
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from celery_animate.errors import (
    ConfigurationError,
    EncodeAbandoned,
    FigureSizeChanged,
    IncompatibleDependency,
    MissingDependency,
    TryLater,
)

logger = logging.getLogger(__name__)

#: Codec names as pvio reports them.
LIBX264 = "libx264"


@functools.cache
def encoder_version() -> str:
    """The versions of parallel-video-io and imageio-ffmpeg (whose ffmpeg encodes), for the frame
    cache's segment keys: another encoder may make other bytes of the same frames."""
    found = []
    for dist in ("parallel-video-io", "imageio-ffmpeg"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} ?")
    return ", ".join(found)


def load_pvio() -> ModuleType:
    """``pvio``, imported now; raises :class:`MissingDependency` (an ``ImportError``) saying which
    extra to install."""
    try:
        import pvio  # torch comes with it: import only when an encode runs
    except ImportError as exc:
        raise MissingDependency(
            "encoding needs parallel-video-io: install it with `pip install 'celery-animate[encode]'` "
            f"on the machines that encode ({exc})"
        ) from exc
    return pvio


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it (pvio brings torch)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_pvio() -> None:
    """Raise :class:`ConfigurationError` naming the extra to install when pvio is missing here."""
    if not installed("pvio"):
        raise ConfigurationError(
            "encoding needs parallel-video-io, which is not installed here: install it with "
            "`pip install 'celery-animate[encode]'`")


def encoder_capabilities() -> dict[str, Any]:
    """``{"pvio": bool, "cuda": bool, "nvenc_ffmpeg": path or None}`` on this machine."""
    try:
        accel = load_pvio()._accel
    except ImportError:
        return {"pvio": False, "cuda": False, "nvenc_ffmpeg": None}
    return {"pvio": True, "cuda": accel.cuda_available(), "nvenc_ffmpeg": accel.nvenc_ffmpeg_exe()}


def nvidia_device_present() -> bool:
    """Whether this machine shows an NVIDIA GPU's device node (``/dev/nvidia0``, ...; ``/dev/dxg``
    under WSL 2): without one, CUDA cannot be available."""
    dev = Path("/dev")
    return (dev / "dxg").exists() or any(dev.glob("nvidia[0-9]*"))


def planned_codec(video_mode: str, height: int, width: int) -> str:
    """The codec pvio will try first for this mode and frame size."""
    accel = load_pvio()._accel
    if video_mode == "auto":
        # cuda_available() imports torch, a second or more; with no NVIDIA device there is no
        # CUDA to find, and the first segment of a job need not wait for that import.
        want_gpu = nvidia_device_present() and accel.cuda_available()
    else:
        want_gpu = video_mode == "gpu"
    return accel.NVENC_CODEC if want_gpu and accel.can_use_nvenc(height, width) else accel.LIBX264_CODEC


class PvioFeed:
    """Adapts an in-order frame iterable to ``write_frames_to_video``'s two passes.

    Reading every frame for pvio's size check would mean waiting for the whole
    render before encoding the first frame, so that pass gets frame 0
    repeated; the real pass checks each frame's size itself and calls
    ``on_frames(n)`` every 8 frames. ``passes`` lets the caller verify that
    pvio still makes both passes.
    """

    def __init__(self, frames, on_frames: Callable[[int], None], log_interval: int | None = None):
        self.frames = frames
        self.on_frames = on_frames
        self.log_interval = log_interval
        self.passes = 0
        #: Why the encoder stepped aside while pvio read the frames, if it did.
        self.stopped: EncodeAbandoned | TryLater | None = None
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
        if self.stopped is not None:  # pvio's fall-back pass: the encoder stepped aside already
            raise self.stopped
        try:
            yield from self._pass()
        except (EncodeAbandoned, TryLater) as stop:
            self.stopped = stop
            raise

    def _pass(self) -> Iterator[np.ndarray]:
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


class FallbackWatch(logging.Handler):
    """Notices pvio's 'falling back' warning, so we report the encoder actually used."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fell_back = False

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "falling back" in message or "encoding with libx264" in message:
            self.fell_back = True


def kill_writers_of(path: Path) -> None:
    """Kill and reap this process's children whose command line names ``path`` (Linux's /proc)."""
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


def write_video(path: Path, feed: PvioFeed, fps: float, *, mode: str, quality: int | None,
                preset: str | None, extra_ffmpeg_params: list[str] | None) -> str:
    """Encode ``feed`` into ``path`` with pvio; return the codec actually used.

    On any failure ffmpeg is stopped and ``path`` removed before the error
    propagates. Raises :class:`IncompatibleDependency` (a ``RuntimeError``) if pvio no longer
    reads the frames in two passes (a pvio version this adapter does not know).
    """
    pvio = load_pvio()
    height, width = feed[0].shape[:2]
    planned = planned_codec(mode, height, width)
    extra = list(extra_ffmpeg_params or [])
    if quality == 0 and planned == LIBX264 and "-profile:v" not in extra:
        # pvio asks libx264 for the High profile, which has no lossless mode: crf 0 then fails
        # with a broken pipe. High 4:4:4 Predictive has it (ffmpeg takes the last -profile:v).
        extra += ["-profile:v", "high444"]
    if mode == "auto" and planned == LIBX264:
        mode = "cpu"  # the same encode, without pvio importing torch to ask about CUDA
    kwargs: dict[str, Any] = {"mode": mode, "preset": preset,
                              "extra_ffmpeg_params": extra or None, "quiet": True}
    if quality is not None:
        kwargs["quality"] = quality
    watch = FallbackWatch()
    pvio_logger = logging.getLogger("pvio.io")
    pvio_logger.addHandler(watch)
    try:
        pvio.write_frames_to_video(str(path), feed, fps, **kwargs)
        if feed.stopped is not None:  # pvio fell back after the stop and finished with libx264
            raise feed.stopped
        if feed.passes < 2:
            raise IncompatibleDependency(
                "parallel-video-io read the frames in a single pass; this celery-animate relies on "
                "the separate size-check pass of parallel-video-io 0.1.9 (install that version)"
            )
    except BaseException:
        kill_writers_of(path)
        path.unlink(missing_ok=True)
        if feed.stopped is not None:
            raise feed.stopped from None
        raise
    finally:
        pvio_logger.removeHandler(watch)
    return LIBX264 if watch.fell_back else planned
