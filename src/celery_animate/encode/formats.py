"""Writers for the formats besides H.264 MP4: GIF, WebM (VP9) and a zip of PNG frames.

Each writes a job's frames, read from an in-order frame iterable, into one
local file, and returns the codec it used; :mod:`celery_animate.encode.encoder`
publishes that file as it does an MP4. They use the ffmpeg that comes with the
encoder (``imageio-ffmpeg``), fed raw RGB on its standard input. None of these
formats is encoded in segments (:func:`celery_animate.formats.segmentable`).

* GIF: two passes over the frames. The first builds one palette of 256
  colours from every frame of the job (``palettegen``), the second maps each
  frame onto it with error-diffusion dithering (``paletteuse``, Sierra-2-4A),
  which keeps gradients free of bands, drawing only the rectangle that
  changed since the previous frame. GIF delays are whole hundredths of a
  second: :func:`celery_animate.formats.gif_fps` gives the rate written.
* WebM: VP9 at a constant quality (``-crf``), row-multithreaded.
* PNG zip: one ``NNNNN.png`` per frame, stored uncompressed in the zip
  (PNG is compressed already).
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from celery_animate.encode.join import FFMPEG_TIMEOUT, ffmpeg_exe, packets
from celery_animate.errors import EncodeIncomplete, InvalidArgument
from celery_animate.formats import GIF, PNG_ZIP, WEBM, gif_fps

#: VP9's quality scale: 0 (best) to 63; the default is a good-looking web video.
WEBM_DEFAULT_CRF = 32
#: The codec name each writer reports (RenderResult.encoder).
CODECS = {GIF: "gif", WEBM: "libvpx-vp9", PNG_ZIP: "png"}


def write_format(fmt: str, path: Path, frames: Iterable[np.ndarray], fps: float,
                 quality: int | None, on_frames: Callable[[int], None] = lambda n: None) -> str:
    """Write ``frames`` (RGB ``uint8`` arrays of one size) as ``fmt`` into ``path``; return the
    codec used. ``frames`` is iterated twice for a GIF; ``on_frames(n)`` is told of every few
    frames written on the last pass. ``quality`` is VP9's ``-crf`` for WebM (0-63, lower is
    better) and is ignored otherwise. On failure ``path`` is removed and
    :class:`EncodeIncomplete` (ffmpeg failed) or what the frames raise propagates."""
    counted = _Counted(frames, on_frames)
    try:
        if fmt == GIF:
            _write_gif(path, frames, counted, fps)
        elif fmt == WEBM:
            _write_webm(path, counted, fps, WEBM_DEFAULT_CRF if quality is None else quality)
        elif fmt == PNG_ZIP:
            _write_png_zip(path, counted)
        else:
            raise InvalidArgument(f"no writer for format {fmt!r}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return CODECS[fmt]


class _Counted:
    """``frames``, telling ``on_frames`` of every 8 frames read (and of the last few)."""

    def __init__(self, frames: Iterable[np.ndarray], on_frames: Callable[[int], None]):
        self.frames, self.on_frames = frames, on_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        pending = 0
        for frame in self.frames:
            yield frame
            pending += 1
            if pending == 8:
                self.on_frames(pending)
                pending = 0
        if pending:
            self.on_frames(pending)


def _raw_input(shape: tuple[int, ...], fps: float) -> list[str]:
    height, width = shape[:2]
    return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", f"{fps:.6g}", "-i", "pipe:0"]


def _pipe(frames: Iterable[np.ndarray], args_for: Callable[[tuple[int, ...]], list[str]],
          doing: str) -> None:
    """Run ffmpeg with the arguments ``args_for(first_frame_shape)`` and feed it every frame.
    Raises :class:`EncodeIncomplete` with ffmpeg's last words if it fails."""
    iterator: Iterator[np.ndarray] = iter(frames)
    first = next(iterator)
    process = subprocess.Popen(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args_for(first.shape)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            for frame in _same_size(first, iterator):
                process.stdin.write(np.ascontiguousarray(frame[..., :3]).tobytes())
            process.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped early: its exit status and message say why
        stderr = process.stderr.read().decode(errors="replace")
        code = process.wait(FFMPEG_TIMEOUT)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stderr.close()
    if code != 0:
        raise EncodeIncomplete(f"ffmpeg failed {doing}: {stderr.strip()[-500:] or f'exit {code}'}")


def _same_size(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    for index, frame in enumerate(rest, start=1):
        if frame.shape[:2] != first.shape[:2]:
            raise EncodeIncomplete(
                f"frame {index} is {frame.shape[1]}x{frame.shape[0]} pixels but frame 0 is "
                f"{first.shape[1]}x{first.shape[0]}; every frame of a video must have one size")
        yield frame


def _write_gif(path: Path, frames: Iterable[np.ndarray], counted: Iterable[np.ndarray],
               fps: float) -> None:
    rate = gif_fps(fps)
    palette = path.with_name(path.name + ".palette.png")
    try:
        _pipe(frames, lambda shape: [*_raw_input(shape, rate), "-vf", "palettegen=stats_mode=full",
                                     "-frames:v", "1", "-update", "1", "-f", "image2", str(palette)],
              "building the GIF's palette")
        _pipe(counted, lambda shape: [*_raw_input(shape, rate), "-i", str(palette), "-lavfi",
                                     "[0:v][1:v]paletteuse=dither=sierra2_4a:diff_mode=rectangle",
                                     "-loop", "0", "-f", "gif", str(path)],
              "writing the GIF")
    finally:
        palette.unlink(missing_ok=True)


def _write_webm(path: Path, frames: Iterable[np.ndarray], fps: float, crf: int) -> None:
    _pipe(frames, lambda shape: [*_raw_input(shape, fps), "-c:v", "libvpx-vp9", "-crf", str(crf),
                                 "-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "4",
                                 "-pix_fmt", "yuv420p", "-f", "webm", str(path)],
          "writing the WebM")


def _write_png_zip(path: Path, frames: Iterable[np.ndarray]) -> None:
    first_shape = None
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, frame in enumerate(frames):
            if first_shape is None:
                first_shape = frame.shape[:2]
            elif frame.shape[:2] != first_shape:
                raise EncodeIncomplete(f"frame {index} is not the size of frame 0")
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(frame[..., :3])).save(buffer, format="PNG",
                                                                        compress_level=1)
            archive.writestr(f"{index:05d}.png", buffer.getvalue())


def count_frames(fmt: str, path: Path) -> int:
    """How many frames the file ``path`` of ``fmt`` holds, read back (ffmpeg's exit status alone
    does not prove a whole file). Raises :class:`EncodeIncomplete` for an unreadable file."""
    if fmt == PNG_ZIP:
        try:
            with zipfile.ZipFile(path) as archive:
                return sum(1 for name in archive.namelist() if name.endswith(".png"))
        except (zipfile.BadZipFile, OSError) as exc:
            raise EncodeIncomplete(f"the zip of frames is unreadable: {exc}") from exc
    return len(packets(path).pts)
