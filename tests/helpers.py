"""Checks on rendered videos: decode them and compare with a serial render."""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
from animators import HEIGHT, WIDTH, decode_index
from PIL import Image

from celery_animate.encode.join import ffmpeg_exe, packets
from celery_animate.render.frame_loop import PreparedFigure, render_frames

#: Mean absolute difference (0-255 scale) allowed between a decoded frame and the
#: same frame rendered serially: H.264 at quality 10 with 4:2:0 chroma stays far below.
MAX_MEAN_ERROR = 4.0


def decode(path) -> list[np.ndarray]:
    """Every frame of a video (MP4, GIF, WebM) or a zip of PNGs, as RGB arrays, in order."""
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return [np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGB"))
                    for name in sorted(archive.namelist())]
    if path.suffix in (".gif", ".webm"):  # pvio's reader does not read these
        width, height = packets(path).size
        raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        return list(np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3))
    import pvio

    frames, _ = pvio.read_frames_from_video(str(path))
    return frames


def serial_frames(animator, params: list) -> list[np.ndarray]:
    """Frames rendered in this process, straight from the canvas, in index order."""
    prepared = PreparedFigure(animator, animator.setup_figure())
    return [rgb for _, rgb in render_frames(prepared, enumerate(params))]


def luma(frame: np.ndarray) -> np.ndarray:
    """A frame's brightness (BT.601), which H.264's 4:2:0 chroma keeps for every pixel."""
    return frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def assert_video(path, expected: list[np.ndarray], size: tuple[int, int] = (WIDTH, HEIGHT),
                 max_error: float = MAX_MEAN_ERROR, brightness_only: bool = False) -> list[np.ndarray]:
    """The video has exactly these frames, in this order, with close pixels (a mean absolute
    difference below ``max_error`` on the 0-255 scale).

    ``size`` is the figure's (width, height) in pixels, before padding. ``brightness_only``
    compares :func:`luma`: colour noise changes faster than 4:2:0 chroma can follow.
    """
    frames = decode(path)
    assert len(frames) == len(expected), f"{path}: {len(frames)} frames, expected {len(expected)}"
    assert [decode_index(f, *size) for f in frames] == list(range(len(expected)))
    for i, (got, want) in enumerate(zip(frames, expected, strict=True)):
        assert got.shape == want.shape, f"frame {i}: shape {got.shape} != {want.shape}"
        if brightness_only:
            got, want = luma(got), luma(want)
        error = np.abs(got.astype(np.int16) - want.astype(np.int16)).mean()
        assert error < max_error, f"frame {i} differs from the serial render by {error:.2f}"
    return frames


def wait_until(condition, timeout: float = 60, message: str = "condition", show=None) -> None:
    """Poll ``condition`` until it holds; things workers do after a job ends take a moment.

    ``show()``, if given, describes the state in the failure message.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}" + (f": {show()}" if show else ""))
        time.sleep(0.05)
